"""Probability rules on joint tables: P(A), P(A ∩ B), P(A ∪ B), P(A | B), marginals, conditionals, and the
χ² test of independence."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.scipy import special

from fungpt.probability._base import as_float, check_positive, concrete

__all__ = ["chi_square_independence", "conditional", "conditional_probability", "independence_gap",
           "intersection", "marginal", "probability", "union"]


def probability(p, event):
    """P(A) = Σ_{ω ∈ A} p(ω) for a table p of outcome probabilities and a boolean mask `event` of the
    same shape."""
    p = as_float(p)
    if jnp.shape(event) != p.shape:
        raise ValueError(f"event mask shape {jnp.shape(event)} must match the table's {p.shape}")
    return jnp.sum(jnp.where(event, p, 0))


def intersection(p, a, b):
    """P(A ∩ B) = Σ p(ω) over outcomes in both events (boolean masks a, b shaped like p)."""
    return probability(p, a & b)


def union(p, a, b):
    """P(A ∪ B) = P(A) + P(B) - P(A ∩ B) (inclusion-exclusion)."""
    return probability(p, a) + probability(p, b) - intersection(p, a, b)


def conditional_probability(p, a, b):
    """P(A | B) = P(A ∩ B) / P(B); nan when P(B) = 0 (the conditional is undefined)."""
    return intersection(p, a, b) / probability(p, b)


def _axes(joint, axes):
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    nd = jnp.ndim(joint)
    bad = [a for a in axes if not -nd <= a < nd]
    if bad:
        raise ValueError(f"axes {bad} out of range for a table with {nd} dimensions")
    return tuple(sorted(a % nd for a in axes))


def marginal(joint, keep):
    """P(X_keep) = Σ over the other variables of the joint table P(X_1, …, X_k); keep: axis or axes."""
    joint = as_float(joint)
    keep = _axes(joint, keep)
    return jnp.sum(joint, axis=tuple(a for a in range(joint.ndim) if a not in keep))


def conditional(joint, given):
    """P(rest | X_given) = P(X_1, …, X_k) / P(X_given), same shape as the joint table; each slice with a
    fixed value of the given variables sums to 1 (nan where P(X_given) = 0)."""
    joint = as_float(joint)
    given = _axes(joint, given)
    m = jnp.sum(joint, axis=tuple(a for a in range(joint.ndim) if a not in given), keepdims=True)
    return joint / m


def independence_gap(joint):
    """max_{x,y} |P(x, y) - P(x) P(y)| of a 2-D joint table: 0 iff X and Y are independent."""
    joint = as_float(joint)
    if joint.ndim != 2:
        raise ValueError(f"independence_gap takes a 2-D joint table, got shape {joint.shape}")
    return jnp.max(jnp.abs(joint - jnp.outer(joint.sum(1), joint.sum(0))))


def chi_square_independence(counts):
    """Pearson's χ² test of independence on a 2-D contingency table of counts O:
    E_ij = (row_i)(col_j)/N, χ² = Σ (O - E)^2 / E with (r-1)(c-1) degrees of freedom, and the p-value
    P(χ²_dof ≥ χ²) = Q(dof/2, χ²/2) (regularized upper incomplete gamma). Returns (stat, p_value, dof).
    A row or column of zeros (E = 0) raises ValueError, as scipy's chi2_contingency; under jit it gives NaN."""
    counts = as_float(counts)
    if counts.ndim != 2 or min(counts.shape) < 2:
        raise ValueError(f"counts must be a 2-D table with at least 2 rows and columns, got {counts.shape}")
    check_positive("counts", counts, strict=False)
    rows, cols = counts.sum(1), counts.sum(0)
    v = concrete(jnp.concatenate([rows, cols]))
    if v is not None and not np.all(v > 0):
        # scipy.stats.chi2_contingency refuses too: an expected count of 0 makes (O - E)²/E = 0/0
        raise ValueError(f"every row and column of counts needs a positive total, got rows {rows}, columns {cols}")
    n = counts.sum()
    expected = jnp.outer(rows, cols) / n
    stat = jnp.sum((counts - expected) ** 2 / expected)
    dof = (counts.shape[0] - 1) * (counts.shape[1] - 1)
    return stat, special.gammaincc(jnp.asarray(dof / 2, counts.dtype), stat / 2), dof

