"""Chapter 7, information theory: entropy, joint/marginal/conditional entropy, cross-entropy, KL divergence,
mutual information and perplexity, as pure JAX functions.

Distributions are arrays of probabilities over the last axis (``(..., K)``, summing to 1); joint tables of
two variables are ``(..., |X|, |Y|)``.  ``unit`` chooses nats (natural log, the default) or bits (log₂).
Terms with p = 0 contribute 0 (the limit p log p → 0), with gradients that stay finite: the log never
sees 0 at an entry where p = 0 (`fungpt._special.xlogy`).  Everything jits, vmaps over leading axes and differentiates.
"""
from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import lax

import fungpt._special as _special
from fungpt._arrays import concrete

__all__ = [
    "CorpusScore", "binary_entropy", "bits_per_character", "conditional_entropy", "cross_entropy",
    "cross_entropy_from_logits", "entropy", "gaussian_entropy", "gaussian_mutual_information", "huffman_code",
    "huffman_decode", "huffman_encode", "joint_entropy",
    "kl_divergence", "kl_gaussian", "log_softmax", "marginals", "mutual_information", "mutual_information_histogram",
    "perplexity", "perplexity_from_probs", "strided_perplexity", "strided_windows",
]

_UNITS = {"nats": 1.0, "bits": 1.0 / math.log(2.0)}


def _scale(unit):
    if unit not in _UNITS:
        raise ValueError(f"unit must be 'nats' or 'bits', got {unit!r}")
    return _UNITS[unit]


def _float(x, name="p"):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must be a floating array of probabilities, got dtype {x.dtype}")
    return x


def _cholesky(cov, name):
    """L with cov = L Lᵀ. Not symmetric positive definite: a ValueError on concrete input, NaN under jit
    (jnp.linalg.cholesky's NaN factor then reaches every result), never a plausible number."""
    L = jnp.linalg.cholesky(cov)
    v = concrete(L)
    if v is not None and not np.all(np.diagonal(v, axis1=-2, axis2=-1) > 0):
        raise ValueError(f"{name} must be symmetric positive definite (its Cholesky factor is {v})")
    return L


def _table(pxy):
    pxy = _float(pxy, "pxy")
    if pxy.ndim < 2:
        raise ValueError(f"pxy must be a joint table (..., |X|, |Y|), got shape {pxy.shape}")
    return pxy


# ---------------------------------------------------------------------------------------------- entropy

def entropy(p, unit: str = "nats"):
    """Shannon entropy  H(p) = −Σ_k p_k log p_k  over the last axis (0 log 0 = 0).

    p: (..., K) -> (...).  0 <= H <= log K, with log K exactly for the uniform distribution.
    """
    p = _float(p)
    return -jnp.sum(_special.xlogy(p, p), axis=-1) * _scale(unit)


def binary_entropy(p, unit: str = "nats"):
    """H_b(p) = −p log p − (1−p) log(1−p): the entropy of a coin with P(heads) = p.  Elementwise.

    The second term is (1−p)·log1p(−p): at p = 1e-20 it is 1e-20, which log(1 − p) = log 1 = 0 would drop."""
    p = _float(p)
    return -(_special.xlogy(p, p) + _special.xlog1py(1 - p, -p)) * _scale(unit)


def gaussian_entropy(cov, unit: str = "nats"):
    """Differential entropy of N(μ, Σ):  h = ½ log det(2πe Σ)  (via Cholesky).  cov: (..., d, d) -> (...)."""
    cov = _float(cov, "cov")
    d = cov.shape[-1]
    logdet = 2 * jnp.sum(jnp.log(jnp.diagonal(_cholesky(cov, "cov"), axis1=-2, axis2=-1)), axis=-1)
    return 0.5 * (d * math.log(2 * math.pi * math.e) + logdet) * _scale(unit)


# ---------------------------------------------------------------- entropy as a coding bound: Huffman codes

def huffman_code(probs) -> list[str]:
    """A binary Huffman code for symbols 0..K−1 of probabilities ``probs`` (K,): codeword i as a '0'/'1' string.

    Merge the two least probable subtrees until one tree remains; a symbol's codeword length is its depth.  The
    code is prefix-free and optimal: no prefix code has a smaller expected length L = Σ p_i ℓ_i, and
    H(p) ≤ L < H(p) + 1 bits (entropy is the bound; coding blocks of k symbols as one: H ≤ L_k / k < H + 1/k).
    Canonical form: codewords counted up in order of (length, symbol), so the lengths alone rebuild the code.
    Eager (a heap in Python, O(K log K) merges).  A single symbol gets the one-bit code '0'."""
    p = np.asarray(probs, np.float64)
    if p.ndim != 1 or p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0) or not p.sum() > 0:
        raise ValueError(f"probs must be a non-empty 1-D array of finite weights >= 0 with a positive sum, got {p}")
    K = p.size
    if K == 1:
        return ["0"]
    depth = np.zeros(K, np.int64)
    heap = [(w, i, (i,)) for i, w in enumerate(p)]  # (weight, tie-breaking counter, symbols below)
    heapq.heapify(heap)
    for counter in range(K, 2 * K - 1):
        (wa, _, a), (wb, _, b) = heapq.heappop(heap), heapq.heappop(heap)
        depth[list(a + b)] += 1  # every symbol below the new node moves one level down
        heapq.heappush(heap, (wa + wb, counter, a + b))
    code, value, prev = [""] * K, -1, 0
    for i in sorted(range(K), key=lambda i: (depth[i], i)):
        value = (value + 1) << (int(depth[i]) - prev)  # the next codeword, lengthened to this depth
        prev = int(depth[i])
        code[i] = format(value, f"0{prev}b")
    return code


def huffman_encode(symbols, code: list[str]) -> str:
    """The bit string of ``symbols`` (ints in [0, len(code))) under a prefix code: their codewords, concatenated."""
    s = np.asarray(symbols)
    if s.ndim != 1 or (s.size and (not np.issubdtype(s.dtype, np.integer) or s.min() < 0 or s.max() >= len(code))):
        raise ValueError(f"symbols must be a 1-D int array in [0, {len(code)}), got {s!r:.80}")
    return "".join(code[i] for i in s.tolist())


def huffman_decode(bits: str, code: list[str]) -> np.ndarray:
    """Invert `huffman_encode`: read codewords off the front of ``bits`` (a prefix code needs no separators).
    Bits that end inside a codeword, or no codeword matches, raise ValueError."""
    table = {w: i for i, w in enumerate(code)}
    out, word = [], ""
    longest = max(map(len, code))
    for at, b in enumerate(bits):
        word += b
        if word in table:
            out.append(table[word])
            word = ""
        elif len(word) >= longest:
            raise ValueError(f"the bits {word!r} ending at bit {at} start no codeword")
    if word:
        raise ValueError(f"the bits end inside a codeword: {word!r} left over")
    return np.asarray(out, np.int64)


# ---------------------------------------------------------------------------- joint, marginal, conditional

def marginals(pxy):
    """(p(x), p(y)) = (Σ_y p(x, y), Σ_x p(x, y)) of a joint table (..., |X|, |Y|)."""
    pxy = _table(pxy)
    return jnp.sum(pxy, axis=-1), jnp.sum(pxy, axis=-2)


def joint_entropy(pxy, unit: str = "nats"):
    """H(X, Y) = −Σ_{x,y} p(x, y) log p(x, y).  pxy: (..., |X|, |Y|) -> (...)."""
    pxy = _table(pxy)
    return entropy(pxy.reshape(*pxy.shape[:-2], -1), unit)


def conditional_entropy(pxy, unit: str = "nats"):
    """H(Y | X) = −Σ_{x,y} p(x, y) log p(y | x),  p(y | x) = p(x, y) / p(x).  X is the second-to-last axis.

    Computed from the conditional directly (not as a difference), so the chain rule
    H(X, Y) = H(X) + H(Y | X) is a real check.  pxy: (..., |X|, |Y|) -> (...).
    """
    pxy = _table(pxy)
    px = jnp.sum(pxy, axis=-1, keepdims=True)
    cond = pxy / jnp.where(px > 0, px, jnp.ones_like(px))
    return -jnp.sum(_special.xlogy(pxy, cond), axis=(-2, -1)) * _scale(unit)


# ------------------------------------------------------------------------------------------ cross-entropy

def cross_entropy(p, q, unit: str = "nats"):
    """H(p, q) = −Σ_k p_k log q_k = H(p) + KL(p ‖ q)  over the last axis.  p, q: (..., K) -> (...).

    Infinite where q_k = 0 < p_k (the model rules out something that happens)."""
    p, q = _float(p), _float(q, "q")
    return -jnp.sum(_special.xlogy(p, q), axis=-1) * _scale(unit)


def log_softmax(logits, axis: int = -1):
    """log softmax(z)_k = z_k − m − log Σ_j exp(z_j − m),  m = max_j z_j (a constant: no gradient needed,
    and subtracting it keeps exp from overflowing), over `axis`.  Computed in at least float32.
    The one log-softmax of fungpt (`nn`, `optim` and `gpt` call it or `cross_entropy_from_logits`)."""
    z = jnp.asarray(logits)
    if jnp.finfo(z.dtype).bits < 32:
        z = z.astype(jnp.float32)
    m = lax.stop_gradient(jnp.max(z, axis=axis, keepdims=True))
    s = z - m
    return s - jnp.log(jnp.sum(jnp.exp(s), axis=axis, keepdims=True))


def cross_entropy_from_logits(logits, labels, label_smoothing: float = 0.0, *, reduction: str = "none"):
    """The loss  −Σ_k t_k log softmax(z)_k  with targets t = (1−ε)·onehot(y) + ε/K, per example or reduced.

    = −(1−ε) log softmax(z)_y − (ε/K) Σ_k log softmax(z)_k, with the stable `log_softmax`, so it is finite for
    any finite logits (even ±1e30).  logits: (..., K) float, labels: (...) int; reduction "none" -> (...),
    "mean" or "sum" -> a scalar; in at least float32.  fungpt's one logits cross-entropy: `nn.cross_entropy`
    is its mean (the GPT's loss), `optim.softmax_cross_entropy` its per-example form.

    Contract for a label outside [0, K), eager or under jit alike: its loss is NaN (so is a mean or sum
    over it) and so is the gradient, never a clamped, wrapped or zero "plausible" value.
    """
    z = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(z.dtype, jnp.floating):
        raise TypeError(f"logits must be floating, got dtype {z.dtype}")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if labels.shape != z.shape[:-1]:
        raise ValueError(f"labels shape {labels.shape} must equal logits shape without the last axis {z.shape[:-1]}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    reduce = {"none": lambda a: a, "mean": jnp.mean, "sum": jnp.sum}.get(reduction)
    if reduce is None:
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    logp = log_softmax(z)  # (..., K), at least float32
    K = logp.shape[-1]
    valid = (labels >= 0) & (labels < K) if K <= jnp.iinfo(labels.dtype).max else labels >= 0
    # The label's entry by a compare-and-sum that XLA fuses into the reduction (no (N, K) one-hot in memory);
    # the class index is an int32 iota (one in a uint8 label's dtype would wrap for K > 256).  A bad label
    # would hit nothing, a loss of 0: its row hits every class instead and the result is multiplied by NaN
    # below, so the NaN reaches the value and, through every entry of the row, the gradient.
    hit = lax.broadcasted_iota(jnp.int32, logp.shape, logp.ndim - 1) == labels.astype(jnp.int32)[..., None]
    logp_y = jnp.sum(jnp.where(hit | ~valid[..., None], logp, jnp.zeros((), logp.dtype)), axis=-1)  # (...)
    if label_smoothing == 0.0:
        loss = -reduce(logp_y)
    else:
        loss = reduce(-(1.0 - label_smoothing) * logp_y - label_smoothing * jnp.mean(logp, axis=-1))
    # the NaN factor after the reduction: the GPT's mean loss is then the very program it always was
    ok = valid if reduction == "none" else jnp.all(valid)
    return loss * jnp.where(ok, jnp.ones((), loss.dtype), jnp.asarray(jnp.nan, loss.dtype))


# ------------------------------------------------------------------------------------------ KL divergence

def kl_divergence(p, q, unit: str = "nats"):
    """KL(p ‖ q) = Σ_k p_k log(p_k / q_k) >= 0, = 0 iff p = q; not symmetric.  p, q: (..., K) -> (...).

    Summed as Σ_k [p_k log(p_k/q_k) − p_k + q_k] (equal for p, q that sum to 1): each term is Loader's
    deviance bd0 ≥ 0, accurate as p_k → q_k, so KL of nearly equal distributions is ≈ ½ Σ (p−q)²/q, never
    a negative rounding residue.  inf where q_k = 0 < p_k."""
    p, q = _float(p), _float(q, "q")
    return jnp.sum(_special.bd0(p, q), axis=-1) * _scale(unit)


def kl_gaussian(mu0, cov0, mu1, cov1, unit: str = "nats"):
    """KL(N(μ₀, Σ₀) ‖ N(μ₁, Σ₁)) = ½ [tr(Σ₁⁻¹Σ₀) + (μ₁−μ₀)ᵀΣ₁⁻¹(μ₁−μ₀) − d + log det Σ₁ − log det Σ₀].

    mu: (d,), cov: (d, d) symmetric positive definite (Cholesky solves, no inverse) -> scalar.
    For d = 1 pass (1,) and (1, 1) arrays.  vmap for batches.
    """
    mu0, cov0, mu1, cov1 = (_float(a, n) for a, n in ((mu0, "mu0"), (cov0, "cov0"), (mu1, "mu1"), (cov1, "cov1")))
    d = mu0.shape[-1]
    if mu0.shape != (d,) or mu1.shape != (d,) or cov0.shape != (d, d) or cov1.shape != (d, d):
        raise ValueError(f"need mu (d,) and cov (d, d); got {mu0.shape}, {cov0.shape}, {mu1.shape}, {cov1.shape}")
    L0, L1 = _cholesky(cov0, "cov0"), _cholesky(cov1, "cov1")
    solve = lambda b: lax.linalg.triangular_solve(L1, b, left_side=True, lower=True)
    M = solve(L0)  # L1⁻¹ L0:  tr(Σ₁⁻¹Σ₀) = ‖L1⁻¹L0‖_F²
    r = solve((mu1 - mu0)[:, None])[:, 0]  # L1⁻¹(μ₁−μ₀):  the Mahalanobis term is ‖r‖²
    logdet = lambda L: 2 * jnp.sum(jnp.log(jnp.diagonal(L)))
    return 0.5 * (jnp.sum(M * M) + jnp.sum(r * r) - d + logdet(L1) - logdet(L0)) * _scale(unit)


# ------------------------------------------------------------------------------------- mutual information

def mutual_information(pxy, unit: str = "nats"):
    """I(X; Y) = Σ_{x,y} p(x, y) log [p(x, y) / (p(x) p(y))] = KL(p(x, y) ‖ p(x) p(y)) >= 0, 0 iff X ⊥ Y.

    pxy: (..., |X|, |Y|) -> (...).  Equals H(X) + H(Y) − H(X, Y) = H(Y) − H(Y | X).
    """
    pxy = _table(pxy)
    px, py = marginals(pxy)
    # log p(x) and log p(y) separately: the product p(x) p(y) underflows (1e-20 · 1e-20 in float32)
    terms = _special.xlogy(pxy, pxy) - _special.xlogy(pxy, px[..., :, None]) - _special.xlogy(pxy, py[..., None, :])
    return jnp.sum(terms, axis=(-2, -1)) * _scale(unit)


def gaussian_mutual_information(cov, dim_x: int, unit: str = "nats"):
    """I(X; Y) for jointly Gaussian (X, Y) with covariance Σ = [[Σ_xx, Σ_xy], [Σ_yx, Σ_yy]]:
    I = ½ log(det Σ_xx · det Σ_yy / det Σ);  for scalars with correlation ρ, I = −½ log(1 − ρ²).

    cov: (d, d), dim_x: size of X (1 <= dim_x < d) -> scalar.
    """
    cov = _float(cov, "cov")
    d = cov.shape[-1]
    if cov.ndim != 2 or cov.shape[0] != d or not 1 <= dim_x < d:
        raise ValueError(f"need a (d, d) covariance and 1 <= dim_x < d; got shape {cov.shape}, dim_x={dim_x}")
    logdet = lambda S: 2 * jnp.sum(jnp.log(jnp.diagonal(_cholesky(S, "cov"))))
    return 0.5 * (logdet(cov[:dim_x, :dim_x]) + logdet(cov[dim_x:, dim_x:]) - logdet(cov)) * _scale(unit)


def mutual_information_histogram(x, y, bins: int = 16, unit: str = "nats"):
    """Plug-in estimate of I(X; Y) from paired samples: bin x and y into `bins` equal-width bins over
    their ranges, count the joint table, normalize, and apply `mutual_information`.

    x, y: (N,) -> scalar.  Biased upwards by about (bins − 1)² / (2N) nats (Miller–Madow) — compare
    estimates at equal N and bins.  Jittable (`bins` static).
    """
    x, y = _float(x, "x"), _float(y, "y")
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of equal length, got {x.shape} and {y.shape}")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}")

    def bin_index(v):
        lo, hi = jnp.min(v), jnp.max(v)
        width = jnp.where(hi > lo, hi - lo, jnp.ones_like(hi))
        return jnp.clip(jnp.floor((v - lo) / width * bins).astype(jnp.int32), 0, bins - 1)

    cell = bin_index(x) * bins + bin_index(y)
    counts = jnp.zeros(bins * bins, x.dtype).at[cell].add(jnp.ones_like(x))
    return mutual_information((counts / x.shape[0]).reshape(bins, bins), unit)


# ------------------------------------------------------------------------------------------- perplexity

def perplexity(loss, unit: str = "nats"):
    """Perplexity from a mean cross-entropy loss: PPL = exp(loss) (nats) or 2^loss (bits) — the effective
    number of equally likely choices the model hesitates between.  Elementwise."""
    loss = _float(loss, "loss")
    return jnp.exp(loss / _scale(unit))


def perplexity_from_probs(p, axis=-1):
    """PPL = (∏_i p_i)^(−1/N) = exp(−(1/N) Σ_i log p_i), with p_i the probability the model gave the
    i-th observed token.  Computed in log space (the product underflows for long texts).  p: (..., N)."""
    p = _float(p)
    return jnp.exp(-jnp.mean(jnp.log(p), axis=axis))


def bits_per_character(nll, n_tokens, n_chars):
    """Bits per character of a text scored at ``nll`` nats per token:  bpc = nll · n_tokens / (n_chars · ln 2).

    The text's total information, nll · n_tokens nats, spread over its characters and turned into bits; pass the
    UTF-8 byte count as ``n_chars`` for bits per byte.  A tokenizer-free figure: models with different
    vocabularies (characters, BPE) compare on it, not on perplexity per token.  Elementwise."""
    nll = _float(nll, "nll")
    return nll * (jnp.asarray(n_tokens, nll.dtype) / (jnp.asarray(n_chars, nll.dtype) * math.log(2.0)))


def strided_windows(n: int, context: int, stride: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The sliding-window plan that scores tokens 1..n−1 of a sequence of n tokens once each.

    Window k feeds tokens s_k .. s_k+L−1 (L = min(context, n−1)); its position j predicts token s_k+j+1 from
    the j+1 tokens s_k..s_k+j.  Starts s_k = 0, stride, 2·stride, ... and a last one at n−1−L, so that the
    windows end at the text's end.  Window k scores the targets no earlier window reached: positions
    j >= first_k, first_0 = 0, first_k = s_{k−1} + L − s_k (= L − stride between full strides).  So every
    target but those of the first window has at least L − stride tokens of history, and at most L.
    Returns (starts (W,), first (W,), L) as numpy ints (the plan depends on sizes only)."""
    for name, v in (("n", n), ("context", context), ("stride", stride)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {v!r}")
    if n < 2:
        raise ValueError(f"scoring needs at least 2 tokens (the first has no history), got {n}")
    if context < 1 or not 1 <= stride <= context:
        raise ValueError(f"need context >= 1 and 1 <= stride <= context, got context={context}, stride={stride}")
    L = min(context, n - 1)
    starts = np.asarray([*range(0, n - 1 - L, stride), n - 1 - L], np.int64)
    first = np.concatenate([[0], starts[:-1] + L - starts[1:]])
    return starts, first, L


class CorpusScore(NamedTuple):
    nll: jnp.ndarray         # mean negative log-likelihood, nats per scored token
    perplexity: jnp.ndarray  # exp(nll)
    tokens: int              # tokens scored: n − 1 (all but the first, which has no history)


def strided_perplexity(logits_fn: Callable, tokens, context: int, stride: int | None = None,
                       batch_size: int = 16) -> CorpusScore:
    """Perplexity of a causal model on a long token sequence, each token scored once with up to ``context``
    tokens of history (Hugging Face's "perplexity of fixed-length models" with a sliding window).

        NLL = −(1/(n−1)) Σ_{t=1}^{n−1} log p(x_t | x_{s(t)} .. x_{t−1}),   PPL = exp(NLL),

    where s(t) is the start of the window that scores t (`strided_windows`): stride = context gives disjoint
    windows (cheapest: n/context model calls; a target's history is 1..context tokens, context/2 on average),
    stride = 1 gives every target its full context (n calls).  Bits per character: `bits_per_character`.

    logits_fn: (B, L) int windows -> (B, L, V) logits or log-probabilities (log_softmax of log-probabilities is
    themselves); it must be causal (position j may depend on tokens 0..j only).  tokens: (n,) int.  Windows
    are scored batch_size at a time (`lax.map`, bounded memory).  Jittable with logits_fn closed over."""
    tokens = jnp.asarray(tokens)
    if tokens.ndim != 1 or not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise ValueError(f"tokens must be a 1-D int sequence, got shape {tokens.shape} dtype {tokens.dtype}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    n = tokens.shape[0]
    starts, first, L = strided_windows(n, context, context if stride is None else stride)
    pad = -len(starts) % batch_size  # padding windows score nothing: first = L
    starts, first = np.pad(starts, (0, pad)), np.pad(first, (0, pad), constant_values=L)
    idx = starts[:, None] + np.arange(L)  # (W, L)
    x, y = tokens[idx], tokens[idx + 1]
    scored = jnp.asarray(np.arange(L)[None, :] >= first[:, None])  # (W, L)

    def batch_nll(args):
        xb, yb, mb = args  # (B, L) each
        nll = cross_entropy_from_logits(logits_fn(xb), yb)  # (B, L)
        return jnp.sum(jnp.where(mb, nll, jnp.zeros((), nll.dtype)))

    shape = (-1, batch_size, L)
    total = jnp.sum(lax.map(batch_nll, (x.reshape(shape), y.reshape(shape), scored.reshape(shape))))
    nll = total / (n - 1)
    return CorpusScore(nll, jnp.exp(nll), n - 1)
