"""The `fungpt` command, called in-process through `fungpt.cli.main` (same code as the console script).

Oracles: argparse's own help/exit codes, the library functions the commands wrap (evaluate_text,
generate), and the text the commands print. The tiny config equals tests/gpt/test_train.py's, so the
jitted train step is shared within a test session.
"""
import math
import re

import jax
import numpy as np
import pytest

from fungpt import cli
from fungpt.gpt import data
from fungpt.gpt import train as T

TINY_FLAGS = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "8", "--batch-size", "4",
              "--grad-accum", "1", "--dropout", "0.0", "--max-iters", "6", "--warmup-iters", "2",
              "--lr-decay-iters", "6", "--eval-interval", "3", "--eval-iters", "2", "--ckpt-interval", "100",
              "--log-interval", "2"]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny.txt"
    path.write_text(data.load_text()[:20_000], encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def trained(text_file, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    rc = cli.main(["train", "--data", text_file, *TINY_FLAGS, "--out-dir", str(run_dir), "--no-progress",
                   "--sample-tokens", "24"])
    assert rc == 0
    return run_dir


@pytest.mark.parametrize("argv", [[], ["train"], ["sample"], ["eval"], ["bench"], ["demo"]], ids=str)
def test_help_everywhere(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([*argv, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: fungpt")
    if argv == ["train"]:  # every TrainConfig field is a flag
        for name in ("--n-layer", "--learning-rate", "--grad-accum", "--dtype", "--grad", "--bias", "--no-bias"):
            assert name in out


def test_console_script_is_declared():
    import importlib.metadata

    [ep] = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "fungpt"]
    assert ep.value == "fungpt.cli:main" and ep.load() is cli.main


@pytest.mark.parametrize(
    ("argv", "match"),
    [(["train", "--n-layer", "0"], "n_layer must be a positive int"),
     (["train", "--data", "/nonexistent/x.txt"], "does not exist"),
     (["train", "--config", "/nonexistent.toml"], "does not exist"),
     (["sample", "/nonexistent-run"], "no such run directory"),
     (["eval", "/nonexistent-run"], "no such run directory"),
     (["bench", "--steps", "0"], "--steps must be > 0"),
     (["train", "--learning-rate=-1e-3"], "learning_rate must be a finite number > 0"),
     (["train", "--resume", "/nonexistent-run", "--preset", "small"], "--preset cannot be combined with --resume"),
     (["eval", "/nonexistent-run", "--batch-size", "0"], "--batch-size must be > 0")],
    ids=["bad-value", "missing-data", "missing-config", "sample-missing-run", "eval-missing-run", "bench-steps",
         "negative-lr", "resume-preset", "eval-batch-size"],
)
def test_errors_are_one_clear_line(argv, match, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"fungpt {argv[0]}: error:") and re.search(match, err), err
    assert "Traceback" not in err


def test_train_with_no_arguments_is_the_default_baby_run(monkeypatch, tmp_path):
    seen = {}

    def fake_train(cfg, resume=None, progress=True):
        seen["cfg"], seen["resume"] = cfg, resume
        return T.TrainResult(tmp_path, cfg.max_iters, [], [(2000, 1.9, 1.95)], False, "sample")

    monkeypatch.setattr(T, "train", fake_train)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train"]) == 0
    assert seen["cfg"] == T.TrainConfig() and seen["resume"] is None
    # A taken default folder moves to runs/baby-1, ...: the same rule for the API and the CLI, so it lives in
    # train (tests/gpt/test_train.py::test_a_taken_default_folder_moves_to_the_first_free_one).
    # A relative --data is saved absolute, so that `fungpt eval RUN` and --resume work from any directory.
    (tmp_path / "mine.txt").write_text("some text")
    assert cli.main(["train", "--data", "mine.txt", "--out-dir", "r"]) == 0
    assert seen["cfg"].data == str(tmp_path.resolve() / "mine.txt")


def test_ctrl_c_message_and_exit_code(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(T, "train", lambda cfg, resume=None, progress=True: T.TrainResult(
        tmp_path, 3, [4.0, 3.9, 3.8], [], True, None))
    assert cli.main(["train", "--out-dir", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert f"interrupted at step 3: checkpoint saved in {tmp_path}" in err
    assert f"fungpt train --resume {tmp_path}" in err


def test_train_prints_a_sample_and_saves_the_run(trained, capsys):
    assert (trained / "latest").is_file() and (trained / "loss.png").is_file() and (trained / "metrics.jsonl").is_file()


def test_sample_is_seeded_and_starts_with_the_prompt(trained, capsys):
    argv = ["sample", str(trained), "--prompt", "ROMEO:", "--max-new-tokens", "12", "--seed", "3", "--top-p", "0.9"]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == first
    assert first.startswith("ROMEO:") and len(first.rstrip("\n")) >= len("ROMEO:") + 1
    run = T.load_run(trained)
    want = T.sample_text(run.params, run.model_config, run.tokenizer, "ROMEO:", 12, jax.random.fold_in(
        jax.random.key(3), 0), 0.8, 200, 0.9)
    assert first == want + "\n"


def test_sample_refuses_unknown_characters(trained, capsys):
    assert cli.main(["sample", str(trained), "--prompt", "€"]) == 2
    assert "not in the vocabulary" in capsys.readouterr().err


def test_eval_reports_the_library_figures(trained, tmp_path, capsys):
    text = tmp_path / "eval.txt"
    text.write_text(data.load_text()[50_000:50_500], encoding="utf-8")  # as in test_train: shared compile
    assert cli.main(["eval", str(trained), "--data", str(text), "--batch-size", "8"]) == 0
    out = capsys.readouterr().out
    loss, ppl = (float(x) for x in re.search(r"loss ([\d.]+) nats/token, perplexity ([\d.]+)", out).groups())
    want, _, n = T.evaluate_text(T.load_run(trained), text.read_text(encoding="utf-8"), batch_size=8)
    np.testing.assert_allclose(loss, want, atol=1e-4)
    np.testing.assert_allclose(ppl, math.exp(want), rtol=1e-3)
    assert f"{n:,} tokens" in out


def test_resume_from_the_command_line(trained, capsys):
    assert cli.main(["train", "--resume", str(trained), "--max-iters", "8", "--no-progress",
                     "--sample-tokens", "0"]) == 0
    assert "done: 8 steps" in capsys.readouterr().out
    assert cli.main(["train", "--resume", str(trained), "--n-embd", "32"]) == 2
    assert "incompatible config" in capsys.readouterr().err


def test_resume_takes_the_config_file_and_refuses_what_it_would_ignore(trained, tmp_path, capsys):
    # --config used to be ignored silently with --resume (and so were --preset and --out-dir).
    import hashlib
    import json
    import shutil

    from fungpt.gpt import checkpoint

    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    step = checkpoint.read_meta(run_dir)["step"]
    digest = lambda: {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in run_dir.rglob("*") if p.is_file()}
    before = digest()
    assert cli.main(["train", "--resume", str(run_dir), "--out-dir", str(tmp_path / "other"), "--max-iters",
                     str(step + 2)]) == 2
    assert f"--out-dir cannot be combined with --resume: the run continues in {run_dir}" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text(json.dumps({"n_layers": 2}))
    assert cli.main(["train", "--resume", str(run_dir), "--config", str(tmp_path / "bad.json")]) == 2
    assert "unknown config fields ['n_layers']" in capsys.readouterr().err
    assert digest() == before and not (tmp_path / "other").exists()

    (tmp_path / "more.json").write_text(json.dumps({"max_iters": step + 2, "log_interval": 1}))
    assert cli.main(["train", "--resume", str(run_dir), "--config", str(tmp_path / "more.json"), "--no-progress",
                     "--sample-tokens", "0"]) == 0  # saved config < --config file < flags
    assert f"done: {step + 2} steps" in capsys.readouterr().out
    meta = checkpoint.read_meta(run_dir)
    assert meta["step"] == step + 2 and meta["config"]["max_iters"] == step + 2
    assert meta["config"]["log_interval"] == 1 and meta["config"]["sample_tokens"] == 0

    p = run_dir / (run_dir / "latest").read_text().strip() / "state.json"
    meta["config"]["n_layers"] = 2  # a config from another version of fungpt: named, not a TypeError
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}  # state.json's own checksum, recomputed
    meta["meta_sha256"] = hashlib.sha256(json.dumps(body, indent=1, sort_keys=True).encode()).hexdigest()
    p.write_text(json.dumps(meta))
    assert cli.main(["train", "--resume", str(run_dir), "--max-iters", str(step + 4)]) == 2
    assert "unknown config fields ['n_layers']" in capsys.readouterr().err


def test_bench_compares_both_gradients(text_file, capsys):
    assert cli.main(["bench", "--data", text_file, *TINY_FLAGS, "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"grad=fungpt .* ms/iter", out) and re.search(r"grad=jax .* ms/iter", out)
    assert re.search(r"fungpt.grad / jax.grad = \d+\.\d+", out)


def test_demo_gradients_agree(capsys):
    assert cli.main(["demo", "--steps", "1", "--n-layer", "1", "--n-embd", "16", "--block-size", "8"]) == 0
    out = capsys.readouterr().out
    rel = float(re.search(r"largest relative difference over \d+ leaves: ([\d.e+-]+)", out).group(1))
    assert rel < 1e-4, out
