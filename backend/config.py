"""Every setting and every limit of the backend, in one place.

Each key may be overridden by an environment variable of the same name (parsed by the default's
type) and then by the dict given to ``create_app``. Services read these through ``current_app.config``;
their pure cores take plain arguments.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

INSTANCE_DIR = Path(os.environ.get("BACKEND_INSTANCE_DIR", Path.cwd() / "instance"))

DEFAULTS: dict[str, Any] = {
    # --- web ---
    "HOST": "127.0.0.1",
    "PORT": 5000,
    "INSTANCE_DIR": str(INSTANCE_DIR),
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024 + 64 * 1024,  # the largest upload (a 16 MiB .npy) plus form overhead
    "MAX_JSON_BYTES": 4 * 1024 * 1024,  # JSON request bodies
    "VALIDATE_RESPONSES": False,  # on in tests: responses are checked against their declared schema
    # --- redirector ---
    "COOLPAPERS_BASE": "https://papers.cool",
    "RESOLVE_MAX_QUERY_BYTES": 64 * 1024,
    # --- jobs ---
    "JOBS_BACKEND": "embedded",  # "embedded": threads + SQLite in the backend; "celery": Redis broker + workers
    "JOBS_DB": "",  # embedded backend's SQLite file; "" = <INSTANCE_DIR>/jobs.sqlite3
    "JOBS_RESULT_DIR": "",  # embedded backend's large results; "" = <INSTANCE_DIR>/job_results
    "JOBS_WORKERS": 2,  # worker threads per backend process (embedded); processes per celery worker
    "JOBS_EMBEDDED_POOL": True,  # False: this process only queues; `python -m backend.jobs.worker` runs jobs
    "JOBS_INLINE_RESULT_BYTES": 256 * 1024,  # larger results are stored aside, linked as GET /api/jobs/<id>/result
    "JOBS_MAX_RESULT_BYTES": 64 * 1024 * 1024,  # a larger result fails its job
    "JOBS_MAX_PENDING": 1000,  # queued + running jobs; more submissions get 429
    "JOBS_MAX_RUNTIME_S": 3600.0,  # a job still running after this fails at its next progress call
    "JOBS_KEEP_FINISHED": 5000,  # older finished jobs and their results are deleted
    "JOBS_LIST_MAX": 200,  # cap on GET /api/jobs?limit=
    "JOBS_POLL_S": 0.5,  # idle embedded workers look for jobs queued by other processes this often
    "JOBS_HEARTBEAT_S": 2.0,  # running jobs refresh their heartbeat this often
    "JOBS_STALE_S": 30.0,  # a running job without heartbeat for this long fails as interrupted
    "JOBS_PROGRESS_INTERVAL_S": 0.1,  # progress is written at most this often per job
    "JOBS_IDLE_EXIT_S": 300.0,  # an in-app pool's threads exit after this long without work (restart on submit)
    "JOBS_TASK_MODULES": [],  # extra modules to import for their @task registrations (workers and web)
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "JOBS_REDIS_URL": "",  # job state of the celery backend; "" = CELERY_BROKER_URL
    "JOBS_REDIS_PREFIX": "jobs",  # key prefix in Redis
    "JOBS_CELERY_QUEUE": "jobs",  # the Celery queue workers consume
    "JOBS_VISIBILITY_TIMEOUT_S": 3600,  # a message reserved by a worker that died is redelivered after this
    # --- tokenize ---
    "TOKENIZE_MAX_TEXT_CHARS": 10_000,  # text of one /api/tokenize request
    "TOKENIZE_MAX_SAMPLE_CHARS": 1_000_000,  # samples x text length per request (bounds compute and response)
    "TOKENIZE_MAX_VOCAB_PIECES": 50_000,  # entries of a vocabulary sent with the request
    "TOKENIZE_MAX_PIECE_CHARS": 64,  # longest piece of such a vocabulary (edges per position <= this)
    "TOKENIZE_MAX_PAGE_SAMPLES": 20_000,  # samples behind one page chart (/api/tokenize/distribution)
    "TOKENIZE_WARM_UP": True,  # compile the kernels and load the default model in the background at start
    # --- continuation ---
    "CONTINUATION_CHECKPOINTS": "",  # folder with tokenizer.model + gpt.pt; "" = the package's shipped data/
    "CONTINUATION_MAX_PROMPT_CHARS": 2000,  # prompt length cap (the GPT sees its last 63 tokens anyway)
    "CONTINUATION_MAX_NEW_TOKENS": 64,  # ordinary decoding steps per request (one forward pass each)
    "CONTINUATION_MAX_BACKOFF_TOKENS": 8,  # backoff-multi removes at most this many prompt tokens
    "CONTINUATION_MAX_CANDIDATES": 20,  # first-step candidates listed in a response (the rest summed)
    # --- attention ---
    "ATTENTION_DATA_PATH": "",  # folder with ckpt_*.pt and exp_* files; "" = the shipped services/attention/data
    "ATTENTION_MAX_SCORE_LENGTH": 1024,  # bytes of text one /api/attention/score request may score (8x N)
    "ATTENTION_RELPOS_MAX_N": 512,  # largest n of the relative-position matrix (n x n numbers in the reply)
    "ATTENTION_TORCH_THREADS": 1,  # torch threads while scoring (more threads slow tiny models on a busy CPU)
    # --- matrix ---
    "MATRIX_MAX_ENTRIES": 2_097_152,  # entries of a matrix sent to /api/matrix/* (a 16 MiB float64 .npy)
    "MATRIX_MAX_DIM": 16_384,  # rows or columns of such a matrix
    "MATRIX_UPLOAD_MAX_BYTES": 16 * 1024 * 1024,  # an uploaded .npy file
    "MATRIX_MAX_OVERSAMPLE": 200,  # randomized SVD: extra sketch columns
    "MATRIX_MAX_POWER_ITERS": 20,  # randomized SVD: power iterations
    "MATRIX_MAX_RETURN_ENTRIES": 1_000_000,  # numbers of returned factors / dense approximations per response
    "MATRIX_IMAGE_MAX_SIZE": 256,  # side of the square image the page compresses (a perfect square; 1024 takes ~16 s on 2 busy cores)
    "MATRIX_IMAGE_UPLOAD_MAX_BYTES": 8 * 1024 * 1024,  # an uploaded image file
    "MATRIX_IMAGE_MAX_PIXELS": 40_000_000,  # decoded pixels of an uploaded image (decompression-bomb guard)
    # --- mad ---
    "MAD_MAX_DIM": 200,  # dimension of the target
    "MAD_MAX_GMM_DIM": 10,  # dimension for the mixture model (EM cost grows as d^2 per component)
    "MAD_MAX_GMM_COMPONENTS": 50,
    "MAD_MAX_FLOW_DIM": 10,  # the flow model (torch RealNVP): dimension, coupling layers, hidden width, Adam steps
    "MAD_MAX_FLOW_LAYERS": 16,
    "MAD_MAX_FLOW_HIDDEN": 256,
    "MAD_MAX_FLOW_STEPS": 20000,
    "MAD_MAX_SAMPLES": 20000,  # each of n_ini, n_real, n_synth
    "MAD_MAX_TRAINING_SET": 100000,  # size of D_t (an accumulating pool grows by n_synth per generation)
    "MAD_MAX_GENERATIONS": 2000,
    "MAD_MAX_REPLICATES": 100000,  # small problems run 10,000+ chains; MAD_MAX_WORK bounds the rest
    "MAD_MAX_EVAL": 2000,  # n_eval: samples per chain for precision/recall, modes, W2
    "MAD_MAX_SCATTER_POINTS": 1000,  # points per generation sent back for the 2-D view
    "MAD_MAX_SCATTER_TOTAL": 200_000,  # scatter_points x generations (size of the answer)
    "MAD_MAX_ARRAY_ELEMENTS": 40_000_000,  # replicates x training-set size x dim held at once (~320 MB)
    "MAD_MAX_WORK": 2.5e12,  # estimated work of a run (mad.estimate_work, ~5e9 units/s per idle core): ~8 min
    "MAD_SYNC_MAX_WORK": 5e9,  # runs up to ~1 s answer directly; larger ones become a mad.simulate job (202)
    # --- stove ---
    "STOVE_ADAPTER": "simulated",  # relay driver: "simulated" | "home_assistant" | "miio"
    "STOVE_BURNERS": ["left", "right"],  # the only burner ids the API accepts
    "STOVE_NC_INVERTED": True,  # relay on the normally-closed terminal: firmware "on" = loop cut (the one place)
    "STOVE_VALVE_RELEASE_S": 2.0,  # time the gas valve needs to drop once the loop opens (confirm on hardware)
    "STOVE_CUT_HOLD_S": 5.0,  # cut pulse length; must exceed STOVE_VALVE_RELEASE_S
    "STOVE_TIMER_MAX_MIN": 240.0,  # timer cap: 0 < minutes <= this
    "STOVE_RETRY_ATTEMPTS": 5,  # cut attempts before FAULT + alert
    "STOVE_RETRY_BASE_S": 0.5,  # backoff after the first failed attempt, doubled each time
    "STOVE_RETRY_MAX_S": 8.0,  # backoff cap
    "STOVE_READBACK_ATTEMPTS": 3,  # restore + read-back attempts before FAULT + alert
    "STOVE_DB": "",  # SQLite file (timers, commands, audit); "" = <INSTANCE_DIR>/stove.sqlite3
    "STOVE_API_TOKEN": "",  # bearer token for mutating endpoints; "" = generated once into STOVE_TOKEN_FILE
    "STOVE_API_TOKENS": {},  # optional per-person tokens {"name": "token"}: the audit log names the person
    "STOVE_TOKEN_FILE": "",  # "" = <INSTANCE_DIR>/stove_api_token (mode 0600, never committed)
    "STOVE_AUDIT_REQUIRES_AUTH": True,  # the audit log names who did what: token required to read it
    "STOVE_AUDIT_MAX_ROWS": 100000,  # older audit rows are pruned
    "STOVE_AUDIT_PAGE_MAX": 500,  # cap on GET /api/stove/audit?limit=
    "STOVE_ACTOR_MAX_CHARS": 64,  # cap on the X-Stove-Actor label recorded in the audit log
    "STOVE_REQUEST_WAIT_S": 15.0,  # a shutoff/restore request waits this long for delivery, then answers 202
    "STOVE_POLL_S": 0.25,  # scheduler tick (timer precision, standby takeover, cross-process pickup)
    "STOVE_SCHEDULER": True,  # False: this process only queues; `python -m backend.services.stove` executes
    "STOVE_SIM_RELEASE_S": 1.0,  # simulated valve's release time
    "STOVE_SIM_WIRING": "NC",  # simulated relay terminal: "NC" or "NO"
    "STOVE_HA_URL": "http://homeassistant.local:8123",  # Home Assistant base URL
    "STOVE_HA_TOKEN": "",  # Home Assistant long-lived access token
    "STOVE_HA_ENTITIES": {"left": "switch.stove_relay_1", "right": "switch.stove_relay_2"},  # burner -> switch
    "STOVE_MIIO_IP": "",  # Mi Home relay address
    "STOVE_MIIO_TOKEN": "",  # its 32-hex-digit miIO token
    "STOVE_MIIO_PROPS": {"left": [2, 1], "right": [3, 1]},  # burner -> [siid, piid] (see the relay's miot-spec)
    "STOVE_DEVICE_TIMEOUT_S": 3.0,  # per device call
    "STOVE_ALERT_WEBHOOK": "",  # alerts are POSTed here as JSON (e.g. ntfy, Home Assistant webhook); "" = log + DB
}


def _parse(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, (list, dict)):
        return json.loads(raw)
    return raw


def load_config(overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Defaults, then environment variables, then ``overrides``."""
    environ = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    for key, default in DEFAULTS.items():
        if key in environ:
            try:
                config[key] = _parse(environ[key], default)
            except (ValueError, json.JSONDecodeError) as exc:
                raise SystemExit(f"config: environment variable {key}={environ[key]!r} is invalid: {exc}") from None
    config.update(overrides or {})
    return config
