"""The typed settings layer (backend/config.py): every kind of bad value is refused with one line naming the
setting, the value and what is allowed; good values, environment text and create_app overrides are accepted."""

from __future__ import annotations

import json

import annotated_types
import pytest

from backend import create_app
from backend.config import DEFAULTS, ConfigError, Settings, load_config, load_config_or_exit
from backend.config_types import BOOL_ALLOWED, Bool
from tests.conftest import config_for_tests

BOOL_SETTINGS = [k for k, v in DEFAULTS.items() if isinstance(v, bool)]
TOKEN_SETTINGS = ["STOVE_API_TOKEN", "STOVE_HA_TOKEN"]
FILE_SETTINGS = ["JOBS_DB", "STOVE_DB", "STOVE_TOKEN_FILE"]
DIR_SETTINGS = ["INSTANCE_DIR", "JOBS_RESULT_DIR"]
READ_DIR_SETTINGS = ["CONTINUATION_CHECKPOINTS", "ATTENTION_DATA_PATH"]


def bounds(name: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for item in Settings.model_fields[name].metadata:
        for kind in ("gt", "ge", "lt", "le"):
            if isinstance(item, getattr(annotated_types, kind.capitalize())):
                bound = getattr(item, kind)
                # several constraints of one kind (a type's and a field's): the tighter one counts
                tighter = max if kind in ("gt", "ge") else min
                found[kind] = tighter(found.get(kind, bound), bound)
    return found


NUMBER_SETTINGS = [k for k, v in DEFAULTS.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]


def refused(env: dict | None = None, **overrides) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(overrides, environ=env or {})
    message = str(err.value)
    assert "\n" not in message, "one line"
    return message


def as_env_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def test_defaults_are_valid_and_unchanged():
    config = load_config(environ={})
    assert {k: config[k] for k in DEFAULTS} == DEFAULTS
    assert len(DEFAULTS) == len(Settings.model_fields)


def test_every_default_written_as_environment_text_reads_back_the_same():
    environ = {k: as_env_text(v) for k, v in DEFAULTS.items()}
    config = load_config(environ=environ)
    assert {k: config[k] for k in DEFAULTS} == DEFAULTS


def test_every_setting_has_a_number_range_or_a_checked_kind():
    """No setting is a bare, unchecked value: numbers have ranges, the rest a validating type."""
    for name in NUMBER_SETTINGS:
        b = bounds(name)
        assert ("gt" in b or "ge" in b) and "le" in b, f"{name} needs a range"
    loose = [name for name, field in Settings.model_fields.items()
             if field.annotation is str and not field.metadata and name != "JOBS_REDIS_URL"]
    assert loose == []


# ---------------------------------------------------------------- booleans
@pytest.mark.parametrize("name", BOOL_SETTINGS)
def test_booleans_accept_only_the_explicit_words(name):
    for word, value in [("1", True), ("true", True), ("TRUE", True), ("Yes", True), ("on", True), ("oN", True),
                        ("0", False), ("false", False), ("No", False), ("OFF", False), (" true ", True)]:
        assert load_config(environ={name: word})[name] is value, word
    for given in (True, False, 1, 0):
        assert load_config({name: given}, environ={})[name] is bool(given)


@pytest.mark.parametrize("name", BOOL_SETTINGS)
@pytest.mark.parametrize("word", ["ture", "y", "n", "t", "f", "enabled", "disabled", "", "2", "-1", "none", "1.0"])
def test_booleans_refuse_everything_else(name, word):
    message = refused({name: word})
    assert message.startswith(f"{name} must be {BOOL_ALLOWED}; got {word!r} (from the environment variable)")


@pytest.mark.parametrize("name", BOOL_SETTINGS)
def test_booleans_refuse_other_python_values(name):
    for value in (2, -1, 0.5, None, [], "maybe"):
        assert BOOL_ALLOWED in refused(**{name: value})


def test_bool_type_is_pydantic_bool_without_its_loose_words():
    from pydantic import TypeAdapter

    adapter = TypeAdapter(Bool)
    assert adapter.validate_python("on") is True
    with pytest.raises(ValueError):
        adapter.validate_python("y")  # plain pydantic bool would take it


# ---------------------------------------------------------------- numbers
@pytest.mark.parametrize("name", NUMBER_SETTINGS)
def test_numbers_out_of_range_are_refused(name):
    b = bounds(name)
    is_int = isinstance(DEFAULTS[name], int)
    low = b["gt"] if "gt" in b else b["ge"] - 1
    high = b["le"] * 2 + 1
    for value in (low, high):
        value = int(value) if is_int else value
        message = refused({name: str(value)})
        assert message.startswith(f"{name} must ") and f"got {str(value)!r} (from the environment variable)" in message
        assert "than" in message  # "greater than ...", "less than or equal to ..."
        refused(**{name: value})  # the same through create_app's overrides


@pytest.mark.parametrize("name", NUMBER_SETTINGS)
@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "1e999", "abc", "", "1,5", "true"])
def test_numbers_refuse_non_finite_and_non_numbers(name, text):
    message = refused({name: text})
    assert message.startswith(f"{name} must ") and f"got {text!r}" in message


@pytest.mark.parametrize("name", NUMBER_SETTINGS)
def test_numbers_refuse_booleans_and_fractions_of_integers(name):
    assert "not a boolean" in refused(**{name: True})
    if isinstance(DEFAULTS[name], int):
        assert "integer" in refused({name: "2.5"})
    else:
        assert "finite" in refused(**{name: float("inf")})


@pytest.mark.parametrize("env, message", [
    ({"STOVE_CUT_HOLD_S": "inf"}, "STOVE_CUT_HOLD_S must be a finite number; got 'inf'"),
    ({"STOVE_TIMER_MAX_MIN": "1e300"}, "STOVE_TIMER_MAX_MIN must be less than or equal to 1440; got '1e300'"),
    ({"STOVE_POLL_S": "0"}, "STOVE_POLL_S must be greater than or equal to 0.01; got '0'"),
    ({"STOVE_POLL_S": "-1"}, "STOVE_POLL_S must be greater than or equal to 0.01"),
    ({"STOVE_AUDIT_MIN_ROWS": "0"}, "STOVE_AUDIT_MIN_ROWS must be greater than or equal to 100"),
    ({"STOVE_LEASE_S": "0.5", "STOVE_POLL_S": "0.25"}, "STOVE_LEASE_S must be at least 4 x STOVE_POLL_S (1 s)"),
    ({"STOVE_RETRY_BASE_S": "-1"}, "STOVE_RETRY_BASE_S must be greater than 0"),
    ({"PORT": "70000"}, "PORT must be less than or equal to 65535"),
])
def test_the_reported_stove_values_are_refused(env, message):
    assert refused(env).startswith(message)


# ---------------------------------------------------------------- tokens
@pytest.mark.parametrize("name", TOKEN_SETTINGS)
@pytest.mark.parametrize("token", ["x", "x" * 15, " " + "x" * 20, "x" * 20 + " ", "x" * 10 + " " + "x" * 10,
                                   "x" * 20 + "\n", "é" * 20])
def test_tokens_are_long_and_plain(name, token):
    message = refused({name: token})
    assert message.startswith(f"{name} must be a token")
    assert token.strip() not in message, "a token is never printed"
    assert f"<hidden, {len(token)} characters>" in message


@pytest.mark.parametrize("name", TOKEN_SETTINGS)
def test_tokens_accept_empty_and_16_characters(name):
    assert load_config(environ={name: ""})[name] == ""
    assert load_config(environ={name: "x" * 16})[name] == "x" * 16


def test_person_tokens_are_typed_from_json():
    tokens = {"ann": "a" * 16, "bob@home": "b" * 20}
    assert load_config(environ={"STOVE_API_TOKENS": json.dumps(tokens)})["STOVE_API_TOKENS"] == tokens


@pytest.mark.parametrize("value, fragment", [
    ('["ann"]', "STOVE_API_TOKENS must be a valid dictionary"),
    ("{ann: x}", "STOVE_API_TOKENS must be JSON"),
    ('{"ann smith": "' + "x" * 20 + '"}', "STOVE_API_TOKENS['ann smith'] must be a person's name"),
    ('{"' + "a" * 65 + '": "' + "x" * 20 + '"}', "at most STOVE_ACTOR_MAX_CHARS=64 characters"),
    ('{"ann": "short"}', "STOVE_API_TOKENS['ann'] must be a token of at least 16"),
    ('{"ann": 12345678901234567890}', "STOVE_API_TOKENS['ann'] must be a valid string"),
    ('{"ann": "' + "x" * 20 + '", "bob": "' + "x" * 20 + '"}', "STOVE_API_TOKENS['bob'] must be a token of each"),
])
def test_person_tokens_refused(value, fragment):
    message = refused({"STOVE_API_TOKENS": value})
    assert fragment in message and "x" * 16 not in message


def test_person_token_equal_to_the_shared_one_is_refused():
    shared = "shared-token-is-long-enough"
    assert "each person's own" in refused(STOVE_API_TOKEN=shared, STOVE_API_TOKENS={"ann": shared})


# ---------------------------------------------------------------- paths
@pytest.mark.parametrize("name", FILE_SETTINGS)
def test_file_paths_refuse_folders_and_impossible_places(tmp_path, name):
    assert "it is a folder" in refused(**{name: str(tmp_path)})
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    assert f"{blocker} is not a folder" in refused(**{name: str(blocker / "sub" / "x.sqlite3")})
    # a file in folders that do not exist yet is fine, and checking it creates nothing
    fine = tmp_path / "new" / "deeper" / "x.sqlite3"
    assert load_config({name: str(fine)}, environ={})[name] == str(fine)
    assert not (tmp_path / "new").exists()
    assert load_config({name: ""}, environ={})[name] == ""


@pytest.mark.parametrize("name", DIR_SETTINGS)
def test_folder_paths_refuse_files(tmp_path, name):
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    assert "it is not a folder" in refused(**{name: str(blocker)})
    assert "is not a folder" in refused(**{name: str(blocker / "sub")})
    assert load_config({name: str(tmp_path / "a" / "b")}, environ={})[name] == str(tmp_path / "a" / "b")


@pytest.mark.parametrize("name", READ_DIR_SETTINGS)
def test_read_folders_must_exist(tmp_path, name):
    message = refused(**{name: str(tmp_path / "missing")})
    assert "must be an existing folder" in message and "it does not exist" in message
    (tmp_path / "plain-file").write_text("")
    assert "it is not a folder" in refused(**{name: str(tmp_path / "plain-file")})
    assert load_config({name: str(tmp_path)}, environ={})[name] == str(tmp_path)


def test_default_database_under_an_instance_folder_that_holds_a_folder_of_that_name(tmp_path):
    (tmp_path / "stove.sqlite3").mkdir()
    message = refused(INSTANCE_DIR=str(tmp_path), STOVE_DB="")
    assert message.startswith("STOVE_DB must be a usable file; its default <INSTANCE_DIR>/stove.sqlite3")


# ---------------------------------------------------------------- enums, lists, mappings, URLs, cross-field
@pytest.mark.parametrize("name, bad", [("JOBS_BACKEND", "cron"), ("STOVE_ADAPTER", "zigbee"),
                                       ("STOVE_SIM_WIRING", "both"), ("STOVE_ADAPTER", "Simulated")])
def test_enums(name, bad):
    assert refused({name: bad}).startswith(f"{name} must be one of '")


@pytest.mark.parametrize("over, fragment", [
    ({"STOVE_BURNERS": []}, "STOVE_BURNERS must have at least 1 item"),
    ({"STOVE_BURNERS": ["Left"]}, "STOVE_BURNERS[0] must be a burner id"),
    ({"STOVE_BURNERS": ["a", "a"]}, "STOVE_BURNERS must be a list without duplicates"),
    ({"STOVE_BURNERS": "left,right"}, "STOVE_BURNERS must be JSON"),
    ({"STOVE_CUT_HOLD_S": 1.0, "STOVE_VALVE_RELEASE_S": 2.0},
     "STOVE_CUT_HOLD_S must be longer than STOVE_VALVE_RELEASE_S (2 s)"),
    ({"STOVE_ADAPTER": "home_assistant"}, "STOVE_HA_TOKEN must be set"),
    ({"STOVE_ADAPTER": "home_assistant", "STOVE_HA_TOKEN": "t" * 20, "STOVE_HA_ENTITIES": {"left": "switch.a"}},
     "STOVE_HA_ENTITIES must be an object with an entry for every burner (missing: right)"),
    ({"STOVE_HA_ENTITIES": {"left": "relay one"}}, "STOVE_HA_ENTITIES['left'] must be a Home Assistant entity id"),
    ({"STOVE_ADAPTER": "miio", "STOVE_MIIO_IP": "10.0.0.2"}, "STOVE_MIIO_TOKEN must be set"),
    ({"STOVE_ADAPTER": "miio", "STOVE_MIIO_TOKEN": "ab" * 16}, "STOVE_MIIO_IP must be set"),
    ({"STOVE_MIIO_TOKEN": "short"}, "STOVE_MIIO_TOKEN must be a miIO token of 32 hex digits"),
    ({"STOVE_MIIO_IP": "kitchen"}, "STOVE_MIIO_IP must be an IP address"),
    ({"STOVE_MIIO_PROPS": {"left": "2.1"}}, "STOVE_MIIO_PROPS['left'] must be [siid, piid]"),
    ({"STOVE_MIIO_PROPS": {"left": [2, True]}}, "[siid, piid]"),
    ({"STOVE_HA_URL": "ftp://ha.local"}, "STOVE_HA_URL must be an http:// or https:// URL"),
    ({"STOVE_ALERT_WEBHOOK": "http://"}, "STOVE_ALERT_WEBHOOK must be an http:// or https:// URL with a host, or empty"),
    ({"COOLPAPERS_BASE": "papers.cool"}, "COOLPAPERS_BASE must be an http:// or https:// URL"),
    ({"JOBS_TASK_MODULES": ["os; rm"]}, "JOBS_TASK_MODULES[0] must be a dotted Python module name"),
    ({"HOST": " 127.0.0.1"}, "HOST must be non-empty text without surrounding whitespace"),
    ({"STOVE_HA_NOTIFY": "notify.phone"}, "STOVE_HA_NOTIFY must be empty unless STOVE_HA_TOKEN is set"),
    ({"STOVE_HA_NOTIFY": "notify/phone", "STOVE_HA_TOKEN": "h" * 20}, "STOVE_HA_NOTIFY must be a Home Assistant notify"),
])
def test_structured_and_cross_field_settings(over, fragment):
    assert fragment in refused(**over)


def test_json_settings_from_the_environment():
    config = load_config(environ={"STOVE_BURNERS": '["front", "back_2"]', "JOBS_TASK_MODULES": '["tests.x"]',
                                  "STOVE_MIIO_PROPS": '{"front": [2, 1]}'})
    assert config["STOVE_BURNERS"] == ["front", "back_2"] and config["JOBS_TASK_MODULES"] == ["tests.x"]
    assert config["STOVE_MIIO_PROPS"] == {"front": (2, 1)}


def test_real_adapter_settings_accepted():
    ha = load_config({"STOVE_ADAPTER": "home_assistant", "STOVE_HA_TOKEN": "h" * 180}, environ={})
    assert ha["STOVE_ADAPTER"] == "home_assistant"
    miio = load_config(environ={"STOVE_ADAPTER": "miio", "STOVE_MIIO_IP": "10.0.0.2", "STOVE_MIIO_TOKEN": "ab" * 16})
    assert miio["STOVE_MIIO_PROPS"] == {"left": (2, 1), "right": (3, 1)}


# ---------------------------------------------------------------- precedence, sources, create_app
def test_overrides_beat_environment_beat_defaults_and_sources_are_named():
    assert load_config(environ={"STOVE_POLL_S": "0.5"})["STOVE_POLL_S"] == 0.5
    assert load_config({"STOVE_POLL_S": 0.1}, environ={"STOVE_POLL_S": "0.5"})["STOVE_POLL_S"] == 0.1
    assert "(from the environment variable)" in refused({"STOVE_POLL_S": "0"})
    assert "(from the create_app config)" in refused(STOVE_POLL_S=0)
    # a good override does not hide a bad environment value of another setting
    assert refused({"PORT": "x"}, STOVE_POLL_S=0.1).startswith("PORT must")


def test_several_bad_values_one_line_names_them_all():
    message = refused({"PORT": "x", "STOVE_POLL_S": "0", "STOVE_NC_INVERTED": "y"})
    assert "also invalid:" in message and "STOVE_NC_INVERTED" in message and "\n" not in message


def test_unknown_keys_pass_through():
    config = load_config({"TESTING": True, "SOMETHING_ELSE": [1]}, environ={"NOT_A_SETTING": "x"})
    assert config["TESTING"] is True and config["SOMETHING_ELSE"] == [1] and "NOT_A_SETTING" not in config


def test_create_app_validates_its_overrides(tmp_path):
    with pytest.raises(ConfigError, match=r"^STOVE_POLL_S must be greater than or equal to 0.01; got 0 "):
        create_app(config_for_tests(tmp_path, STOVE_POLL_S=0))
    with pytest.raises(ConfigError, match="^STOVE_NC_INVERTED must be a boolean"):
        create_app(config_for_tests(tmp_path, STOVE_NC_INVERTED="ture"))
    with pytest.raises(ConfigError, match="^STOVE_DB must be a file path"):
        create_app(config_for_tests(tmp_path, STOVE_DB=str(tmp_path)))


def test_create_app_validates_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("STOVE_SCHEDULER", "enabled")
    with pytest.raises(ConfigError, match="^STOVE_SCHEDULER must be a boolean.*from the environment variable"):
        create_app(config_for_tests(tmp_path))


def test_config_for_tests_still_builds_an_app(tmp_path):
    app = create_app(config_for_tests(tmp_path, STOVE_TIMER_MAX_MIN=30))
    assert app.config["STOVE_TIMER_MAX_MIN"] == 30.0 and app.config["TESTING"] is True
    assert app.config["STOVE_DB"].startswith(str(tmp_path))


def test_load_config_or_exit_prints_one_line_and_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_config_or_exit(environ={"STOVE_NC_INVERTED": "ture"})
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("configuration error: STOVE_NC_INVERTED must be a boolean")
    assert load_config_or_exit(environ={})["PORT"] == 5000
