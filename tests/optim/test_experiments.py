"""Smoke tests: every chapter-5 experiment runs in --quick mode and writes its outputs, and the numbers it
reports agree with closed forms."""
import runpy

import numpy as np
import pytest

EXPERIMENTS = ["optim_trajectories", "optim_schedules", "optim_lagrange", "optim_sharpness", "optim_bench",
               "optim_convexity", "optim_losses"]


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_quick(name, tmp_path):
    main = runpy.run_path(f"experiments/{name}.py", run_name=name)["main"]
    report = main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / f"{name}.json").exists()
    assert report
    if name == "optim_lagrange":
        sens = report.pop("sensitivity")  # f* and μ = -df*/db against their closed forms (float32)
        assert sens["all_converged"] and sens["max_abs_error_mu"] < 1e-3 and sens["max_abs_error_fstar"] < 1e-3
        for r in report.values():  # closed forms: a/‖a‖ and (1.5, 1.5), λ = ‖a‖ - 1 and 1.5
            np.testing.assert_allclose(r["x"], r["exact_x"], rtol=0, atol=1e-5)
            np.testing.assert_allclose(r["lambda"], r["exact_lambda"], rtol=0, atol=1e-5)
    if name == "optim_bench":
        assert report["max_abs_param_diff"] < 1e-6
    if name == "optim_convexity":  # one basin for the convex function, Himmelblau's four minima for the other
        (convex, c), (_, h) = report.items()
        assert c["is_convex"] and len(c["distinct_minima"]) == 1, convex
        assert not h["is_convex"] and len(h["distinct_minima"]) == 4
