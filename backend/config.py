"""Every setting and every limit of the backend, in one place, typed.

One pydantic model per service (``WebConfig``, ``JobsConfig``, ... ``StoveConfig``) declares its settings:
the field name is the key (``app.config["KEY"]``) and the environment variable, the annotation is its kind
(``backend/config_types.py``: strict booleans, finite numbers, durations, paths, tokens, JSON lists...), the
``Field`` its default and range, the comment what it is for. ``Settings`` joins them. ``load_config`` takes
the defaults, then environment variables of the same names, then the overrides given to ``create_app``, and
validates all of them alike: any bad value raises one :class:`ConfigError` whose message is one line naming
the setting, the value and what is allowed. Command lines print that line and exit 2 (``exit_on_config_error``).

Declaring a setting: add a field to your service's model, e.g.
``FOO_MAX_ITEMS: Int = Field(100, ge=1, le=10_000)  # items per request``; rules between settings go in a
``model_validator(mode="after")`` of that model raising ``refuse(...)`` with ``setting="FOO_..."``.
"""

import os
import re
import sys
from collections.abc import Callable, Mapping
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from backend.config_types import (
    SECRET,
    Bool,
    ExistingDir,
    Float,
    FromJson,
    HttpUrl,
    Int,
    IpAddressOrEmpty,
    Name,
    OptionalToken,
    Pattern,
    Seconds,
    Token,
    WritableDir,
    WritableFile,
    file_problem,
    refuse,
)

INSTANCE_DIR = Path(os.environ.get("BACKEND_INSTANCE_DIR", Path.cwd() / "instance"))
MiB = 1024 * 1024
DAY_S = 86_400.0


class ConfigError(ValueError):
    """A setting is missing or invalid. The message is one line: the setting, the value, what is allowed."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)


# --------------------------------------------------------------------------------------------- web
class WebConfig(_Section):
    HOST: Name = "127.0.0.1"
    PORT: Int = Field(5000, ge=1, le=65535)
    INSTANCE_DIR: WritableDir() = str(INSTANCE_DIR)
    # the largest upload (a 16 MiB .npy) plus form overhead
    MAX_CONTENT_LENGTH: Int = Field(16 * MiB + 64 * 1024, ge=1, le=4096 * MiB)
    MAX_JSON_BYTES: Int = Field(4 * MiB, ge=1, le=1024 * MiB)  # JSON request bodies
    VALIDATE_RESPONSES: Bool = False  # on in tests: responses are checked against their declared schema
    MAX_JSON_DEPTH: Int = Field(64, ge=1, le=10_000)  # nesting of a JSON body, checked before parsing (400 beyond)
    # Host headers served (DNS rebinding guard): add the names and addresses people use on a LAN ([] accepts any
    # host). IPv6 literals cannot be listed (werkzeug's check); use a name for an IPv6 address.
    TRUSTED_HOSTS: Annotated[list[Name], FromJson] = ["127.0.0.1", "localhost"]
    # compute requests running at once per process; one more gets 503 + Retry-After
    COMPUTE_CONCURRENCY: Int = Field(2, ge=1, le=1024)
    COMPUTE_RETRY_AFTER_S: Int = Field(2, ge=1, le=3600)  # the Retry-After of those 503s
    # a direct (synchronous) answer's time budget: estimated longer -> job or 422
    SYNC_MAX_SECONDS: Seconds = Field(10.0, le=3600)
    SYNC_OVERRUN_FACTOR: Float = Field(2.0, ge=1, le=1000)  # a run still going after SYNC_MAX_SECONDS x this stops
    SECURITY_HEADERS: Bool = True  # CSP, frame-ancestors, nosniff, Referrer-Policy, COOP on every response
    # Production server (gunicorn.conf.py): workers, threads, and how long a client may take to send a request.
    WEB_WORKERS: Int = Field(2, ge=1, le=256)  # gunicorn worker processes (jobs and the stove run beside them)
    WEB_THREADS: Int = Field(16, ge=1, le=1024)  # threads per worker: a slow client holds one thread, not a worker
    WEB_HEADER_TIMEOUT_S: Seconds = Field(10.0, le=3600)  # request line + headers must arrive within this
    WEB_BODY_TIMEOUT_S: Seconds = Field(60.0, le=3600)  # the whole body within this (16 MiB at ~300 kB/s)
    # Python's thread switch interval in web workers: how soon a control request gets the GIL back under compute
    WEB_GIL_SWITCH_S: Float = Field(0.001, ge=1e-5, le=0.1)
    WEB_SIDECARS: Bool = True  # gunicorn and `serve` run the stove scheduler and the job workers as own processes


# --------------------------------------------------------------------------------------------- redirector
class RedirectorConfig(_Section):
    COOLPAPERS_BASE: HttpUrl() = "https://papers.cool"
    RESOLVE_MAX_QUERY_BYTES: Int = Field(64 * 1024, ge=1, le=16 * MiB)

    @model_validator(mode="after")
    def _base_is_a_plain_prefix(self) -> "RedirectorConfig":
        # Targets are the base + "/arxiv/...": a query, a fragment, a quote or a "." / ".." segment (also %2e)
        # in the base would make browsers resolve them elsewhere (issue 15: a base with a path is never left).
        base = self.COOLPAPERS_BASE
        dot_segment = any(s.lower().replace("%2e", ".") in (".", "..") for s in urlsplit(base).path.split("/"))
        if dot_segment or any(c in base for c in "?#\"'<>\\"):
            raise refuse("an http(s) URL without query, fragment, quotes, backslashes or . and .. path segments",
                         setting="COOLPAPERS_BASE")
        return self


# --------------------------------------------------------------------------------------------- jobs
ModuleName = Pattern(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", "a dotted Python module name")


class JobsConfig(_Section):
    # "embedded": threads + SQLite in the backend; "celery": Redis broker + workers
    JOBS_BACKEND: Literal["embedded", "celery"] = "embedded"
    JOBS_DB: WritableFile("<INSTANCE_DIR>/jobs.sqlite3") = ""  # embedded backend's SQLite file
    JOBS_RESULT_DIR: WritableDir("<INSTANCE_DIR>/job_results") = ""  # embedded backend's large results
    # worker threads per backend process (embedded); processes per celery worker
    JOBS_WORKERS: Int = Field(2, ge=1, le=256)
    JOBS_EMBEDDED_POOL: Bool = True  # False: this process only queues; `python -m backend.jobs.worker` runs jobs
    # larger results are stored aside, linked as GET /api/jobs/<id>/result
    JOBS_INLINE_RESULT_BYTES: Int = Field(256 * 1024, ge=0, le=1024 * MiB)
    JOBS_MAX_RESULT_BYTES: Int = Field(64 * MiB, ge=1, le=64 * 1024 * MiB)  # a larger result fails its job
    JOBS_MAX_PENDING: Int = Field(1000, ge=1, le=10_000_000)  # queued + running jobs; more submissions get 429
    # queued + running jobs of one owner (API token, or client address); 429 beyond
    JOBS_MAX_PENDING_PER_CLIENT: Int = Field(20, ge=1, le=10_000_000)
    # all stored results together; the oldest finished jobs go first
    JOBS_MAX_STORED_BYTES: Int = Field(1024 * MiB, ge=1, le=1024 * 1024 * MiB)
    JOBS_KEY_SECRET: OptionalToken = ""  # signs job keys; "" = generated once into <INSTANCE_DIR>/jobs_key_secret
    JOBS_DEMO_MAX_SECONDS: Seconds = Field(60.0, le=DAY_S)  # jobs.demo_sleep: steps x step_s
    JOBS_DEMO_MAX_PAYLOAD_KB: Int = Field(256, ge=0, le=4096)  # jobs.demo_sleep: filler in its result
    # a job still running after this fails at its next progress call
    JOBS_MAX_RUNTIME_S: Seconds = Field(3600.0, le=30 * DAY_S)
    JOBS_KEEP_FINISHED: Int = Field(5000, ge=1, le=10_000_000)  # older finished jobs and their results are deleted
    JOBS_LIST_MAX: Int = Field(200, ge=1, le=100_000)  # cap on GET /api/jobs?limit=
    # idle embedded workers look for jobs queued by other processes this often
    JOBS_POLL_S: Seconds = Field(0.5, le=3600)
    JOBS_HEARTBEAT_S: Seconds = Field(2.0, le=3600)  # running jobs refresh their heartbeat this often
    # a running job without heartbeat for this long fails as interrupted
    JOBS_STALE_S: Seconds = Field(30.0, le=30 * DAY_S)
    JOBS_PROGRESS_INTERVAL_S: Float = Field(0.1, ge=0, le=3600)  # progress is written at most this often per job
    # an in-app pool's threads exit after this long without work (restart on submit)
    JOBS_IDLE_EXIT_S: Seconds = Field(300.0, le=30 * DAY_S)
    # extra modules to import for their @task registrations (workers and web)
    JOBS_TASK_MODULES: Annotated[list[ModuleName], FromJson] = []
    CELERY_BROKER_URL: Name = "redis://127.0.0.1:6379/0"
    JOBS_REDIS_URL: str = ""  # job state of the celery backend; "" = CELERY_BROKER_URL
    JOBS_REDIS_PREFIX: Name = "jobs"  # key prefix in Redis
    JOBS_CELERY_QUEUE: Name = "jobs"  # the Celery queue workers consume
    # a message reserved by a worker that died is redelivered after this
    JOBS_VISIBILITY_TIMEOUT_S: Int = Field(3600, ge=1, le=30 * 86_400)


# --------------------------------------------------------------------------------------------- tokenize
class TokenizeConfig(_Section):
    TOKENIZE_MAX_TEXT_CHARS: Int = Field(10_000, ge=1, le=10_000_000)  # text of one /api/tokenize request
    # samples x text length per request (bounds compute and response)
    TOKENIZE_MAX_SAMPLE_CHARS: Int = Field(1_000_000, ge=1, le=1_000_000_000)
    TOKENIZE_MAX_VOCAB_PIECES: Int = Field(50_000, ge=1, le=10_000_000)  # entries of a vocabulary sent with the request
    # longest piece of such a vocabulary (edges per position <= this)
    TOKENIZE_MAX_PIECE_CHARS: Int = Field(64, ge=1, le=10_000)
    # samples behind one page chart (/api/tokenize/distribution)
    TOKENIZE_MAX_PAGE_SAMPLES: Int = Field(20_000, ge=1, le=10_000_000)
    TOKENIZE_WARM_UP: Bool = True  # compile the kernels and load the default model in the background at start


# --------------------------------------------------------------------------------------------- continuation
class ContinuationConfig(_Section):
    CONTINUATION_CHECKPOINTS: ExistingDir("the package's shipped data/") = ""  # folder with tokenizer.model + gpt.pt
    # prompt length cap (the GPT sees its last 63 tokens anyway)
    CONTINUATION_MAX_PROMPT_CHARS: Int = Field(2000, ge=1, le=1_000_000)
    # ordinary decoding steps per request (one forward pass each)
    CONTINUATION_MAX_NEW_TOKENS: Int = Field(64, ge=1, le=100_000)
    # backoff-multi removes at most this many prompt tokens
    CONTINUATION_MAX_BACKOFF_TOKENS: Int = Field(8, ge=0, le=10_000)
    # first-step candidates listed in a response (the rest summed)
    CONTINUATION_MAX_CANDIDATES: Int = Field(20, ge=1, le=100_000)


# --------------------------------------------------------------------------------------------- attention
class AttentionConfig(_Section):
    # folder with ckpt_*.pt and exp_* files
    ATTENTION_DATA_PATH: ExistingDir("the shipped services/attention/data") = ""
    # bytes of text one /api/attention/score request may score (8x N)
    ATTENTION_MAX_SCORE_LENGTH: Int = Field(1024, ge=1, le=1_000_000)
    # largest n of the relative-position matrix (n x n numbers in the reply)
    ATTENTION_RELPOS_MAX_N: Int = Field(512, ge=1, le=100_000)
    # torch threads while scoring (more threads slow tiny models on a busy CPU)
    ATTENTION_TORCH_THREADS: Int = Field(1, ge=1, le=1024)


# --------------------------------------------------------------------------------------------- matrix
class MatrixConfig(_Section):
    # entries of a matrix sent to /api/matrix/* (a 16 MiB float64 .npy)
    MATRIX_MAX_ENTRIES: Int = Field(2_097_152, ge=1, le=10**10)
    MATRIX_MAX_DIM: Int = Field(16_384, ge=1, le=10**8)  # rows or columns of such a matrix
    MATRIX_UPLOAD_MAX_BYTES: Int = Field(16 * MiB, ge=1, le=64 * 1024 * MiB)  # an uploaded .npy file
    MATRIX_MAX_OVERSAMPLE: Int = Field(200, ge=0, le=100_000)  # randomized SVD: extra sketch columns
    MATRIX_MAX_POWER_ITERS: Int = Field(20, ge=0, le=10_000)  # randomized SVD: power iterations
    # numbers of returned factors / dense approximations per response
    MATRIX_MAX_RETURN_ENTRIES: Int = Field(1_000_000, ge=1, le=10**10)
    # side of the square image the page compresses (a perfect square; 1024 takes ~16 s on 2 busy cores)
    MATRIX_IMAGE_MAX_SIZE: Int = Field(256, ge=1, le=65_536)
    MATRIX_IMAGE_UPLOAD_MAX_BYTES: Int = Field(8 * MiB, ge=1, le=64 * 1024 * MiB)  # an uploaded image file
    # decoded pixels of an uploaded image (decompression-bomb guard)
    MATRIX_IMAGE_MAX_PIXELS: Int = Field(40_000_000, ge=1, le=10**11)


# --------------------------------------------------------------------------------------------- mad
class MadConfig(_Section):
    MAD_MAX_DIM: Int = Field(200, ge=1, le=100_000)  # dimension of the target
    # dimension for the mixture model (EM cost grows as d^2 per component)
    MAD_MAX_GMM_DIM: Int = Field(10, ge=1, le=10_000)
    MAD_MAX_GMM_COMPONENTS: Int = Field(50, ge=1, le=100_000)
    # the flow model (torch RealNVP): dimension, coupling layers, hidden width, Adam steps per generation
    MAD_MAX_FLOW_DIM: Int = Field(10, ge=2, le=1000)
    MAD_MAX_FLOW_LAYERS: Int = Field(16, ge=1, le=1000)
    MAD_MAX_FLOW_HIDDEN: Int = Field(256, ge=1, le=100_000)
    MAD_MAX_FLOW_STEPS: Int = Field(20000, ge=1, le=10**9)
    MAD_MAX_SAMPLES: Int = Field(20000, ge=1, le=10**9)  # each of n_ini, n_real, n_synth
    # size of D_t (an accumulating pool grows by n_synth per generation)
    MAD_MAX_TRAINING_SET: Int = Field(100000, ge=1, le=10**10)
    MAD_MAX_GENERATIONS: Int = Field(2000, ge=1, le=10**7)
    # small problems run 10,000+ chains; MAD_MAX_WORK bounds the rest
    MAD_MAX_REPLICATES: Int = Field(100000, ge=1, le=10**9)
    MAD_MAX_EVAL: Int = Field(2000, ge=1, le=10**8)  # n_eval: samples per chain for precision/recall, modes, W2
    MAD_MAX_SCATTER_POINTS: Int = Field(1000, ge=0, le=10**8)  # points per generation sent back for the 2-D view
    MAD_MAX_SCATTER_TOTAL: Int = Field(200_000, ge=0, le=10**10)  # scatter_points x generations (size of the answer)
    # replicates x training-set size x dim held at once (~320 MB)
    MAD_MAX_ARRAY_ELEMENTS: Int = Field(40_000_000, ge=1, le=10**12)
    # estimated work of a run (mad.estimate_work: 5e9 units per predicted second on one idle core, calibrated per
    # model by scripts/mad_calibrate.py): ~500 s
    MAD_MAX_WORK: Float = Field(2.5e12, gt=0, le=1e18)
    # runs predicted to take up to ~1 s answer directly; larger ones become a mad.simulate job (202)
    MAD_SYNC_MAX_WORK: Float = Field(5e9, ge=0, le=1e18)
    # work units one core does per second: a run's estimated seconds for SYNC_MAX_SECONDS
    MAD_WORK_PER_SECOND: Float = Field(5e9, gt=0, le=1e18)


# --------------------------------------------------------------------------------------------- stove
BurnerId = Pattern(r"[a-z0-9][a-z0-9_-]{0,31}", "a burner id (lowercase letters, digits, '-', '_'; at most 32)")
PersonName = Pattern(r"[\w.@-]+", "a person's name (letters, digits, '.', '@', '-', '_')")
EntityId = Pattern(r"[a-z_]+\.[a-z0-9_]+", "a Home Assistant entity id such as switch.stove_relay_1")
MiioToken = Pattern(r"[0-9a-fA-F]{32}", "a miIO token of 32 hex digits", optional=True)
HaNotifyService = Pattern(r"(notify\.)?[a-z0-9_]+", "a Home Assistant notify service such as notify.mobile_app_phone",
                          optional=True)


def _distinct(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise refuse("a list without duplicates")
    return values


def _miot_property(value: Any) -> Any:
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= 65535 for x in value)
    if not ok:
        raise refuse("[siid, piid]: two integers from 1 to 65535 (see the relay's miot-spec)")
    return tuple(value)


MiotProperty = Annotated[tuple[int, int], BeforeValidator(_miot_property)]


class StoveConfig(_Section):
    STOVE_ADAPTER: Literal["simulated", "home_assistant", "miio"] = "simulated"  # relay driver
    STOVE_BURNERS: Annotated[list[BurnerId], FromJson, Field(min_length=1), AfterValidator(_distinct)] = [
        "left", "right"]  # the only burner ids the API accepts
    STOVE_NC_INVERTED: Bool = True  # relay on the normally-closed terminal: firmware "on" = loop cut (the one place)
    # time the gas valve needs to drop once the loop opens (confirm on hardware)
    STOVE_VALVE_RELEASE_S: Seconds = Field(2.0, le=120)
    STOVE_CUT_HOLD_S: Seconds = Field(5.0, le=600)  # cut pulse length; must exceed STOVE_VALVE_RELEASE_S
    STOVE_TIMER_MAX_MIN: Float = Field(240.0, gt=0, le=1440)  # timer cap: 0 < minutes <= this
    STOVE_RETRY_ATTEMPTS: Int = Field(5, ge=1, le=100)  # cut attempts before FAULT + alert
    STOVE_RETRY_BASE_S: Seconds = Field(0.5, le=600)  # backoff after the first failed attempt, doubled each time
    STOVE_RETRY_MAX_S: Seconds = Field(8.0, le=3600)  # backoff cap
    STOVE_READBACK_ATTEMPTS: Int = Field(3, ge=1, le=100)  # restore + read-back attempts before FAULT + alert
    STOVE_DB: WritableFile("<INSTANCE_DIR>/stove.sqlite3") = ""  # SQLite file (timers, commands, audit)
    # bearer token for mutating endpoints; "" = generated once into STOVE_TOKEN_FILE
    STOVE_API_TOKEN: OptionalToken = ""
    # optional per-person tokens {"name": "token"}: the audit log names the person
    STOVE_API_TOKENS: Annotated[dict[PersonName, Token], FromJson, Field(json_schema_extra={SECRET: True})] = {}
    STOVE_TOKEN_FILE: WritableFile("<INSTANCE_DIR>/stove_api_token, mode 0600") = ""  # where a generated token is kept
    # accepted actions stay in the audit log at least this long ...
    STOVE_AUDIT_KEEP_DAYS: Float = Field(365.0, ge=1, le=36_500)
    # ... and the newest this many stay in any case (refused requests are counted apart, never pruning these)
    STOVE_AUDIT_MIN_ROWS: Int = Field(10_000, ge=100, le=10**9)
    # refused requests: counters per client, minute, endpoint and reason; the newest this many are kept
    STOVE_REFUSALS_MAX_ROWS: Int = Field(100_000, ge=100, le=10**8)
    STOVE_AUDIT_PAGE_MAX: Int = Field(500, ge=1, le=100_000)  # cap on GET /api/stove/audit?limit=
    STOVE_ACTOR_MAX_CHARS: Int = Field(64, ge=1, le=150)  # cap on the X-Stove-Actor label recorded in the audit log
    # a shutoff/restore request waits this long for delivery, then answers 202
    STOVE_REQUEST_WAIT_S: Seconds = Field(15.0, le=600)
    # scheduler tick (timer precision, standby takeover, cross-process pickup)
    STOVE_POLL_S: Seconds = Field(0.25, ge=0.01, le=60)
    # leadership lease: a leader renews it every third of this; a standby takes over when it is not renewed
    # for this long (a frozen or dead leader); timers are late by at most STOVE_LEASE_S + STOVE_POLL_S then
    STOVE_LEASE_S: Seconds = Field(5.0, ge=0.2, le=600)
    STOVE_ALERT_AFTER_FAILURES: Int = Field(3, ge=1, le=1000)  # failed scheduler steps in a row before an alert
    STOVE_SCHEDULER: Bool = True  # False: this process only queues; `python -m backend.services.stove` executes
    STOVE_SIM_RELEASE_S: Seconds = Field(1.0, le=120)  # simulated valve's release time
    STOVE_SIM_WIRING: Literal["NC", "NO"] = "NC"  # simulated relay terminal
    STOVE_HA_URL: HttpUrl() = "http://homeassistant.local:8123"  # Home Assistant base URL
    STOVE_HA_TOKEN: OptionalToken = ""  # Home Assistant long-lived access token ("" = adapter not used)
    STOVE_HA_ENTITIES: Annotated[dict[BurnerId, EntityId], FromJson] = {
        "left": "switch.stove_relay_1", "right": "switch.stove_relay_2"}  # burner -> switch
    STOVE_MIIO_IP: IpAddressOrEmpty = ""  # Mi Home relay address
    STOVE_MIIO_TOKEN: MiioToken = Field("", json_schema_extra={SECRET: True})  # its 32-hex-digit miIO token
    STOVE_MIIO_PROPS: Annotated[dict[BurnerId, MiotProperty], FromJson] = {
        "left": (2, 1), "right": (3, 1)}  # burner -> [siid, piid] (see the relay's miot-spec)
    STOVE_DEVICE_TIMEOUT_S: Seconds = Field(3.0, le=120)  # per device call
    # alerts are POSTed here as JSON (e.g. ntfy, Home Assistant webhook); "" = log + DB
    # Home Assistant notify service for alerts (e.g. notify.mobile_app_phone); needs STOVE_HA_URL + STOVE_HA_TOKEN
    STOVE_HA_NOTIFY: HaNotifyService = ""
    STOVE_ALERT_WEBHOOK: HttpUrl(optional=True) = ""

    @model_validator(mode="after")
    def _stove_rules(self) -> "StoveConfig":
        if not self.STOVE_CUT_HOLD_S > self.STOVE_VALVE_RELEASE_S:
            raise refuse(f"longer than STOVE_VALVE_RELEASE_S ({self.STOVE_VALVE_RELEASE_S:g} s), "
                         "or the valve may stay open", setting="STOVE_CUT_HOLD_S")
        burners = self.STOVE_BURNERS
        if self.STOVE_ADAPTER == "home_assistant":
            if not self.STOVE_HA_TOKEN:
                raise refuse("set (a long-lived access token) for the home_assistant adapter", setting="STOVE_HA_TOKEN")
            _cover(burners, self.STOVE_HA_ENTITIES, "STOVE_HA_ENTITIES")
        if self.STOVE_ADAPTER == "miio":
            if not self.STOVE_MIIO_IP:
                raise refuse("set (the relay's IP address) for the miio adapter", setting="STOVE_MIIO_IP")
            if not self.STOVE_MIIO_TOKEN:
                raise refuse("set (32 hex digits) for the miio adapter", setting="STOVE_MIIO_TOKEN")
            _cover(burners, self.STOVE_MIIO_PROPS, "STOVE_MIIO_PROPS")
        if self.STOVE_HA_NOTIFY and not self.STOVE_HA_TOKEN:
            raise refuse("empty unless STOVE_HA_TOKEN is set (the notify call needs it)", setting="STOVE_HA_NOTIFY")
        if self.STOVE_LEASE_S < 4 * self.STOVE_POLL_S:
            raise refuse(f"at least 4 x STOVE_POLL_S ({4 * self.STOVE_POLL_S:g} s): the leader renews it every "
                         "third and must get a turn in between", setting="STOVE_LEASE_S")
        seen = {self.STOVE_API_TOKEN}
        for name, token in self.STOVE_API_TOKENS.items():
            if len(name) > self.STOVE_ACTOR_MAX_CHARS:
                raise refuse(f"names of at most STOVE_ACTOR_MAX_CHARS={self.STOVE_ACTOR_MAX_CHARS} characters",
                             setting="STOVE_API_TOKENS", item=name)
            if token in seen:
                raise refuse("a token of each person's own (distinct, and not STOVE_API_TOKEN)",
                             setting="STOVE_API_TOKENS", item=name)
            seen.add(token)
        return self


def _cover(burners: list[str], mapping: Mapping[str, Any], setting: str) -> None:
    missing = [b for b in burners if b not in mapping]
    if missing:
        raise refuse(f"an object with an entry for every burner (missing: {', '.join(missing)})", setting=setting)


# --------------------------------------------------------------------------------------------- api access
class AccessConfig(_Section):
    # bearer token for compute and job endpoints; "" and no API_TOKENS = loopback clients only
    API_TOKEN: OptionalToken = ""
    # per-person tokens {"name": "token"} for compute and jobs (jobs record their owner)
    API_TOKENS: Annotated[dict[PersonName, Token], FromJson, Field(json_schema_extra={SECRET: True})] = {}


# --------------------------------------------------------------------------------------------- all of them
class Settings(WebConfig, RedirectorConfig, JobsConfig, TokenizeConfig, ContinuationConfig, AttentionConfig,
               MatrixConfig, MadConfig, StoveConfig, AccessConfig):
    """Every setting of the backend. Rules that join settings of several services go here."""

    @model_validator(mode="after")
    def _derived_paths(self) -> "Settings":
        # "" means a file under INSTANCE_DIR: that file must be possible too.
        for setting, name in (("STOVE_DB", "stove.sqlite3"), ("JOBS_DB", "jobs.sqlite3"),
                              ("STOVE_TOKEN_FILE", "stove_api_token")):
            if getattr(self, setting) == "":
                problem = file_problem(os.path.join(self.INSTANCE_DIR, name))
                if problem:
                    raise refuse(f"a usable file; its default <INSTANCE_DIR>/{name} is not ({problem})",
                                 setting=setting)
        return self


DEFAULTS: dict[str, Any] = {name: field.get_default(call_default_factory=True)
                            for name, field in Settings.model_fields.items()}

_M = TypeVar("_M", bound=BaseModel)


# --------------------------------------------------------------------------------------------- loading
def load_config(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None, *,
                overrides_source: str = "create_app config") -> dict[str, Any]:
    """Defaults, then environment variables of the same names, then ``overrides``; all validated.

    Keys that are not settings of this module (Flask's own, a test's) pass through unchanged.
    Raises :class:`ConfigError` (one line) on the first bad value.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in Settings.model_fields:
        if key in environ:
            values[key], sources[key] = environ[key], "environment variable"
    extra: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if key in Settings.model_fields:
            values[key], sources[key] = value, overrides_source
        else:
            extra[key] = value
    settings = _validate(Settings, values, sources)
    return {**settings.model_dump(), **extra}


def validate(config: Mapping[str, Any], model: type[_M] = Settings, *, source: str = "config") -> _M:
    """Check an existing config mapping (e.g. ``app.config``) against ``model``: every field must be present."""
    missing = [key for key in model.model_fields if key not in config]
    if missing:
        raise ConfigError(f"missing setting {missing[0]}", setting=missing[0])
    values = {key: config[key] for key in model.model_fields}
    return _validate(model, values, dict.fromkeys(values, source))


def _validate(model: type[_M], values: dict[str, Any], sources: dict[str, str]) -> _M:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise _config_error(model, exc, values, sources) from None


def _config_error(model: type[BaseModel], exc: ValidationError, values: dict[str, Any],
                  sources: dict[str, str]) -> ConfigError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    ctx = first.get("ctx") or {}
    loc = list(first["loc"])
    setting = str(loc[0]) if loc else str(ctx.get("setting", "settings"))
    where = setting + "".join(f"[{part!r}]" for part in loc[1:] if part != "[key]")
    if "item" in ctx:
        where += f"[{ctx['item']!r}]"
    if len(loc) > 1:
        shown = first.get("input")
    elif setting in values:
        shown = values[setting]
    else:
        field = model.model_fields.get(setting)
        shown = field.get_default(call_default_factory=True) if field is not None else first.get("input")
    secret = _is_secret(model, setting) and loc[-1:] != ["[key]"]
    message = f"{where} {_requirement(first)}; got {_show(shown, secret)} ({_source(sources, setting)})"
    others = sorted({str(e["loc"][0]) for e in errors[1:] if e["loc"]} - {setting})
    if others:
        message += f"; also invalid: {', '.join(others)}"
    return ConfigError(message, setting=setting)


def _requirement(error: Any) -> str:
    """What is allowed, as "must ...": from our validators' text, else from pydantic's message."""
    ctx = error.get("ctx") or {}
    if error["type"] == "setting":
        return f"must be {ctx['allowed']}"
    if error["type"] == "literal_error":
        return "must be one of " + ", ".join(re.findall(r"'[^']*'", str(ctx.get("expected", ""))))
    if error["type"] == "missing":
        return "must be set"
    text = re.sub(r"^Value error, ", "", error["msg"])
    found = re.match(r"^\w+ should (.*)$", text)
    return f"must {found.group(1)}" if found else f"is invalid: {text}"


def _show(value: Any, secret: bool) -> str:
    if secret and isinstance(value, str) and value:
        return f"<hidden, {len(value)} characters>"
    if secret and isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: <hidden>" for k in value) + "}"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _is_secret(model: type[BaseModel], setting: str) -> bool:
    field = model.model_fields.get(setting)
    extra = field.json_schema_extra if field is not None else None
    return isinstance(extra, dict) and bool(extra.get(SECRET))


def _source(sources: dict[str, str], setting: str) -> str:
    return f"from the {sources[setting]}" if setting in sources else "the default"


# --------------------------------------------------------------------------------------------- command lines
def report_config_error(exc: ConfigError) -> None:
    """Print the one line of a ConfigError where an operator looks (stderr)."""
    print(f"configuration error: {exc}", file=sys.stderr, flush=True)


def load_config_or_exit(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None,
                        **kwargs: Any) -> dict[str, Any]:
    """``load_config`` for start-up code outside a command's ``main`` (e.g. ``gunicorn.conf.py``):
    a bad setting prints its one line and exits with status 2, no traceback."""
    try:
        return load_config(overrides, environ, **kwargs)
    except ConfigError as exc:
        report_config_error(exc)
        raise SystemExit(2) from None


_F = TypeVar("_F", bound=Callable[..., Any])


def exit_on_config_error(main: _F) -> _F:
    """Decorate a command line's ``main``: a ConfigError anywhere inside prints one line and exits 2."""
    @wraps(main)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except ConfigError as exc:
            report_config_error(exc)
            raise SystemExit(2) from None

    return run  # type: ignore[return-value]
