"""The matrix.lowrank job: directly with a LocalContext, and through POST /api/jobs."""

from __future__ import annotations

import time

import numpy as np
import pytest

from backend.jobs import LocalContext
from backend.services.matrix.schemas import LowRankJobParams
from backend.services.matrix.tasks import lowrank_job

A = np.random.default_rng(0).standard_normal((10, 8))


def test_job_matches_the_eckart_young_errors_and_reports_progress():
    ctx = LocalContext()
    out = lowrank_job(LowRankJobParams(matrix=A.tolist(), rank=3), ctx)
    sv = np.linalg.svd(A, compute_uv=False)
    assert out["error_spectral"] == pytest.approx(sv[3])
    assert out["error_fro"] == pytest.approx(np.sqrt(np.sum(sv[3:] ** 2)))
    fractions = [f for f, _ in ctx.updates]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)


@pytest.mark.parametrize("params,words", [
    ({"matrix": A.tolist(), "rank": 9}, "rank"),
    ({"matrix": [[1e200, 1.0]], "rank": 1}, "rescale"),
])
def test_job_refuses_bad_params_with_a_message(params, words):
    with pytest.raises(ValueError, match=words):
        lowrank_job(LowRankJobParams(**params), LocalContext())


def test_job_params_are_capped_by_the_apps_settings_at_submission(app):
    from backend.jobs.manager import InvalidParams, validate_params

    params = {"matrix": A.tolist(), "rank": 2, "method": "randomized", "power_iters": 10_000}
    with pytest.raises(InvalidParams) as refused:
        validate_params("matrix.lowrank", params, app.config)
    assert refused.value.limit == "MATRIX_MAX_POWER_ITERS" and refused.value.field == "params.power_iters"
    app.config["MATRIX_MAX_ENTRIES"] = 50  # a create_app override applies to jobs too (A has 108 entries)
    with pytest.raises(InvalidParams) as refused:
        validate_params("matrix.lowrank", {"matrix": A.tolist(), "rank": 2}, app.config)
    assert refused.value.limit == "MATRIX_MAX_ENTRIES"


def test_job_through_the_job_api(client):
    resp = client.post("/api/jobs", json={"kind": "matrix.lowrank",
                                          "params": {"matrix": A.tolist(), "rank": 2, "method": "randomized"}})
    assert resp.status_code == 202, resp.get_json()
    url = resp.get_json()["status_url"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = client.get(url).get_json()
        if body["status"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.05)
    assert body["status"] == "done", body
    assert body["result"]["rank"] == 2 and body["result"]["error_kind"] == "a-posteriori"
    bad = client.post("/api/jobs", json={"kind": "matrix.lowrank", "params": {"matrix": [[1, "x"]], "rank": 1}})
    assert bad.status_code == 422
