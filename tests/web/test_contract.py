"""The API contract: every JSON endpoint declared, one error shape, limits named, the document served."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from backend.web.api import ApiBlueprint
from backend.web.openapi import build_openapi

UNDECLARED_OK = {"/api/openapi.json", "/api/docs"}  # the document itself and its rendering


def test_every_api_route_is_declared(app):
    undeclared = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") and rule.rule not in UNDECLARED_OK:
            view = app.view_functions[rule.endpoint]
            if getattr(view, "api_spec", None) is None:
                undeclared.append(rule.rule)
    assert undeclared == [], f"declare these with ApiBlueprint.api: {undeclared}"


def test_openapi_document(client):
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert "/api/resolve" in spec["paths"] and {"get", "post"} <= set(spec["paths"]["/api/resolve"])
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            assert op["summary"], f"{method} {path} has no summary"
            statuses = set(op["responses"])
            assert "400" in statuses and "413" in statuses
            for status, response in op["responses"].items():
                if status.startswith("4") and "content" in response:
                    assert response["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    for ref_target in _refs(spec):
        assert ref_target in spec["components"]["schemas"], ref_target


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value.rsplit("/", 1)[1]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


class Echo(BaseModel):
    count: int = Field(ge=1, le=10)
    name: str


class EchoOut(BaseModel):
    count: int


class TagsQuery(BaseModel):
    tag: list[str] | None = None
    last: str | None = None


@pytest.fixture
def echo_app(tmp_path):
    from backend import create_app
    from tests.conftest import config_for_tests

    bp = ApiBlueprint("echo_test", __name__)

    @bp.api("POST", "/api/echo-test", body=Echo, response=EchoOut, summary="echo")
    def echo(body: Echo):
        return {"count": body.count}

    @bp.api("POST", "/api/echo-wrong", body=Echo, response=EchoOut, summary="breaks its schema")
    def wrong(body: Echo):
        return {"count": "many"}

    @bp.api("GET", "/api/tags-test", query=TagsQuery, summary="repeatable query parameters")
    def tags(query: TagsQuery):
        return {"tag": query.tag, "last": query.last}

    app = create_app(config_for_tests(tmp_path, MAX_JSON_BYTES=1000, PROPAGATE_EXCEPTIONS=False))
    app.register_blueprint(bp)
    return app


@pytest.mark.parametrize(
    "payload, status, field",
    [
        ({"count": 3, "name": "x"}, 200, None),
        ({"count": 0, "name": "x"}, 422, "count"),
        ({"count": "three", "name": "x"}, 422, "count"),
        ({"count": 3}, 422, "name"),
        ([1, 2], 422, None),
    ],
)
def test_validation_errors_name_the_field(echo_app, payload, status, field):
    response = echo_app.test_client().post("/api/echo-test", json=payload)
    assert response.status_code == status
    if status != 200:
        assert set(response.json) >= {"error", "status", "code", "field"}
        assert response.json["field"] == field
        if field:
            assert field in response.json["error"]


def test_body_limit_is_named(echo_app):
    response = echo_app.test_client().post("/api/echo-test", json={"count": 1, "name": "x" * 2000})
    assert response.status_code == 413
    assert response.json["limit"] == "MAX_JSON_BYTES" and response.json["limit_value"] == 1000
    assert response.json["error"].startswith("a JSON body of 2,024 bytes is over the limit of 1,000 bytes; ")
    assert "MAX_" not in response.json["error"]


def test_a_view_that_breaks_its_schema_is_caught_in_tests(echo_app):
    echo_app.config["PROPAGATE_EXCEPTIONS"] = False
    response = echo_app.test_client().post("/api/echo-wrong", json={"count": 1, "name": "x"})
    assert response.status_code == 500
    assert response.json == {"error": "internal error; it has been logged", "status": 500, "code": "internal_error",
                             "field": None, "limit": None, "limit_value": None}


def test_unknown_api_path_and_method_are_json(client):
    assert client.get("/api/nothing-here").json["status"] == 404
    response = client.delete("/api/resolve")
    assert response.status_code == 405
    assert response.json["code"] == "method_not_allowed"


def test_build_openapi_is_deterministic_and_served_from_one_build(app, client):
    assert build_openapi(app) == build_openapi(app)
    assert client.get("/api/openapi.json").json == build_openapi(app)
    assert app.extensions["openapi"] == build_openapi(app)


def test_endpoints_that_answer_401_declare_their_security_scheme(client):
    spec = client.get("/api/openapi.json").json
    schemes = spec["components"]["securitySchemes"]
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if "401" in op["responses"]:
                assert op.get("security"), f"{method} {path} answers 401 but declares no security scheme"
                assert all(name in schemes for entry in op["security"] for name in entry)


def test_list_query_parameters_repeat_and_scalars_take_the_last(echo_app):
    body = echo_app.test_client().get("/api/tags-test?tag=a&tag=b&last=x&last=y").json
    assert body == {"tag": ["a", "b"], "last": "y"}


def _limited(node, found):
    """(config name, node) for every schema node that declares an x-limit."""
    if isinstance(node, dict):
        if "x-limit" in node:
            found.append((node["x-limit"], node))
        for value in node.values():
            _limited(value, found)
    elif isinstance(node, list):
        for item in node:
            _limited(item, found)
    return found


def test_configured_limits_are_stated_in_the_document(tmp_path):
    from backend import create_app
    from tests.conftest import config_for_tests

    app = create_app(config_for_tests(tmp_path, CONTINUATION_MAX_NEW_TOKENS=7, STOVE_TIMER_MAX_MIN=30.5,
                                      MAD_MAX_DIM=12))
    spec = app.test_client().get("/api/openapi.json").json
    found = _limited(spec, [])
    names = {name for name, _ in found}
    assert {"MAD_MAX_DIM", "STOVE_TIMER_MAX_MIN", "CONTINUATION_MAX_PROMPT_CHARS", "JOBS_LIST_MAX",
            "TOKENIZE_MAX_VOCAB_PIECES", "MATRIX_MAX_OVERSAMPLE"} <= names
    for name, node in found:
        stated = [node[k] for k in ("maximum", "maxLength", "maxItems", "maxProperties") if k in node]
        assert stated and min(stated) <= app.config[name], (name, node)
    by_name = {name: node for name, node in found}
    assert by_name["CONTINUATION_MAX_NEW_TOKENS"]["maximum"] == 7
    assert by_name["STOVE_TIMER_MAX_MIN"]["maximum"] == 30.5
    assert by_name["MAD_MAX_DIM"]["maximum"] == 12
    assert by_name["CONTINUATION_MAX_PROMPT_CHARS"]["maxLength"] == app.config["CONTINUATION_MAX_PROMPT_CHARS"]
    assert by_name["TOKENIZE_MAX_VOCAB_PIECES"]["maxProperties"] == app.config["TOKENIZE_MAX_VOCAB_PIECES"]
    # The stated bound is the enforced one: one over it is refused, naming the limit.
    r = app.test_client().post("/api/continue", json={"prompt": "白云", "max_new_tokens": 8})
    assert r.status_code == 422 and r.json["limit"] == "CONTINUATION_MAX_NEW_TOKENS" and r.json["limit_value"] == 7
    assert r.json["error"] == "8 new tokens is over the limit of 7 new tokens; use at most 7 new tokens"
    assert app.test_client().post("/api/continue", json={"prompt": "白云", "max_new_tokens": 7}).status_code == 200


def test_an_x_limit_without_a_setting_fails_the_build(echo_app):
    class Capped(BaseModel):
        n: int = Field(json_schema_extra={"x-limit": "NO_SUCH_LIMIT"})

    bp = ApiBlueprint("capped", __name__)

    @bp.api("POST", "/api/capped", body=Capped)
    def capped(body: Capped) -> dict:
        return {}

    echo_app.register_blueprint(bp)
    with pytest.raises(ValueError, match="NO_SUCH_LIMIT"):
        build_openapi(echo_app)


def test_declared_caps_are_enforced_for_every_endpoint(tmp_path):
    """One ``capped_by`` declaration: a 422 in the user's words for numbers, text and lists, the setting in ``limit``;
    unset fields pass."""
    from backend import create_app
    from backend.web.caps import capped_by
    from tests.conftest import config_for_tests

    class Capped(BaseModel):
        n: int = Field(json_schema_extra=capped_by("TEST_MAX_N"))
        text: str = Field("", json_schema_extra=capped_by("TEST_MAX_N"))
        items: list[int] | None = Field(None, json_schema_extra=capped_by("TEST_MAX_N"))

    bp = ApiBlueprint("capped_test", __name__)

    @bp.api("POST", "/api/capped-test", body=Capped, summary="capped")
    def capped(body: Capped):
        return {"ok": True}

    app = create_app(config_for_tests(tmp_path, TEST_MAX_N=3))
    app.register_blueprint(bp)
    client = app.test_client()
    assert client.post("/api/capped-test", json={"n": 3, "text": "abc", "items": [1, 2, 3]}).status_code == 200
    assert client.post("/api/capped-test", json={"n": 3}).status_code == 200  # items unset: nothing to measure
    for payload, field, value in [({"n": 4}, "n", 4), ({"n": 1, "text": "abcd"}, "text", 4),
                                  ({"n": 1, "items": [1, 2, 3, 4, 5]}, "items", 5)]:
        r = client.post("/api/capped-test", json=payload)
        assert r.status_code == 422 and r.json["code"] == "limit_exceeded" and r.json["field"] == field
        noun = {"n": "n", "text": "characters", "items": "entries"}[field]
        assert r.json["error"] == f"{value} {noun} is over the limit of 3 {noun}; use at most 3 {noun}"
        assert (r.json["limit"], r.json["limit_value"]) == ("TEST_MAX_N", 3)
