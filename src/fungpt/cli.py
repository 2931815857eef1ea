"""The ``fungpt`` command: train, sample, eval, bench, demo, export.

    fungpt train                          # the baby GPT on the shipped Shakespeare, then a sample
    fungpt train --preset small --config run.toml --max-iters 500 --grad jax --dtype bfloat16
    fungpt train --resume runs/baby --max-iters 3000
    fungpt sample runs/baby --prompt "ROMEO:" --max-new-tokens 300 --temperature 0.8 --top-k 200
    fungpt sample runs/baby --prompt-file prompt.txt --stop "\n\n"   # cut (and stop) at a blank line
    fungpt export runs/baby --hf out/baby  # a GPT-2 folder for transformers (weights + tokenizer)
    fungpt eval runs/baby [--data FILE]   # loss and perplexity
    fungpt bench                          # ms/iter of the train step, fungpt.grad vs jax.grad
    fungpt demo                           # fungpt.grad vs jax.grad on a small GPT, in seconds

Every TrainConfig field is a flag (``--n-layer 6``, ``--no-bias``); a TOML/JSON ``--config`` file sets
the same fields; precedence: preset < config file < flags. Errors print one line and exit with 2
(``FUNGPT_DEBUG=1`` shows the traceback).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
import time

__all__ = ["main"]


def _train_flags(p: argparse.ArgumentParser) -> None:
    from fungpt.gpt.train import TrainConfig

    g = p.add_argument_group("TrainConfig fields (override the preset and the --config file)")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = str(f.type)
        if kind == "bool":
            g.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS)
        else:
            conv = {"int": int, "float": float}.get(kind, str)
            g.add_argument(flag, dest=f.name, type=conv, default=argparse.SUPPRESS, metavar=kind.split()[0].upper(),
                           help=f"default {f.default!r}")


def _parser() -> argparse.ArgumentParser:
    from fungpt.gpt.train import PRESETS

    top = argparse.ArgumentParser(prog="fungpt", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", metavar="{train,sample,eval,bench,demo,export}")

    t = sub.add_parser("train", help="train a GPT (default: the baby preset on the shipped corpus)")
    t.add_argument("--preset", choices=sorted(PRESETS), help="default baby (not with --resume)")
    t.add_argument("--config", help="a TOML or JSON file of TrainConfig fields")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its latest checkpoint, with its "
                   "saved config (then the --config file's fields, then flags, e.g. --max-iters 3000)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (evals still print)")
    _train_flags(t)

    s = sub.add_parser("sample", help="generate text from a trained run")
    s.add_argument("run_dir")
    s.add_argument("--prompt", default="\n")
    s.add_argument("--max-new-tokens", type=int, default=500)
    s.add_argument("--temperature", type=float, default=0.8)
    s.add_argument("--prompt-file", help="read the prompt from this UTF-8 file (instead of --prompt)")
    s.add_argument("--top-k", type=int, default=200, help="keep the k most likely tokens (0: no top-k filter)")
    s.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="end the sample before this text (repeatable; one token long: generation stops there)")
    s.add_argument("--stop-id", action="append", default=[], type=int, metavar="ID",
                   help="end the sample before this token id, and stop generating there (repeatable)")
    s.add_argument("--top-p", type=float, default=None)
    s.add_argument("--num-samples", type=int, default=1)
    s.add_argument("--seed", type=int, default=0)

    e = sub.add_parser("eval", help="loss and perplexity of a trained run on a text")
    e.add_argument("run_dir")
    e.add_argument("--data", help="a UTF-8 text file or folder (default: the run's validation split)")
    e.add_argument("--batch-size", type=int, default=32)

    b = sub.add_parser("bench", help="ms/iter of the train step: fungpt.grad vs jax.grad")
    b.add_argument("--preset", default="baby", choices=sorted(PRESETS))
    b.add_argument("--config", help="a TOML or JSON file of TrainConfig fields")
    b.add_argument("--steps", type=int, default=50, help="timed steps per gradient function")
    _train_flags(b)

    x = sub.add_parser("export", help="write a run as a Hugging Face GPT-2 folder (weights + tokenizer)")
    x.add_argument("run_dir")
    x.add_argument("--hf", required=True, metavar="OUT_DIR", help="the folder to write (created if missing)")

    d = sub.add_parser("demo", help="fungpt.grad vs jax.grad on a small GPT loss")
    d.add_argument("--steps", type=int, default=20, help="timed gradient calls per engine")
    d.add_argument("--n-layer", type=int, default=2)
    d.add_argument("--n-embd", type=int, default=64)
    d.add_argument("--block-size", type=int, default=32)
    return top


def _cmd_train(args) -> int:
    from fungpt.gpt import checkpoint, train

    flags = {k: v for k, v in vars(args).items() if k not in ("command", "preset", "config", "resume", "no_progress")}
    if flags.get("data"):  # saved absolute, so that eval and --resume find it from any directory
        flags["data"] = str(pathlib.Path(flags["data"]).resolve())
    if args.resume:
        if args.preset is not None:
            raise ValueError("--preset cannot be combined with --resume: the run continues with its saved config")
        if "out_dir" in flags and pathlib.Path(flags["out_dir"]).resolve() != pathlib.Path(args.resume).resolve():
            raise ValueError(f"--out-dir cannot be combined with --resume: the run continues in {args.resume}")
        saved = checkpoint.read_meta(args.resume)["config"]
        file = train._read_config_file(pathlib.Path(args.config)) if args.config else {}
        known = {f.name for f in dataclasses.fields(train.TrainConfig)}
        if not isinstance(saved, dict) or (unknown := sorted(set(saved) - known)):
            raise checkpoint.CheckpointError(
                f"{args.resume}: the checkpoint's config has fields this fungpt does not know: {unknown}"
                if isinstance(saved, dict) else f"{args.resume}: the checkpoint's config is not a table: {saved!r}")
        if unknown := sorted(set(file) - known):
            raise ValueError(f"unknown config fields {unknown} in {args.config}; known fields: {sorted(known)}")
        cfg = train.TrainConfig(**{**saved, **file, **flags})  # saved < --config file < flags
    else:
        cfg = train.config_from(args.preset or "baby", args.config, **flags)
        if "out_dir" not in flags:  # a fresh default run never collides with an earlier one
            cfg = cfg.replace(out_dir=_free_dir(cfg.out_dir))
    res = train.train(cfg, resume=args.resume, progress=not args.no_progress)
    if res.interrupted:
        print(f"interrupted at step {res.step}: checkpoint saved in {res.run_dir}; "
              f"continue with: fungpt train --resume {res.run_dir}", file=sys.stderr)
        return 130
    ev = f", val loss {res.evals[-1][2]:.4f}" if res.evals else ""
    print(f"done: {res.step} steps{ev}; run saved in {res.run_dir} "
          f"(metrics.jsonl, loss.png, {checkpoint.LATEST} -> checkpoint)")
    return 0


def _free_dir(path: str) -> str:
    # The first of path, path-1, path-2, ... that does not exist or is an empty folder (a run killed before
    # its first checkpoint leaves metrics.jsonl and no `latest`: a new run must not append to it).
    cand, i = pathlib.Path(path), 1
    while cand.exists() and (not cand.is_dir() or any(cand.iterdir())):
        cand, i = pathlib.Path(f"{path}-{i}"), i + 1
    return str(cand)


def _cmd_sample(args) -> int:
    import jax

    from fungpt.gpt import generate_text, train

    for name in ("max_new_tokens", "num_samples"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    prompt = args.prompt
    if args.prompt_file:
        prompt = pathlib.Path(args.prompt_file).read_text(encoding="utf-8")
    run = train.load_run(args.run_dir)
    key = jax.random.key(args.seed)
    for i in range(args.num_samples):
        text = generate_text(run.params, run.model_config, run.tokenizer, prompt, args.max_new_tokens,
                             jax.random.fold_in(key, i), args.temperature, args.top_k, args.top_p,
                             stop=[*args.stop, *args.stop_id])
        print(text)
        if i + 1 < args.num_samples:
            print("-" * 40)
    return 0


def _cmd_export(args) -> int:
    from fungpt.gpt import hf, train

    run = train.load_run(args.run_dir)
    out = hf.to_hf(run.params, run.model_config, args.hf, tokenizer=run.tokenizer)
    print(f"wrote {out}: {', '.join(sorted(f.name for f in out.iterdir() if not f.name.startswith('.')))}")
    return 0


def _cmd_eval(args) -> int:
    from fungpt.gpt import data, train

    if args.batch_size <= 0:
        raise ValueError(f"--batch-size must be > 0, got {args.batch_size}")
    run = train.load_run(args.run_dir)
    text = data.load_text(args.data) if args.data else None
    loss, ppl, n = train.evaluate_text(run, text, args.batch_size)
    where = args.data or "the validation split"
    print(f"{where}: loss {loss:.4f} nats/token, perplexity {ppl:.3f} over {n:,} tokens (step {run.step})")
    return 0


def _cmd_bench(args) -> int:
    from fungpt.gpt import train

    if args.steps <= 0:
        raise ValueError(f"--steps must be > 0, got {args.steps}")
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "preset", "config", "steps")}
    cfg = train.config_from(args.preset, args.config, **flags)
    res = train.bench_step(cfg, steps=args.steps, rounds=min(5, args.steps))
    print(f"preset {args.preset} ({cfg.dtype}, batch {cfg.batch_size}x{cfg.block_size}), median of "
          f"{len(res['jax']['times'])} steps, interleaved:")
    for g, r in res.items():
        print(f"  grad={g:7s} {r['ms_per_iter']:8.2f} ms/iter  {r['tokens_per_s']:9,.0f} tokens/s  "
              f"(first call, with compile: {r['compile_s']:.1f} s)")
    print(f"  fungpt.grad / jax.grad = {res['fungpt']['ms_per_iter'] / res['jax']['ms_per_iter']:.3f}")
    return 0


def _cmd_demo(args) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import fungpt
    from fungpt.gpt import config, model

    if args.steps <= 0:
        raise ValueError(f"--steps must be > 0, got {args.steps}")
    cfg = config.GPTConfig(vocab_size=65, block_size=args.block_size, n_layer=args.n_layer, n_head=2,
                           n_embd=args.n_embd)
    kp = jax.random.key(0)
    params = jax.jit(model.init_params, static_argnums=0)(cfg, kp)
    tokens = jnp.asarray(np.random.default_rng(0).integers(0, cfg.vocab_size, (8, cfg.block_size + 1)), jnp.int32)
    loss = lambda p: model.loss(p, tokens[:, :-1], tokens[:, 1:], cfg)
    print(f"the gradient of a {cfg.n_layer}-layer GPT's loss ({sum(x.size for x in jax.tree.leaves(params)):,} "
          "parameters), by our autodiff and by JAX's:")
    engines = {"fungpt.grad": jax.jit(fungpt.grad(loss)), "jax.grad": jax.jit(jax.grad(loss))}
    grads, times = {}, {}
    for name, g in engines.items():
        t = time.perf_counter()
        grads[name] = jax.block_until_ready(g(params))
        compile_s = time.perf_counter() - t
        ts = []
        for _ in range(args.steps):
            t = time.perf_counter()
            jax.block_until_ready(g(params))
            ts.append(time.perf_counter() - t)
        times[name] = (compile_s, 1e3 * float(np.median(ts)))
    flat_a = jax.tree_util.tree_flatten_with_path(grads["fungpt.grad"])[0]
    flat_b = jax.tree.leaves(grads["jax.grad"])
    worst = max((float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-30)), jax.tree_util.keystr(p))
                for (p, a), b in zip(flat_a, flat_b, strict=True))
    print(f"  largest relative difference over {len(flat_b)} leaves: {worst[0]:.2e} (at {worst[1]})")
    for name, (c, ms) in times.items():
        print(f"  {name:12s} first call (trace + compile) {c:6.2f} s, then {ms:7.2f} ms per gradient")
    print("train with it: fungpt train  (add --grad jax to compare)")
    return 0


def main(argv=None) -> int:
    """Entry point of the ``fungpt`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from fungpt.gpt.checkpoint import CheckpointError
    from fungpt.gpt.train import NonFiniteError

    cmd = {"train": _cmd_train, "sample": _cmd_sample, "eval": _cmd_eval, "bench": _cmd_bench, "demo": _cmd_demo,
           "export": _cmd_export}
    from fungpt.runtime import tune_malloc

    tune_malloc()  # XLA:CPU's per-call temporaries stop page-faulting (the train step: 46 -> 32 ms)
    try:
        return cmd[args.command](args)
    except (ValueError, TypeError, OSError, NotImplementedError, CheckpointError, NonFiniteError) as e:
        if os.environ.get("FUNGPT_DEBUG"):
            raise
        print(f"fungpt {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fungpt {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
