"""Chapter 7 (information theory) against scipy, sklearn, mpmath, closed forms and jax.grad."""
import importlib.util
import itertools
import math
import pathlib
import zlib

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.metrics import mutual_info_score

import fungpt
from fungpt import information as info
from tests.helpers import GRAD as TOL  # f32 2e-3, f64 1e-9: relative

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)
DTYPES = [jnp.float32, jnp.float64]


@pytest.fixture
def rng(request):
    """numpy randomness seeded by the test id (numpy, not jax.random: no PRNG kernels to compile)."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def _dist(rng, shape, dtype, zeros=True):
    """Random distributions over the last axis, some entries exactly 0."""
    w = rng.exponential(size=shape)
    if zeros:
        w = np.where(rng.uniform(size=shape) < 0.3, 0.0, w)
        w[..., 0] = 1.0  # never all zero
    return jnp.asarray(w / w.sum(axis=-1, keepdims=True), dtype)


def tables(k=3, m=4):
    """A hypothesis strategy for (k, m) joint probability tables with some zero cells."""
    cells = st.one_of(st.just(0.0), st.floats(0.01, 1.0))
    return hnp.arrays(np.float64, (k, m), elements=cells).filter(lambda a: a.sum() > 0).map(lambda a: a / a.sum())


# ---------------------------------------------------------------------------------------------- entropy

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("unit,base", [("nats", math.e), ("bits", 2.0)])
def test_entropy_matches_scipy(rng, dtype, unit, base):
    p = _dist(rng, (4, 6), dtype)
    H = jax.jit(info.entropy, static_argnums=1)(p, unit)
    assert H.dtype == dtype and H.shape == (4,)
    np.testing.assert_allclose(H, scipy.stats.entropy(np.asarray(p, np.float64), base=base, axis=-1),
                               rtol=TOL[np.dtype(dtype)])
    assert np.all(np.asarray(H) >= 0) and np.all(np.asarray(H) <= math.log(6, base) * (1 + TOL[np.dtype(dtype)]))
    np.testing.assert_allclose(info.entropy(jnp.full(6, 1 / 6, dtype), unit), math.log(6, base),
                               rtol=TOL[np.dtype(dtype)])
    np.testing.assert_allclose(info.binary_entropy(p[:, 1], unit),
                               scipy.stats.entropy(np.stack([p[:, 1], 1 - p[:, 1]]), base=base),
                               rtol=TOL[np.dtype(dtype)], atol=TOL[np.dtype(dtype)] * 1e-3)


@pytest.mark.parametrize("grad", [jax.grad, fungpt.grad], ids=["jax", "fungpt"])
def test_entropy_gradient_is_finite_at_zero_probability(rng, grad):
    p = _dist(rng, (6,), jnp.float64)
    g = grad(info.entropy)(p)
    pn = np.asarray(p)
    want = np.where(pn > 0, -(np.log(np.where(pn > 0, pn, 1.0)) + 1.0), 0.0)  # dH/dp_k = −(log p_k + 1)
    np.testing.assert_allclose(g, want, rtol=TOL[np.dtype("float64")])


def test_gaussian_entropy_matches_scipy(rng):
    a = rng.normal(size=(3, 3))
    cov = jnp.asarray(a @ a.T + np.eye(3))
    want = scipy.stats.multivariate_normal(np.zeros(3), np.asarray(cov)).entropy()
    np.testing.assert_allclose(info.gaussian_entropy(cov), want, rtol=TOL[np.dtype("float64")])
    np.testing.assert_allclose(info.gaussian_entropy(cov, "bits"), want / math.log(2), rtol=TOL[np.dtype("float64")])


# ---------------------------------------------------------------------------- joint, marginal, conditional

@SETTINGS
@given(tables())
def test_chain_rule_and_joint_tables(pxy):
    px, py = info.marginals(pxy)
    np.testing.assert_allclose(px, pxy.sum(1), rtol=TOL[np.dtype("float64")])
    np.testing.assert_allclose(py, pxy.sum(0), rtol=TOL[np.dtype("float64")])
    Hxy = info.joint_entropy(pxy)
    np.testing.assert_allclose(Hxy, scipy.stats.entropy(pxy.ravel()), rtol=TOL[np.dtype("float64")])
    Hy_x = info.conditional_entropy(pxy)
    naive = 0.0  # H(Y|X) = Σ_x p(x) H(Y | X = x)
    for row in pxy:
        if row.sum() > 0:
            naive += row.sum() * scipy.stats.entropy(row / row.sum())
    np.testing.assert_allclose(Hy_x, naive, rtol=TOL[np.dtype("float64")], atol=1e-12)
    # chain rule H(X, Y) = H(X) + H(Y | X), and conditioning reduces entropy
    np.testing.assert_allclose(Hxy, info.entropy(px) + Hy_x, rtol=TOL[np.dtype("float64")], atol=1e-12)
    assert Hy_x <= info.entropy(py) + 1e-12


# ------------------------------------------------------------------------------------------ cross-entropy

@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_is_entropy_plus_kl(rng, dtype):
    p, q = _dist(rng, (4, 6), dtype), _dist(rng, (4, 6), dtype, zeros=False)
    pn, qn = np.asarray(p, np.float64), np.asarray(q, np.float64)
    want = -np.sum(scipy.special.xlogy(pn, qn), axis=-1)
    np.testing.assert_allclose(info.cross_entropy(p, q), want, rtol=TOL[np.dtype(dtype)])
    np.testing.assert_allclose(info.cross_entropy(p, q), info.entropy(p) + info.kl_divergence(p, q),
                               rtol=TOL[np.dtype(dtype)])


def _mp_loss(z, y, eps):
    # 50-digit reference:  −Σ_k t_k log softmax(z)_k  with t = (1−ε) onehot(y) + ε/K
    mpmath.mp.dps = 50
    z = [mpmath.mpf(float(v)) for v in z]
    lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z))
    K = len(z)
    return float(mpmath.fsum(((1 - eps) * (k == y) + mpmath.mpf(eps) / K) * (lse - z[k]) for k in range(K)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("scale", [1.0, 1e4, 1e30])
def test_cross_entropy_from_logits_matches_mpmath_at_extreme_logits(rng, dtype, eps, scale):
    z = jnp.asarray(rng.normal(size=(3, 5)) * scale, dtype)
    y = jnp.array([0, 2, 4])
    f = jax.jit(info.cross_entropy_from_logits, static_argnums=2)
    loss = f(z, y, eps)
    assert loss.dtype == dtype and loss.shape == (3,)
    assert np.all(np.isfinite(loss))
    want = [_mp_loss(zi, int(yi), eps) for zi, yi in zip(np.asarray(z), np.asarray(y), strict=True)]
    np.testing.assert_allclose(loss, want, rtol=TOL[np.dtype(dtype)], atol=TOL[np.dtype(dtype)])


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_cross_entropy_from_logits_gradient_is_softmax_minus_target(rng, eps):
    z = jnp.asarray(rng.normal(size=(4, 6)) * 3)
    y = jnp.array([5, 0, 3, 3])
    f = lambda z: jnp.sum(info.cross_entropy_from_logits(z, y, eps))
    t = (1 - eps) * np.eye(6)[np.asarray(y)] + eps / 6
    want = scipy.special.softmax(np.asarray(z), axis=-1) - t
    for grad in (jax.grad, fungpt.grad):  # jitted: one compile each instead of one per primitive
        np.testing.assert_allclose(jax.jit(grad(f))(z), want, rtol=TOL[np.dtype("float64")], atol=1e-12)


def test_cross_entropy_from_logits_vmaps_and_upcasts_low_precision(rng):
    z = jnp.asarray(rng.normal(size=(2, 3, 8)), jnp.float32)
    y = jnp.array([[1, 2, 3], [7, 0, 0]])
    batched = jax.vmap(info.cross_entropy_from_logits)(z, y)
    np.testing.assert_allclose(batched, info.cross_entropy_from_logits(z, y), rtol=TOL[np.dtype("float32")])
    low = info.cross_entropy_from_logits(z.astype(jnp.bfloat16), y)
    assert low.dtype == jnp.float32
    # equal to the loss of the bfloat16-rounded logits computed in float64 (no bfloat16 arithmetic inside)
    zr = np.asarray(z.astype(jnp.bfloat16).astype(jnp.float64))
    want = scipy.special.logsumexp(zr, axis=-1) - np.take_along_axis(zr, np.asarray(y)[..., None], -1)[..., 0]
    np.testing.assert_allclose(low, want, rtol=TOL[np.dtype("float32")])
    np.testing.assert_allclose(info.log_softmax(z), scipy.special.log_softmax(np.asarray(z, np.float64), -1),
                               rtol=TOL[np.dtype("float32")], atol=1e-6)


# ------------------------------------------------------------------------------------------ KL divergence

@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_matches_scipy_and_is_asymmetric(rng, dtype):
    p, q = _dist(rng, (4, 6), dtype), _dist(rng, (4, 6), dtype, zeros=False)
    kl = info.kl_divergence(p, q, "bits")
    np.testing.assert_allclose(kl, scipy.stats.entropy(np.asarray(p, np.float64), np.asarray(q, np.float64),
                                                       base=2, axis=-1), rtol=TOL[np.dtype(dtype)])
    np.testing.assert_allclose(info.kl_divergence(p, p), 0.0, atol=TOL[np.dtype(dtype)] * 1e-3)
    a, b = jnp.array([0.9, 0.1], dtype), jnp.array([0.5, 0.5], dtype)
    # closed forms: KL(a‖b) = 0.9 log 1.8 + 0.1 log 0.2,  KL(b‖a) = 0.5 log(0.5/0.9) + 0.5 log 5
    np.testing.assert_allclose(info.kl_divergence(a, b), 0.9 * math.log(1.8) + 0.1 * math.log(0.2),
                               rtol=TOL[np.dtype(dtype)])
    np.testing.assert_allclose(info.kl_divergence(b, a), 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(5),
                               rtol=TOL[np.dtype(dtype)])
    assert info.kl_divergence(jnp.array([0.5, 0.5], dtype), jnp.array([1.0, 0.0], dtype)) == jnp.inf


@SETTINGS
@given(tables(1, 6), tables(1, 6))
def test_kl_is_nonnegative(p, q):
    kl = float(info.kl_divergence(p[0], q[0]))
    assert kl >= -1e-12
    assert np.isinf(kl) == bool(np.any((q[0] == 0) & (p[0] > 0)))


def test_kl_gaussian_univariate_matches_quadrature():
    for mu0, s0, mu1, s1 in [(0.0, 1.0, 1.0, 2.0), (0.3, 0.5, -1.0, 0.8)]:
        p = scipy.stats.norm(mu0, s0)
        q = scipy.stats.norm(mu1, s1)
        want, _ = scipy.integrate.quad(lambda x, p=p, q=q: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), -30, 30)
        got = info.kl_gaussian(jnp.array([mu0]), jnp.array([[s0**2]]), jnp.array([mu1]), jnp.array([[s1**2]]))
        np.testing.assert_allclose(got, want, rtol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_gaussian_multivariate_against_numpy_formula(rng, dtype):
    d = 3
    a0, a1 = rng.normal(size=(2, d, d))
    cov0, cov1 = (jnp.asarray(a @ a.T + np.eye(d), dtype) for a in (a0, a1))
    mu0, mu1 = jnp.asarray(rng.normal(size=(2, d)), dtype)
    got = jax.jit(info.kl_gaussian)(mu0, cov0, mu1, cov1)
    m0, m1, c0, c1 = (np.asarray(v, np.float64) for v in (mu0, mu1, cov0, cov1))
    inv1 = np.linalg.inv(c1)  # the textbook formula with an explicit inverse and slogdet
    want = 0.5 * (np.trace(inv1 @ c0) + (m1 - m0) @ inv1 @ (m1 - m0) - d
                  + np.linalg.slogdet(c1)[1] - np.linalg.slogdet(c0)[1])
    np.testing.assert_allclose(got, want, rtol=TOL[np.dtype(dtype)] * 10)
    np.testing.assert_allclose(info.kl_gaussian(mu0, cov0, mu0, cov0), 0.0, atol=TOL[np.dtype(dtype)])



def test_gaussian_kl_and_mi_gradients_fungpt_match_jax(rng):
    a0, a1 = rng.normal(size=(2, 3, 3))
    cov0, cov1 = jnp.asarray(a0 @ a0.T + np.eye(3)), jnp.asarray(a1 @ a1.T + np.eye(3))
    mu0, mu1 = jnp.asarray(rng.normal(size=(2, 3)))
    pxy = _dist(rng, (12,), jnp.float64, zeros=False).reshape(3, 4)
    f = lambda mu0, cov0, mu1, cov1, pxy: info.kl_gaussian(mu0, cov0, mu1, cov1) + info.mutual_information(pxy)
    args = (mu0, cov0, mu1, cov1, pxy)
    want = jax.jit(jax.grad(f, argnums=range(5)))(*args)  # jitted: one compile each, not one per primitive
    got = jax.jit(fungpt.grad(f, argnums=tuple(range(5))))(*args)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=TOL[np.dtype("float64")], atol=1e-12)

# ------------------------------------------------------------------------------------- mutual information

@SETTINGS
@given(tables(3, 4))
def test_mutual_information_matches_sklearn_and_entropies(pxy):
    mi = info.mutual_information(pxy)
    counts = np.round(pxy * 1e9)  # sklearn takes a contingency table of counts
    np.testing.assert_allclose(mi, mutual_info_score(None, None, contingency=counts), rtol=1e-6, atol=1e-9)
    px, py = info.marginals(pxy)
    np.testing.assert_allclose(mi, info.entropy(px) + info.entropy(py) - info.joint_entropy(pxy),
                               rtol=TOL[np.dtype("float64")], atol=1e-12)
    np.testing.assert_allclose(mi, info.entropy(py) - info.conditional_entropy(pxy),
                               rtol=TOL[np.dtype("float64")], atol=1e-12)
    assert mi >= -1e-12
    indep = np.outer(np.asarray(px), np.asarray(py))
    np.testing.assert_allclose(info.mutual_information(indep), 0.0, atol=1e-12)


def test_gaussian_mutual_information_closed_forms(rng):
    for rho in (0.0, 0.5, -0.9):
        cov = jnp.array([[1.0, rho], [rho, 1.0]])
        np.testing.assert_allclose(info.gaussian_mutual_information(cov, 1), -0.5 * math.log(1 - rho**2),
                                   rtol=TOL[np.dtype("float64")], atol=1e-15)
    a = rng.normal(size=(5, 5))
    cov = a @ a.T + np.eye(5)
    h = lambda c: scipy.stats.multivariate_normal(np.zeros(len(c)), c).entropy()
    want = h(cov[:2, :2]) + h(cov[2:, 2:]) - h(cov)  # I = h(X) + h(Y) − h(X, Y)
    np.testing.assert_allclose(info.gaussian_mutual_information(cov, 2), want, rtol=TOL[np.dtype("float64")])


def test_mutual_information_histogram(rng):
    rho, n, bins = 0.8, 20_000, 12
    x = jnp.asarray(rng.normal(size=n))
    y = rho * x + math.sqrt(1 - rho**2) * jnp.asarray(rng.normal(size=n))
    est = jax.jit(info.mutual_information_histogram, static_argnums=2)(x, y, bins)
    # same binning done independently with numpy, MI of the labels by sklearn
    xe = np.linspace(float(x.min()), float(x.max()), bins + 1)
    ye = np.linspace(float(y.min()), float(y.max()), bins + 1)
    lx = np.clip(np.digitize(np.asarray(x), xe) - 1, 0, bins - 1)
    ly = np.clip(np.digitize(np.asarray(y), ye) - 1, 0, bins - 1)
    np.testing.assert_allclose(est, mutual_info_score(lx, ly), rtol=1e-9)
    # and it approaches the closed form −½ log(1 − ρ²) = 0.51 within the binning error
    assert abs(float(est) - (-0.5 * math.log(1 - rho**2))) < 0.1


# ------------------------------------------------------------------------------------------- perplexity

@pytest.mark.parametrize("dtype", DTYPES)
def test_perplexity(rng, dtype):
    V = 11
    uniform = jnp.zeros((4, V), dtype)
    y = jnp.array([0, 3, 7, 10])
    loss = jnp.mean(info.cross_entropy_from_logits(uniform, y))
    np.testing.assert_allclose(info.perplexity(loss), V, rtol=TOL[np.dtype(dtype)])  # uniform: PPL = V
    z = jnp.asarray(rng.normal(size=(4, V)), dtype)
    probs = jnp.take_along_axis(jax.nn.softmax(z), y[:, None], axis=-1)[:, 0]
    loss = jnp.mean(info.cross_entropy_from_logits(z, y))
    np.testing.assert_allclose(info.perplexity(loss), info.perplexity_from_probs(probs), rtol=TOL[np.dtype(dtype)])
    mpmath.mp.dps = 30
    want = mpmath.fprod([mpmath.mpf(float(p)) for p in probs]) ** (-mpmath.mpf(1) / 4)
    np.testing.assert_allclose(info.perplexity_from_probs(probs), float(want), rtol=TOL[np.dtype(dtype)])
    np.testing.assert_allclose(info.perplexity(loss / math.log(2), "bits"), info.perplexity(loss),
                               rtol=TOL[np.dtype(dtype)])
    tiny = jnp.full((2000,), 1e-3, dtype)  # ∏ p underflows in any float; the log-space form does not
    np.testing.assert_allclose(info.perplexity_from_probs(tiny), 1e3, rtol=TOL[np.dtype(dtype)])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="unit"):
        info.entropy(jnp.ones(2) / 2, unit="dits")
    with pytest.raises(TypeError, match="floating"):
        info.entropy(jnp.array([1, 0]))
    with pytest.raises(TypeError, match="integer class indices"):
        info.cross_entropy_from_logits(jnp.zeros((2, 3)), jnp.zeros(2))
    with pytest.raises(ValueError, match="labels shape"):
        info.cross_entropy_from_logits(jnp.zeros((2, 3)), jnp.zeros(3, int))
    bad = info.cross_entropy_from_logits(jnp.zeros((3, 4)), jnp.array([0, 4, -1]))
    assert np.isfinite(bad[0]) and np.isnan(bad[1]) and np.isnan(bad[2])  # out of range: NaN, not a clamp
    with pytest.raises(ValueError, match="label_smoothing"):
        info.cross_entropy_from_logits(jnp.zeros((2, 3)), jnp.zeros(2, int), 1.5)
    with pytest.raises(ValueError, match="joint table"):
        info.mutual_information(jnp.ones(3) / 3)
    with pytest.raises(ValueError, match="dim_x"):
        info.gaussian_mutual_information(jnp.eye(2), 2)
    with pytest.raises(ValueError, match="bins"):
        info.mutual_information_histogram(jnp.zeros(3), jnp.zeros(3), 0)


# ------------------------------------------------------------------- entropy as a coding bound (Huffman)

@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12).filter(lambda w: sum(w) > 0), st.data())
@SETTINGS
def test_huffman_code_is_prefix_free_complete_and_round_trips(weights, data):
    code = info.huffman_code(weights)
    assert len(code) == len(weights) and all(set(w) <= {"0", "1"} and w for w in code)
    assert not any(a != b and b.startswith(a) for a in code for b in code), code  # prefix-free
    if len(code) > 1:
        assert sum(2.0 ** -len(w) for w in code) == 1.0  # complete: Kraft's sum is exactly 1
    symbols = np.asarray(data.draw(st.lists(st.integers(0, len(code) - 1), max_size=40)), np.int64)
    bits = info.huffman_encode(symbols, code)
    assert len(bits) == sum(len(code[s]) for s in symbols)
    np.testing.assert_array_equal(info.huffman_decode(bits, code), symbols)


def test_huffman_code_is_optimal_against_brute_force(rng):
    """Over every length vector that satisfies Kraft's inequality (a prefix code exists for each), none has a
    smaller expected length than Huffman's."""
    for K in (2, 3, 4, 5, 6):
        lengths = np.asarray(list(itertools.product(range(1, K), repeat=K)))
        lengths = lengths[(2.0 ** -lengths).sum(axis=1) <= 1.0]
        for _ in range(12):  # skewed and flat distributions: exponential weights raised to random powers
            p = rng.exponential(size=K) ** rng.uniform(0.5, 4.0)
            p /= p.sum()
            got = sum(pi * len(w) for pi, w in zip(p, info.huffman_code(p), strict=True))
            np.testing.assert_allclose(got, float(np.min(lengths @ p)), rtol=1e-12)


@pytest.mark.parametrize("p", [0.5, 0.3, 0.11, 0.02])
def test_huffman_on_blocks_of_bernoulli_bits_approaches_the_entropy_from_above(p):
    H = float(-(mpmath.mpf(p) * mpmath.log(p, 2) + (1 - mpmath.mpf(p)) * mpmath.log(1 - mpmath.mpf(p), 2)))
    np.testing.assert_allclose(info.binary_entropy(jnp.float64(p), "bits"), H, rtol=1e-14)
    rates = []
    for k in (1, 2, 4, 8):
        ones = np.asarray([bin(s).count("1") for s in range(2**k)])
        probs = p**ones * (1 - p) ** (k - ones)  # P(block s): k independent bits
        rate = sum(q * len(w) for q, w in zip(probs, info.huffman_code(probs), strict=True)) / k  # exact, bits/bit
        assert H - 1e-12 <= rate < H + 1 / k, (k, rate, H)
        rates.append(rate)
    assert rates[0] == 1.0  # one bit per bit: a 2-symbol code cannot compress
    # a code for 2k-bit blocks is at least as good as the k-bit code used twice, which is one of its candidates
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(rates)), rates
    if p == 0.5:
        assert rates == [1.0] * 4  # nothing to gain: the source is already incompressible


def test_huffman_refuses_bad_input():
    with pytest.raises(ValueError, match="probs"):
        info.huffman_code([0.5, -0.1])
    with pytest.raises(ValueError, match="probs"):
        info.huffman_code([])
    code = info.huffman_code([0.5, 0.25, 0.25])
    with pytest.raises(ValueError, match="inside a codeword"):
        info.huffman_decode(info.huffman_encode([1, 2], code)[:-1], code)
    with pytest.raises(ValueError, match="symbols"):
        info.huffman_encode([3], code)


# A small causal model with real dependence on history: logits_j = A[x_j] + Σ_{i<j} ½^{j−i} B[x_i].
_V = 7
_A = np.random.default_rng(1).standard_normal((_V, _V))
_B = np.random.default_rng(2).standard_normal((_V, _V))


def _decay_logits(x):  # (Bt, L) int -> (Bt, L, V), jnp (float64 under x64)
    L = x.shape[-1]
    j, i = np.arange(L)[:, None], np.arange(L)[None, :]
    w = jnp.asarray(np.where(i < j, 0.5 ** (j - i).astype(float), 0.0))
    return jnp.asarray(_A)[x] + jnp.einsum("ji,biv->bjv", w, jnp.asarray(_B)[x])


def _oracle_nll(x, context, stride):
    """Hugging Face's loop, written out: window starts begin = 0, stride, ... (the last moved back to end at the
    text's end); each target t is scored once, by the first window holding it, from its history x[s(t):t] alone
    (a model run on exactly that history, float64 numpy)."""
    n = len(x)
    L = min(context, n - 1)
    starts, begin = [], 0
    while True:
        begin = min(begin, n - 1 - L)
        starts.append(begin)
        if begin + L >= n - 1:
            break
        begin += stride
    nll, history = [], []
    for t in range(1, n):
        s = next(b for b in starts if b < t <= b + L)
        h = np.asarray(x[s:t])
        z = _A[h[-1]] + sum(0.5 ** (len(h) - 1 - i) * _B[h[i]] for i in range(len(h) - 1))
        nll.append(scipy.special.logsumexp(z) - z[x[t]])
        history.append(t - s)
    return float(np.mean(nll)), history


@pytest.mark.parametrize(("n", "context", "stride"), [(40, 8, 8), (40, 8, 3), (41, 8, 1), (23, 5, 4), (6, 16, 16),
                                                      (2, 3, 1)])
def test_strided_perplexity_matches_a_token_by_token_loop(n, context, stride):
    x = np.random.default_rng(n + context + stride).integers(0, _V, n)
    want, history = _oracle_nll(x, context, stride)
    got = info.strided_perplexity(_decay_logits, jnp.asarray(x), context, stride, batch_size=3)
    assert got.tokens == n - 1
    np.testing.assert_allclose(got.nll, want, rtol=1e-12)
    np.testing.assert_allclose(got.perplexity, math.exp(want), rtol=1e-12)
    L = min(context, n - 1)
    assert max(history) == L and min(history[L:], default=L) >= L - stride + 1  # the history bounds documented


def test_strided_perplexity_jits_and_scores_a_uniform_model_at_the_vocabulary_size():
    x = jnp.asarray(np.random.default_rng(0).integers(0, _V, 30))
    eager = info.strided_perplexity(_decay_logits, x, 6, 2)
    jitted = jax.jit(lambda x: info.strided_perplexity(_decay_logits, x, 6, 2))(x)
    np.testing.assert_allclose(jitted.nll, eager.nll, rtol=1e-12)
    uniform = info.strided_perplexity(lambda w: jnp.zeros((*w.shape, 5)), x % 5, 6, 4)
    np.testing.assert_allclose(uniform.perplexity, 5.0, rtol=1e-12)  # log-probs or logits: the same score
    logp = info.strided_perplexity(lambda w: jax.nn.log_softmax(_decay_logits(w)), x, 6, 2)
    np.testing.assert_allclose(logp.nll, eager.nll, rtol=1e-12)


@given(st.integers(2, 60), st.integers(1, 12), st.data())
@SETTINGS
def test_strided_windows_score_every_target_exactly_once(n, context, data):
    stride = data.draw(st.integers(1, context))
    starts, first, L = info.strided_windows(n, context, stride)
    targets = [s + j + 1 for s, f in zip(starts, first, strict=True) for j in range(f, L)]
    assert sorted(targets) == list(range(1, n)), (starts, first)
    assert L == min(context, n - 1) and starts[-1] + L == n - 1 and np.all(starts >= 0)


def test_bits_per_character():
    # a character model: one token per character, so bits/char is nats/token over ln 2
    np.testing.assert_allclose(info.bits_per_character(2.0, 100, 100), 2.0 / math.log(2), rtol=1e-15)
    # a BPE model of 3.5 characters per token: its 3 nats/token are 3 / 3.5 / ln 2 bits per character
    np.testing.assert_allclose(info.bits_per_character(3.0, 200, 700), 3.0 * 200 / (700 * math.log(2)), rtol=1e-15)


def test_strided_perplexity_refuses_bad_plans():
    x = jnp.arange(10) % _V
    for context, stride in ((4, 5), (4, 0), (0, 1)):
        with pytest.raises(ValueError, match="stride"):
            info.strided_perplexity(_decay_logits, x, context, stride)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        info.strided_perplexity(_decay_logits, x[:1], 4)
    with pytest.raises(ValueError, match="1-D int"):
        info.strided_perplexity(_decay_logits, x.astype(jnp.float32), 4)


# ----------------------------------------------------------------------------------------- experiment

@pytest.mark.slow  # it trains a small GPT for its perplexity-vs-context figure
def test_experiment_runs_quick(tmp_path):
    """Smoke test: the chapter's experiment in --quick mode, in this process (no second jax import)."""
    path = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "ch07_information.py"
    spec = importlib.util.spec_from_file_location("ch07_information", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "ch07_information.json").exists()


# --------------------------------------------------------------------------- extremes (issue 17)

def _mp_kl(p, q):
    return float(sum(mpmath.mpf(float(a)) * mpmath.log(mpmath.mpf(float(a)) / mpmath.mpf(float(b)))
                     for a, b in zip(p, q, strict=True) if a > 0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_entropy_at_tiny_p_vs_mpmath(dtype):
    p = np.asarray([1e-20, 1e-10, 1e-3, 0.5], dtype)
    want = [float(-mpmath.mpf(float(v)) * mpmath.log(float(v)) - (1 - mpmath.mpf(float(v))) * mpmath.log1p(-float(v)))
            for v in p]
    np.testing.assert_allclose(info.binary_entropy(p), want, rtol=4e-6 if dtype == jnp.float32 else 1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_of_nearly_equal_distributions_is_small_and_positive(dtype):
    p = np.asarray([0.3, 0.3, 0.4], dtype)
    for d in (1e-3, 1e-5):
        q = (p + np.asarray([d, -d, 0], dtype)).astype(dtype)
        got = info.kl_divergence(p, q)
        # the oracle on the exact float inputs; its value ~ d²/0.3 is below float32's eps near 1
        np.testing.assert_allclose(got, _mp_kl(p, q), rtol=1e-4 if dtype == jnp.float32 else 1e-10)
        assert got > 0


def test_mutual_information_with_underflowing_product_of_marginals():
    pxy = jnp.asarray([[1e-20, 0.0], [0.0, 1.0]], jnp.float32)
    # I = Σ p log(p/(p_x p_y)) = 1e-20·log(1/1e-20) + 1·log(1/1) in exact arithmetic on these marginals
    px, py = np.asarray(pxy, np.float64).sum(1), np.asarray(pxy, np.float64).sum(0)
    want = sum(float(mpmath.mpf(float(v)) * mpmath.log(mpmath.mpf(float(v)) / (mpmath.mpf(px[i]) * mpmath.mpf(py[j]))))
               for (i, j), v in np.ndenumerate(np.asarray(pxy)) if v > 0)
    np.testing.assert_allclose(info.mutual_information(pxy), want, rtol=1e-5)


def test_gaussian_functions_refuse_a_covariance_that_is_not_positive_definite():
    bad = jnp.asarray([[-1.0]])
    with pytest.raises(ValueError, match="positive definite"):
        info.kl_gaussian(jnp.zeros(1), bad, jnp.zeros(1), jnp.eye(1))
    with pytest.raises(ValueError, match="positive definite"):
        info.gaussian_entropy(bad)
    assert np.isnan(jax.jit(info.kl_gaussian)(jnp.zeros(1), bad, jnp.zeros(1), jnp.eye(1)))
    with pytest.raises(ValueError, match="positive definite"):
        info.gaussian_mutual_information(jnp.asarray([[1.0, 2.0], [2.0, 1.0]]), 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1e-30, 1e-10, 1e10, 1e30])
def test_kl_gaussian_is_scale_invariant_across_magnitudes(dtype, scale):
    # KL is invariant under x -> s x: the same number at every magnitude float32 holds (s² stays in range)
    s = np.asarray(np.sqrt(scale), dtype)
    mu0, mu1 = np.asarray([0.5], dtype), np.asarray([-0.25], dtype)
    c0, c1 = np.asarray([[2.0]], dtype), np.asarray([[0.5]], dtype)
    want = 0.5 * (2.0 / 0.5 + 0.75**2 / 0.5 - 1 + math.log(0.5 / 2.0))
    got = info.kl_gaussian(s * mu0, s * s * c0, s * mu1, s * s * c1)
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == jnp.float32 else 1e-13)
