"""Chapter 12: "Backprop as Functor" in practice. An MLP built by composing learners (parametrised lenses:
implement / update / request) trains exactly like gradient descent with fungpt.grad; a data-parallel
gradient is a monoid sum of shard gradients.

    .venv/bin/python experiments/ch12_category.py [--quick] [--out experiments/out]

Writes ch12_lens_training.png and ch12_category.json to --out.

On an accelerator: the lens/gradient agreement holds on any backend; the step times become the accelerator's,
and the float64 check needs a CPU or GPU.
"""
import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import fungpt
from fungpt import category as C


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few steps (a smoke run)")
    ap.add_argument("--out", default="experiments/out")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # float64 and a stable step size: the identity lens update = GD step holds per step to rounding
    # (max_one_step_diff ~1e-15), but at lr = 0.2 training is chaotic and amplifies that rounding to
    # ~0.2 in the weights after 2,000 steps (float32 or float64 alike); at lr = 0.05 the whole
    # trajectories agree to ~1e-14.
    jax.config.update("jax_enable_x64", True)
    steps, lr, sizes = (20 if args.quick else 2000), 0.05, [1, 32, 32, 1]
    A = jnp.linspace(-3, 3, 64, dtype=jnp.float64)[:, None]
    B = jnp.sin(A) + 0.3 * jnp.cos(3 * A)
    learner = C.mlp_learner(len(sizes) - 1, lr)
    params0 = C.mlp_init(jax.random.key(0), sizes, jnp.float64)

    def mse(p):
        return jnp.mean(jax.vmap(lambda a, b: 0.5 * jnp.sum((learner.implement(p, a) - b) ** 2))(A, B))

    lens_step = jax.jit(lambda p: C.batch_update(learner, p, A, B))
    gd_step = jax.jit(lambda p: jax.tree.map(lambda w, g: w - lr * g, p, fungpt.grad(mse)(p)))
    mse_j = jax.jit(mse)
    p_lens, p_gd = params0, params0
    hist = {"lens": [], "gd": [], "max_param_diff": [], "one_step_diff": []}
    for _ in range(steps):
        hist["lens"].append(float(mse_j(p_lens)))
        hist["gd"].append(float(mse_j(p_gd)))
        # The functor identity is per step: both updates from the same parameters.
        hist["one_step_diff"].append(max(float(jnp.max(jnp.abs(x - y))) for x, y in
                                         zip(jax.tree.leaves(lens_step(p_gd)), jax.tree.leaves(gd_step(p_gd)),
                                             strict=True)))
        p_lens, p_gd = lens_step(p_lens), gd_step(p_gd)
        diff = max(float(jnp.max(jnp.abs(x - y))) for x, y in
                   zip(jax.tree.leaves(p_lens), jax.tree.leaves(p_gd), strict=True))
        hist["max_param_diff"].append(diff)

    def timeit(f, p, n=5 if args.quick else 200):
        jax.block_until_ready(f(p))
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            jax.block_until_ready(f(p))
            ts.append(time.perf_counter() - t0)
        return 1e3 * float(np.median(ts))

    res = {"quick": args.quick, "steps": steps, "lr": lr, "sizes": sizes,
           "final_mse_lens": hist["lens"][-1], "final_mse_gd": hist["gd"][-1],
           "max_param_diff_over_training": max(hist["max_param_diff"]),
           "max_one_step_diff": max(hist["one_step_diff"]),
           "lens_step_ms": timeit(lens_step, params0), "fungpt_grad_step_ms": timeit(gd_step, params0)}

    # Data parallelism: the gradient of a summed loss is the (monoid) sum of shard gradients.
    loss_sum = lambda p, bt: jnp.sum(jax.vmap(lambda a, b: 0.5 * jnp.sum((learner.implement(p, a) - b) ** 2))(
        bt["a"], bt["b"]))
    full = jax.jit(fungpt.grad(loss_sum))(params0, {"a": A, "b": B})
    sharded = jax.jit(lambda p, bt: C.data_parallel_grad(loss_sum, p, bt, 8))(params0, {"a": A, "b": B})
    res["data_parallel_max_abs_diff"] = max(float(jnp.max(jnp.abs(x - y))) for x, y in
                                            zip(jax.tree.leaves(full), jax.tree.leaves(sharded), strict=True))
    print({k: v for k, v in res.items() if not isinstance(v, list)})

    fig, axs = plt.subplots(1, 2, figsize=(9, 3.2))
    axs[0].semilogy(hist["gd"], lw=3, alpha=0.4, label="gradient descent, fungpt.grad")
    axs[0].semilogy(hist["lens"], "k--", lw=1, label="composed learners (lenses)")
    axs[0].set_xlabel("step")
    axs[0].set_ylabel("training MSE")
    axs[0].set_title(f"the same trajectory (max |Δparam| = {res['max_param_diff_over_training']:.1e})",
                     fontsize=9)
    axs[0].legend(fontsize=7)
    axs[1].plot(A[:, 0], B[:, 0], "k.", ms=3, label="data")
    axs[1].plot(A[:, 0], jax.vmap(lambda a: learner.implement(p_lens, a))(A)[:, 0], label="lens MLP")
    axs[1].set_title("fit after training", fontsize=9)
    axs[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ch12_lens_training.png", dpi=100)
    plt.close(fig)
    (out / "ch12_category.json").write_text(json.dumps({**res, "history": hist}, indent=1))


if __name__ == "__main__":
    main()
