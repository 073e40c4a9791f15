"""Check the compute estimates behind SYNC_MAX_SECONDS against measured times, per service and request size.

Each compute endpoint declares ``cost=estimate(body)`` (seconds; ``backend.web.budget``). This script sends
requests of growing size through the app in this process (one request at a time, the first call of each kind
discarded as warm-up: numba compiles, models load), measures their wall time, and prints measured / estimated.
An estimate is calibrated when the ratio stays at or below ~1 across sizes (it may overestimate: a refused
request can be sent as a job, an admitted one that overruns is stopped at SYNC_MAX_SECONDS x SYNC_OVERRUN_FACTOR).
MAD is calibrated by its own estimate (``mad.estimate_work`` / MAD_WORK_PER_SECOND), listed here for the record.

    python scripts/calibrate_costs.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend import create_app  # noqa: E402
from backend.services.attention.blueprint import ScoreRequest  # noqa: E402
from backend.services.attention.blueprint import estimated_seconds as attention_seconds  # noqa: E402
from backend.services.continuation.blueprint import ContinueRequest  # noqa: E402
from backend.services.continuation.blueprint import estimated_seconds as continue_seconds  # noqa: E402
from backend.services.mad.schemas import SimulateParams, total_work  # noqa: E402
from backend.services.matrix.blueprint import compress_seconds, lowrank_seconds, monarch_seconds  # noqa: E402
from backend.services.matrix.schemas import CompressForm, LowRankRequest, MonarchRequest  # noqa: E402
from backend.services.tokenize.blueprint import DistributionIn, TokenizeIn  # noqa: E402
from backend.services.tokenize.blueprint import estimated_seconds as tokenize_seconds  # noqa: E402
from tests.conftest import config_for_tests  # noqa: E402

RNG = np.random.default_rng(0)
TEXT = "Random tokenization samples segmentations of a text in proportion to their probability. "


def cases():
    """(service, url, body, model, estimate function): growing sizes of each compute endpoint."""
    for chars, samples in ((100, 100), (500, 1000), (1000, 1000), (2000, 400)):
        body = {"text": (TEXT * 30)[:chars], "samples": samples}
        yield "tokenize", "/api/tokenize", body, TokenizeIn, tokenize_seconds
    for samples in (2000, 10000, 20000):
        body = {"text": TEXT[:40], "samples": samples}
        yield "tokenize/distribution", "/api/tokenize/distribution", body, DistributionIn, tokenize_seconds
    for tokens, method in ((8, "backoff"), (32, "backoff"), (64, "backoff-multi"), (64, "heal")):
        body = {"prompt": "Always import numpy" * 20, "max_new_tokens": tokens, "method": method}
        yield "continue", "/api/continue", body, ContinueRequest, continue_seconds
    for size in (128, 512, 1024):
        body = {"text": (TEXT * 20)[:size]}
        yield "attention/score", "/api/attention/score", body, ScoreRequest, attention_seconds
    for n in (200, 400, 600):  # a 600 x 600 matrix is ~3.8 MB of JSON (MAX_JSON_BYTES: 4 MiB)
        body = {"matrix": RNG.standard_normal((n, n)).round(6).tolist(), "rank": 5}
        yield "matrix/lowrank exact", "/api/matrix/lowrank", body, LowRankRequest, lowrank_seconds
        body = {**body, "method": "randomized", "rank": 20}
        yield "matrix/lowrank randomized", "/api/matrix/lowrank", body, LowRankRequest, lowrank_seconds
    for n in (256, 576):  # perfect squares; 576 x 576 is ~3.5 MB of JSON
        body = {"matrix": RNG.standard_normal((n, n)).round(6).tolist()}
        yield "matrix/monarch", "/api/matrix/monarch", body, MonarchRequest, monarch_seconds
    for size in (64, 256):
        yield "matrix/compress", "/api/matrix/compress", {"size": size}, CompressForm, compress_seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    app = create_app(config_for_tests(Path(tempfile.mkdtemp(prefix="calibrate-")), SYNC_MAX_SECONDS=3600.0,
                                      VALIDATE_RESPONSES=False))
    client = app.test_client()
    rows = []
    warmed: set[str] = set()
    for service, url, body, model, estimate in tqdm(list(cases()), desc="requests"):
        form = url.endswith("compress")
        def send(url=url, body=body, form=form):
            if form:
                return client.post(url, data={k: str(v) for k, v in body.items()}, content_type="multipart/form-data")
            return client.post(url, json=body)

        if service not in warmed:
            send()
            warmed.add(service)
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            r = send()
            times.append(time.perf_counter() - started)
            assert r.status_code == 200, (service, r.get_json())
        parsed = model.model_validate({k: (int(v) if form else v) for k, v in body.items()})
        rows.append((service, _size(body), statistics.median(times), estimate(parsed)))
    mad = SimulateParams(model="kde", target="grid25", loop="fresh_data", n_ini=1000, n_synth=1000, generations=5,
                         replicates=200, metrics=[], scatter_points=0)
    started = time.perf_counter()
    r = client.post("/api/mad/simulate", json={**mad.model_dump(), "mode": "sync"})
    measured = time.perf_counter() - started
    rows.append(("mad (kde; its own estimate)", "200 replicates", measured,
                 total_work(mad, mad.to_config()) / app.config["MAD_WORK_PER_SECOND"]))
    print("median of", args.repeats, "runs, one request at a time (the machine may be shared: absolute times move)")
    print(f"{'endpoint':<28}{'size':>22}{'measured s':>12}{'estimate s':>12}{'measured/est':>14}")
    for service, size, measured, est in rows:
        print(f"{service:<28}{size:>22}{measured:>12.3f}{est:>12.3f}{measured / est:>14.2f}")
    worst = max((m / e, s) for s, _, m, e in rows if not s.startswith("mad"))
    print(f"largest measured/estimate outside MAD: {worst[0]:.2f} ({worst[1]}); <= 1 means the estimate is on the "
          "slow side")
    for hook in app.extensions.get("shutdown_hooks", []):
        hook()
    return 0


def _size(body: dict) -> str:
    if "matrix" in body:
        return f"{len(body['matrix'])}x{len(body['matrix'][0])}"
    if "samples" in body:
        return f"{len(body['text'])} ch x {body['samples']}"
    if "max_new_tokens" in body:
        return f"{body['max_new_tokens']} tok {body['method']}"
    if "text" in body:
        return f"{len(body['text'])} bytes"
    return f"size {body.get('size')}"


if __name__ == "__main__":
    raise SystemExit(main())
