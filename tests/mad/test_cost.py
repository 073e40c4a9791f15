"""The cost model against measured work (issue 15): the estimate that gates sync runs and MAD_MAX_WORK must stay
within a stated factor of the work a run really does.

Work is measured by ``scripts/mad_calibrate.py --write`` in anchor units: a run's CPU time divided by that of a fixed
anchor run timed right before and after it, so the unit is a piece of computation, not seconds of a loaded
machine. The measurements are committed in ``backend/services/mad/cost_measurements.json``; these tests time
nothing, they check the committed model (cost_model.json + cost.features) against them.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from backend.services.mad import cost

ROOT = Path(__file__).resolve().parents[2]
MEASUREMENTS = ROOT / "backend" / "services" / "mad" / "cost_measurements.json"

# Stated factors: realistic requests (the validation set) within 2x of their measured work either way; every
# calibration configuration (the design spans the caps' extremes: 1 to 50,000 chains, d = 1 to 200) within 2.5x.
# The GMM's estimate assumes all em_iters EM iterations, an upper bound (EM stops once it settles, often after a
# few): it is checked within 2.5x with the iterations the run really did, and as a bound (never 2.5x low) as is.
VALIDATION_FACTOR = 2.0
CALIBRATION_FACTOR = 2.5


@pytest.fixture(scope="module")
def calibrate():
    spec = importlib.util.spec_from_file_location("mad_calibrate", ROOT / "scripts" / "mad_calibrate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("mad_calibrate", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def measured():
    return json.loads(MEASUREMENTS.read_text())


def _ratios(rows, configs, predict, anchor_seconds):
    """Estimate / measured work per row, both in anchor units; configs are (description, what predict takes)."""
    assert [r["config"] for r in rows] == [described for described, _ in configs], (
        "cost_measurements.json is from another design: rerun scripts/mad_calibrate.py --write"
    )
    return np.array([predict(c) / anchor_seconds / r["anchor_units"] for r, (_, c) in zip(rows, configs, strict=True)])


def test_realistic_requests_are_estimated_within_2x_of_measured_work(calibrate, measured):
    cases = calibrate.validation()
    configs = [(calibrate.describe(c), (c, with_ne)) for _, c, with_ne in cases]
    ratios = _ratios(measured["validation"], configs, lambda cw: calibrate.predicted(*cw, None),
                     measured["anchor_seconds"])
    names = [name for name, _, _ in cases]
    report = ", ".join(f"{n}: {r:.2f}" for n, r in zip(names, ratios, strict=True))
    assert np.all((ratios >= 1 / VALIDATION_FACTOR) & (ratios <= VALIDATION_FACTOR)), report
    # Issue 15 item 2: the KDE request the old formula put at ~0.1x of its work is now within the factor, and the
    # uncalibrated formula (kept in the script for comparison) would fail this very test.
    kde = names.index("issue 15: kde grid25 fresh, 10,000 chains")
    _, kde_config, _ = cases[kde]
    old = calibrate.previous(kde_config, False) / measured["anchor_seconds"] / measured["validation"][kde]["anchor_units"]
    assert old < 1 / VALIDATION_FACTOR <= ratios[kde]


def test_every_calibration_configuration_is_within_its_stated_factor(calibrate, measured):
    design = calibrate.design()

    def with_real_em_iterations(c):
        # What the GMM really did (deterministic: the run is seeded); the other models have no early stop.
        return replace(c, em_iters=max(1, round(calibrate.em_iterations(c)))) if c.model == "gmm" else c

    described = [calibrate.describe(c) for _, c in design]
    as_estimated = _ratios(measured["calibration"], list(zip(described, (c for _, c in design), strict=True)),
                           cost.estimate_seconds, measured["anchor_seconds"])
    as_run = _ratios(measured["calibration"],
                     list(zip(described, (with_real_em_iterations(c) for _, c in design), strict=True)),
                     cost.estimate_seconds, measured["anchor_seconds"])
    ranked = sorted(zip(as_run, described, strict=True))
    assert ranked[0][0] >= 1 / CALIBRATION_FACTOR, f"under-estimated: {ranked[:3]}"
    assert ranked[-1][0] <= CALIBRATION_FACTOR, f"over-estimated: {ranked[-3:]}"
    assert 0.8 <= np.median(as_run) <= 1.25
    gmm = np.array([c.model == "gmm" for _, c in design])
    assert gmm.sum() >= 5 and np.all(as_estimated[gmm] >= as_run[gmm] - 1e-12)  # em_iters: an upper bound
    assert np.array_equal(as_estimated[~gmm], as_run[~gmm])
