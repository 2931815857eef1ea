"""Chapter 4, probability & statistics as pure JAX functions: probability rules on joint tables (`tables`),
random variables and their moments, exact, sampled and online (`moments`), distributions (`distributions`:
the `Family` type and the discrete families; `densities`: the continuous ones), Bayes' theorem, the law of
large numbers and the central limit theorem, MLE and MAP (`estimators`), and Markov chains (`markov`).

A distribution is a `Family` of pure functions over its parameters, e.g.
``gaussian.log_prob(x, mu, sigma)``, ``gaussian.sample(key, mu, sigma, shape)``, ``gaussian.mean(mu, sigma)``.
Samplers are written here from uniform bits (inverse CDF, Box-Muller, Marsaglia-Tsang), so every draw is
explained by this package. Input checks run on concrete values and are skipped under ``jit`` tracing.
Every public name lives at ``fungpt.probability.NAME``.
"""
from fungpt.probability.densities import beta, exponential, gaussian, kl_monte_carlo, multivariate_gaussian, uniform
from fungpt.probability.distributions import Family, bernoulli, binomial, categorical, poisson
from fungpt.probability.estimators import (
    bayes_posterior,
    bayes_update_sequence,
    beta_bernoulli_update,
    beta_credible_interval,
    fit_numeric,
    gaussian_credible_interval,
    ks_statistic,
    map_bernoulli,
    map_gaussian_mean,
    map_poisson,
    mle_bernoulli,
    mle_categorical,
    mle_exponential,
    mle_gaussian,
    mle_poisson,
    normal_normal_update,
    running_mean,
    sample_means,
)
from fungpt.probability.markov import (
    distribution_after,
    estimate_transition_matrix,
    mixing_curve,
    mixing_time,
    n_step,
    sample_path,
    stationary_distribution,
    stationary_power,
    total_variation,
)
from fungpt.probability.moments import (
    WelfordState,
    correlation,
    covariance,
    expectation,
    expectation_continuous,
    sample_covariance,
    sample_mean,
    sample_variance,
    variance,
    welford,
    welford_finalize,
    welford_init,
    welford_merge,
    welford_update,
)
from fungpt.probability.tables import (
    chi_square_independence,
    conditional,
    conditional_probability,
    independence_gap,
    intersection,
    marginal,
    probability,
    union,
)

__all__ = [
    "Family", "WelfordState", "bayes_posterior", "bayes_update_sequence", "bernoulli", "beta",
    "beta_bernoulli_update", "beta_credible_interval", "binomial", "categorical", "chi_square_independence",
    "conditional", "conditional_probability", "correlation", "covariance", "distribution_after",
    "estimate_transition_matrix", "expectation", "expectation_continuous", "exponential", "fit_numeric",
    "gaussian", "gaussian_credible_interval", "independence_gap", "intersection", "kl_monte_carlo",
    "ks_statistic", "map_bernoulli", "map_gaussian_mean", "map_poisson", "marginal", "mixing_curve",
    "mixing_time", "mle_bernoulli", "mle_categorical", "mle_exponential", "mle_gaussian", "mle_poisson",
    "multivariate_gaussian", "n_step", "normal_normal_update", "poisson", "probability", "running_mean",
    "sample_covariance", "sample_mean", "sample_means", "sample_path", "sample_variance",
    "stationary_distribution", "stationary_power", "total_variation", "uniform", "union", "variance", "welford",
    "welford_finalize", "welford_init", "welford_merge", "welford_update",
]
