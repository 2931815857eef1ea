"""The ``fungpt`` command: train, sample, eval, bench, demo, export.

    fungpt train                          # the baby GPT on the shipped Shakespeare, then a sample
    fungpt train --preset small --config run.toml --max-iters 500 --grad jax --dtype bfloat16
    fungpt train --resume runs/baby --max-iters 3000
    fungpt train --mesh data=4,model=2    # 8 devices: FSDP along data x Megatron tensor parallel along model
    fungpt train --preset finetune --init-from path/to/gpt2   # fine-tune GPT-2 (a Hugging Face folder)
    fungpt sample runs/baby --prompt "ROMEO:" --max-new-tokens 300 --temperature 0.8 --top-k 200
    fungpt sample runs/baby --prompt-file prompt.txt --stop "\n\n"   # cut (and stop) at a blank line
    fungpt export runs/baby --hf out/baby  # a GPT-2 folder for transformers (weights + tokenizer)
    fungpt eval runs/baby [--data FILE] [--stride 16]   # loss, perplexity, bits/char (sliding windows)
    fungpt bench                          # ms/iter of the train step, fungpt.grad vs jax.grad
    fungpt demo                           # fungpt.grad vs jax.grad on a small GPT, in seconds

Every TrainConfig field is a flag (``--n-layer 6``, ``--no-bias``; nanoGPT's ``--max_iters=500`` works
too); a TOML/JSON ``--config`` file sets the same fields; precedence: preset < config file < flags.
Flags are never abbreviated; a mistyped one is refused with the closest valid ones. Errors print one
line and exit with 2 (``FUNGPT_DEBUG=1`` shows the traceback). ``fungpt --version`` prints the fungpt,
jax and jaxlib versions and the devices JAX sees.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import signal
import sys
import time

__all__ = ["build_parser", "main", "version_text"]

# TrainConfig fields that `fungpt bench` has no use for: it times the train step of both gradient
# functions, and never loops, evaluates, checkpoints, samples or writes a run folder.
_NOT_FOR_BENCH = frozenset({"grad", "max_iters", "eval_interval", "eval_iters", "ckpt_interval", "log_interval",
                            "out_dir", "sample_tokens"})


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action):  # where None or the default needs words, the help text has them
        if action.default is None or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse without prefix matching (``--lr`` is not ``--lr-decay-iters``), and with nanoGPT's spellings:
    ``--max_iters=5`` is ``--max-iters=5`` (any underscore spelling of a dashed flag)."""

    def __init__(self, *args, inapplicable=(), **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)
        self.inapplicable = frozenset(inapplicable)  # flags of a sibling command refused with a reason

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        end = args.index("--") if "--" in args else len(args)
        return super().parse_known_args([*map(self._dashed, args[:end]), *args[end:]], namespace)

    def unrecognized(self, extra: list[str]) -> str:
        """The error for flags this parser does not take, with the closest ones it does take."""
        from fungpt._names import did_you_mean

        flags = [a.partition("=")[0] for a in extra if a.startswith("--")]
        if moot := [f for f in flags if f in self.inapplicable]:
            verb = "does" if len(moot) == 1 else "do"
            what = self.description[:1].lower() + self.description[1:]
            return f"{', '.join(moot)} {verb} not apply to `{self.prog}`, which {what}"
        valid = [o for o in self._option_string_actions if o.startswith("--")]
        return f"unrecognized arguments: {' '.join(extra)}" + did_you_mean(flags, valid)

    def _dashed(self, arg: str) -> str:
        name, eq, value = arg.partition("=")
        alias = name.replace("_", "-")
        if name.startswith("--") and name not in self._option_string_actions and alias in self._option_string_actions:
            return alias + eq + value
        return arg


class _VersionAction(argparse.Action):
    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def version_text() -> str:
    """fungpt, jax and jaxlib versions, then JAX's default backend and its devices (what ``--version`` prints)."""
    import importlib.metadata

    import jax

    import fungpt

    def dist(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    devices = jax.devices()
    return (f"fungpt {fungpt.__version__} ({pathlib.Path(fungpt.__file__).parent})\n"
            f"jax {jax.__version__}, jaxlib {dist('jaxlib')}\n"
            f"backend {jax.default_backend()}: {len(devices)} device(s): {', '.join(map(str, devices))}")


def _train_flags(p: argparse.ArgumentParser, skip=frozenset()) -> None:
    from fungpt.gpt.config import flag_fields

    g = p.add_argument_group("TrainConfig and model fields (override the preset and the --config file)")
    for name, kind, default, choices in flag_fields():
        if name in skip:
            continue
        flag = "--" + name.replace("_", "-")
        # SUPPRESS: a flag not given leaves the preset's / config file's value in place.
        what = "the model's compute_dtype (baby preset: 'float32')" if name == "dtype" else f"baby preset: {default!r}"
        if kind is bool:
            g.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                           help=what)
        else:
            g.add_argument(flag, dest=name, type=kind, choices=choices or None, default=argparse.SUPPRESS,
                           metavar=None if choices else kind.__name__.upper(), help=what)


def build_parser() -> argparse.ArgumentParser:
    """The `fungpt` argument parser; `.commands` maps each subcommand to its parser."""
    from fungpt.gpt.config import PRESETS

    top = _Parser(prog="fungpt", description=__doc__)
    top.add_argument("--version", action=_VersionAction,
                     help="print the fungpt, jax and jaxlib versions and JAX's backend and devices, then exit")
    sub = top.add_subparsers(dest="command", metavar="{train,sample,eval,bench,demo,export}", parser_class=_Parser)
    presets = sorted(PRESETS)
    _add_train(sub, presets)
    _add_sample(sub)
    _add_eval(sub)
    _add_bench(sub, presets)
    _add_export(sub)
    _add_demo(sub)
    top.commands = sub.choices  # main() reports a subcommand's unknown flags with that subcommand's usage
    return top


def _add_train(sub, presets) -> None:
    t = sub.add_parser("train", help="train a GPT (default: the baby preset on the shipped corpus)",
                       description="Train a GPT: the preset, then the --config file, then flags.")
    t.add_argument("--preset", choices=presets, help="the starting config (default: baby; not with --resume)")
    t.add_argument("--config", help="a TOML or JSON file of TrainConfig fields")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its latest checkpoint, with its "
                   "saved config (then the --config file's fields, then flags, e.g. --max-iters 3000)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (evals still print)")
    g = t.add_argument_group("devices and processes (not saved with the run: a run resumes on any mesh)")
    g.add_argument("--mesh", metavar="data=D,model=M", help="the device mesh: batch and FSDP shards along data, "
                   "Megatron splits along model (default: every device on data)")
    g.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address for a multi-process run "
                   "(with --num-processes and --process-id; calls jax.distributed.initialize)")
    g.add_argument("--num-processes", type=int, metavar="N", help="processes in the run (one per host or GPU)")
    g.add_argument("--process-id", type=int, metavar="I", help="this process's index in [0, N); 0 writes the run")
    g.add_argument("--distributed", action="store_true", help="join a multi-process run found by JAX's "
                   "auto-detection (Cloud TPU pod slices, SLURM, Open MPI): no process flags needed")
    _train_flags(t)


def _add_sample(sub) -> None:
    s = sub.add_parser("sample", help="generate text from a trained run", description="Generate text from a run.")
    s.add_argument("run_dir", help="a run folder written by `fungpt train`")
    s.add_argument("--prompt", default="\n", help="the text to continue (default: a newline)")
    s.add_argument("--prompt-file", help="read the prompt from this UTF-8 file (instead of --prompt)")
    s.add_argument("--max-new-tokens", type=int, default=500, help="tokens generated per sample")
    s.add_argument("--temperature", type=float, default=0.8, help="divides the logits; 0 picks the likeliest token")
    s.add_argument("--top-k", type=int, default=200, help="keep the k most likely tokens (0: no top-k filter)")
    s.add_argument("--top-p", type=float, default=None, help="then among the smallest set with probability >= p")
    s.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="end the sample before this text (repeatable; one token long: generation stops there)")
    s.add_argument("--stop-id", action="append", default=[], type=int, metavar="ID",
                   help="end the sample before this token id, and stop generating there (repeatable)")
    s.add_argument("--num-samples", type=int, default=1, help="independent samples, separated by a line")
    s.add_argument("--seed", type=int, default=0, help="sample i uses fold_in(key(seed), i)")


def _add_eval(sub) -> None:
    e = sub.add_parser("eval", help="loss and perplexity of a trained run on a text",
                       description="Mean cross-entropy (nats/token) and perplexity of a run on a text.")
    e.add_argument("run_dir", help="a run folder written by `fungpt train`")
    e.add_argument("--data", help="a UTF-8 text file or folder (default: the run's validation split)")
    e.add_argument("--batch-size", type=int, default=32, help="windows of block_size tokens per forward pass")
    e.add_argument("--stride", type=int, default=None, help="tokens between window starts (default: block_size, "
                   "disjoint windows); smaller gives each token more history, at block_size/stride times the cost")
    e.add_argument("--unknown", choices=("error", "skip", "replace"), default="error",
                   help="characters of --data outside the run's vocabulary: refuse (default), drop, or make "
                        "them spaces")


def _add_bench(sub, presets) -> None:
    b = sub.add_parser("bench", help="ms/iter of the train step: fungpt.grad vs jax.grad",
                       description="Times one jitted train step with fungpt.grad and with jax.grad, "
                                   "interleaved: no training loop, evals, checkpoints or run folder.",
                       inapplicable=["--" + n.replace("_", "-") for n in _NOT_FOR_BENCH])
    b.add_argument("--preset", default="baby", choices=presets, help="the starting config")
    b.add_argument("--config", help="a TOML or JSON file of TrainConfig fields")
    b.add_argument("--steps", type=int, default=50, help="timed steps per gradient function")
    _train_flags(b, skip=_NOT_FOR_BENCH)


def _add_export(sub) -> None:
    x = sub.add_parser("export", help="write a run as a Hugging Face GPT-2 folder (weights + tokenizer)",
                       description="Write a run's weights and tokenizer in the Hugging Face GPT-2 layout.")
    x.add_argument("run_dir", help="a run folder written by `fungpt train`")
    x.add_argument("--hf", required=True, metavar="OUT_DIR", help="the folder to write (created if missing)")


def _add_demo(sub) -> None:
    d = sub.add_parser("demo", help="fungpt.grad vs jax.grad on a small GPT loss",
                       description="The gradient of a small GPT's loss by our autodiff and by JAX's: agreement "
                                   "and time.")
    d.add_argument("--steps", type=int, default=20, help="timed gradient calls per engine")
    d.add_argument("--n-layer", type=int, default=2, help="transformer blocks")
    d.add_argument("--n-embd", type=int, default=64, help="embedding width (2 heads)")
    d.add_argument("--block-size", type=int, default=32, help="tokens per sequence (batch 8)")


def _cmd_train(args) -> int:
    from fungpt.gpt import checkpoint, sharding, train

    sharding.parse_mesh(args.mesh)  # a bad --mesh is refused before anything starts
    dist = (args.coordinator, args.num_processes, args.process_id)
    if args.distributed or any(v is not None for v in dist):  # before anything touches the devices
        sharding.initialize_distributed(*dist)
    skip = ("command", "preset", "config", "resume", "no_progress", "mesh", "coordinator", "num_processes",
            "process_id", "distributed")
    flags = {k: v for k, v in vars(args).items() if k not in skip}
    if flags.get("data"):  # saved absolute, so that eval and --resume find it from any directory
        flags["data"] = str(pathlib.Path(flags["data"]).resolve())
    if args.resume:
        if args.preset is not None:
            raise ValueError("--preset cannot be combined with --resume: the run continues with its saved config")
        if "out_dir" in flags and pathlib.Path(flags["out_dir"]).resolve() != pathlib.Path(args.resume).resolve():
            raise ValueError(f"--out-dir cannot be combined with --resume: the run continues in {args.resume}")
        if flags.get("init_from"):
            raise ValueError("--init-from cannot be combined with --resume: the run continues from its checkpoint")
        cfg = train.resume_config(args.resume, args.config, **flags)  # saved < --config file < flags
    else:
        cfg = train.config_from(args.preset or "baby", args.config, **flags)
    res = train.train(cfg, resume=args.resume, mesh=args.mesh, progress=not args.no_progress)
    if res.interrupted:
        sig = signal.Signals(res.signal or signal.SIGINT)
        print(f"interrupted at step {res.step}: checkpoint saved in {res.run_dir} ({sig.name}); "
              f"continue with: fungpt train --resume {res.run_dir}", file=sys.stderr)
        return 128 + sig  # the shell's convention: 130 after Ctrl-C (SIGINT), 143 after SIGTERM
    ev = f", val loss {res.evals[-1][2]:.4f}" if res.evals else ""
    if sharding.is_writer():  # the other processes of a multi-process run saved nothing
        print(f"done: {res.step} steps{ev}; run saved in {res.run_dir} "
              f"(metrics.jsonl, loss.png, {checkpoint.LATEST} -> checkpoint)")
    return 0


def _cmd_sample(args) -> int:
    import jax

    from fungpt.gpt import generate_text, train

    for name in ("max_new_tokens", "num_samples"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    prompt = args.prompt
    if args.prompt_file and prompt != "\n":
        raise ValueError("give --prompt or --prompt-file, not both")
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
    from fungpt.gpt import train

    if args.batch_size <= 0:
        raise ValueError(f"--batch-size must be > 0, got {args.batch_size}")
    run = train.load_run(args.run_dir)
    text = train.load_eval_text(args.data, run.tokenizer, args.unknown) if args.data else None
    loss, ppl, n, bpc = train.evaluate_text(run, text, args.batch_size, args.stride)
    where = args.data or "the validation split"
    stride = args.stride or run.model_config.block_size
    print(f"{where}: loss {loss:.4f} nats/token, perplexity {ppl:.3f}, {bpc:.4f} bits/char over {n:,} tokens "
          f"(step {run.step}; windows of {run.model_config.block_size} tokens, stride {stride})")
    return 0


def _cmd_bench(args) -> int:
    from fungpt.gpt import train

    if args.steps <= 0:
        raise ValueError(f"--steps must be > 0, got {args.steps}")
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "preset", "config", "steps")}
    cfg = train.config_from(args.preset, args.config, **flags)
    res = train.bench_step(cfg, steps=args.steps, rounds=min(5, args.steps))
    m = cfg.model
    print(f"preset {args.preset} ({m.compute_dtype or m.param_dtype}, batch {cfg.batch_size}x{m.block_size}), "
          f"median of {len(res['jax']['times'])} steps, interleaved:")
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
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # argparse would name them in the top-level usage, without a suggestion
        sub = parser.commands.get(args.command, parser)
        sub.error(sub.unrecognized(extra))
    if args.command is None:
        parser.print_help()
        return 2
    from fungpt.gpt.checkpoint import CheckpointError
    from fungpt.gpt.train import NonFiniteError, RunLockedError

    cmd = {"train": _cmd_train, "sample": _cmd_sample, "eval": _cmd_eval, "bench": _cmd_bench, "demo": _cmd_demo,
           "export": _cmd_export}
    from fungpt.runtime import tune_malloc

    tune_malloc()  # XLA:CPU's per-call temporaries stop page-faulting (the train step: 46 -> 32 ms)
    try:
        return cmd[args.command](args)
    except (ValueError, TypeError, OSError, NotImplementedError, CheckpointError, NonFiniteError,
            RunLockedError) as e:
        if os.environ.get("FUNGPT_DEBUG"):
            raise
        print(f"fungpt {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # a second Ctrl-C; train's message names the checkpoint that remains
        print(f"fungpt {args.command}: interrupted{': ' + str(e) if str(e) else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
