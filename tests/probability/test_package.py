"""The probability package as a whole: clear errors on bad input, the chapter experiment runs."""
import importlib.util
import pathlib

import jax
import numpy as np
import pytest

from fungpt import probability as P


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="probabilities"):
        P.bernoulli.sample(jax.random.key(0), 1.3)
    with pytest.raises(ValueError, match="sum to 1"):
        P.categorical.sample(jax.random.key(0), np.array([0.5, 0.6]))
    with pytest.raises(TypeError, match="Python int"):
        P.binomial.sample(jax.random.key(0), 10.0, 0.5)
    with pytest.raises(ValueError, match="sigma"):
        P.gaussian.sample(jax.random.key(0), 0.0, -1.0)
    with pytest.raises(ValueError, match="square"):
        P.n_step(np.ones((2, 3)) / 3, 2)
    with pytest.raises(ValueError, match="rows"):
        P.stationary_distribution(np.array([[0.5, 0.6], [0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"\(K,\)"):
        P.bayes_posterior(np.array([0.5, 0.5]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="mean must be"):
        P.multivariate_gaussian.log_prob(np.zeros(2), np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="ddof"):
        P.sample_variance(np.ones(1))


@pytest.mark.slow  # ~20 s of compiles; tests/test_roadmap.py runs ch04 in --quick mode too
def test_experiment_runs_quick(tmp_path):
    # in-process (import + main) under the strict harness: no second interpreter and jax import to pay for
    path = pathlib.Path(__file__).resolve().parents[2] / "experiments" / "ch04_probability.py"
    spec = importlib.util.spec_from_file_location("ch04_probability", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "ch04_probability.json").exists()
