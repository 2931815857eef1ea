"""fungpt.probability.tables against numpy loops over tables and scipy.stats.chi2_contingency."""
import math

import hypothesis.strategies as st
import numpy as np
import scipy.stats as ss
from hypothesis import given, settings

from fungpt import probability as P
from tests.helpers import close


def _table(seed, shape):
    return np.random.default_rng(seed).dirichlet(np.ones(math.prod(shape))).reshape(shape)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_probability_rules_on_random_tables(seed):
    rng = np.random.default_rng(seed)
    p = _table(seed, (3, 4))
    a, b = rng.random((3, 4)) < 0.5, rng.random((3, 4)) < 0.5
    naive = lambda mask: sum(p[i, j] for i in range(3) for j in range(4) if mask[i, j])
    close(P.probability(p, a), naive(a), 1e-12, 0.0)
    close(P.intersection(p, a, b), naive(a & b), 1e-12, atol=1e-15)
    close(P.union(p, a, b), naive(a | b), 1e-12, atol=1e-15)
    if naive(b) > 0 and naive(a) > 0:
        close(P.conditional_probability(p, a, b), naive(a & b) / naive(b), 1e-12, atol=1e-15)
        # Bayes' rule: P(A|B) P(B) = P(B|A) P(A)
        close(P.conditional_probability(p, a, b) * naive(b), P.conditional_probability(p, b, a) * naive(a),
               1e-12, atol=1e-15)
    close(P.marginal(p, 0), p.sum(1), 1e-12, 0.0)
    close(P.marginal(p, 1), p.sum(0), 1e-12, 0.0)
    cond = np.asarray(P.conditional(p, 1))  # P(X | Y): columns sum to 1
    close(cond.sum(0), np.ones(4), 1e-12, 0.0)
    close(cond * p.sum(0)[None], p, 1e-12, 0.0)
    p3 = _table(seed, (2, 3, 2))
    close(P.marginal(p3, (0, 2)), p3.sum(1), 1e-12, 0.0)


def test_independence_gap_and_chi_square_match_scipy(key):
    px, py = np.array([0.2, 0.5, 0.3]), np.array([0.6, 0.1, 0.3])
    assert float(P.independence_gap(np.outer(px, py))) < 1e-15
    dep = _table(3, (3, 3))
    want = np.abs(dep - np.outer(dep.sum(1), dep.sum(0))).max()
    close(P.independence_gap(dep), want, 1e-12, 0.0)
    counts = np.random.default_rng(0).integers(5, 40, size=(3, 4)).astype(np.float64)
    stat, pval, dof = P.chi_square_independence(counts)
    ref = ss.chi2_contingency(counts, correction=False)
    close(stat, ref.statistic, 1e-12, 0.0)
    close(pval, ref.pvalue, 1e-9, 0.0)
    assert dof == ref.dof
