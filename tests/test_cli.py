"""The `fungpt` command, called in-process through `fungpt.cli.main` (same code as the console script).

Oracles: argparse's own help/exit codes, the library functions the commands wrap (evaluate_text,
generate), and the text the commands print. The tiny config equals tests/gpt/test_train.py's, so the
jitted train step is shared within a test session.
"""
import argparse
import dataclasses
import importlib.metadata
import json
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


def _parsers():
    top = cli.build_parser()
    return {"": top, **top.commands}


def _flag_value(action):
    # A valid value for the flag's type, so that only the spelling of the flag is under test.
    if action.choices:
        return [str(list(action.choices)[-1])]
    return {int: ["3"], float: ["0.5"]}.get(action.type, [] if action.nargs == 0 else ["x"])


def _config_actions(parser):
    from fungpt.gpt.config import flag_fields

    names = {name for name, *_ in flag_fields()}
    return [a for a in parser._actions if a.dest in names]


def test_flags_are_never_abbreviated(capsys):
    assert all(p.allow_abbrev is False for p in _parsers().values())
    # `--lr 1000` used to set lr_decay_iters (argparse's prefix matching); now it is refused, naming a flag
    for argv in (["train", "--lr", "1000"], ["train", "--lr=1e-3"], ["sample", "r", "--temp", "0.5"],
                 ["bench", "--step", "3"]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2
        assert "unrecognized arguments: " + argv[-1 if "=" in argv[-1] else -2] in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "sample", "eval", "bench", "demo"])
def test_underscore_spellings_are_aliases(command):
    # nanoGPT's configurator takes --max_iters=...; every dashed flag accepts its underscore spelling,
    # with a space or with "=", and the parse is the same as with the dashed spelling.
    parser = cli.build_parser()
    pos = [] if command in ("train", "bench", "demo") else ["run"]
    dashed = [a for a in parser.commands[command]._actions if any("-" in o[2:] for o in a.option_strings)]
    assert dashed
    for a in dashed:
        for flag in (o for o in a.option_strings if "-" in o[2:]):
            value = _flag_value(a)
            want = parser.parse_args([command, *pos, flag, *value])
            under = "--" + flag[2:].replace("-", "_")
            assert parser.parse_args([command, *pos, under, *value]) == want, under
            if value:
                assert parser.parse_args([command, *pos, f"{under}={value[0]}"]) == want, under
    # a positional value that looks like an alias is left alone after "--"
    assert parser.parse_args(["sample", "--max_new_tokens", "7", "--", "--max_new_tokens"]).run_dir == \
        "--max_new_tokens"


def test_flags_with_fixed_values_list_them():
    # Independent oracle: TrainConfig's own validation. A str field that refuses an arbitrary string names
    # its allowed values; exactly those fields are flags with choices, and the choices are those values.
    from fungpt.gpt.config import flag_fields

    refused = {}
    for name, kind, _, _ in flag_fields():
        if kind is str:
            try:
                T.config_from("baby", **{name: "no-such-value"})
            except ValueError as e:
                refused[name] = set(re.findall(r"'([^']*)'", str(e).split("got")[0])) - {"no-such-value", name}
    assert {"dtype", "grad", "tokenizer"} <= set(refused)
    for command in ("train", "bench"):
        parser = cli.build_parser().commands[command]
        listed = {a.dest: a.choices for a in _config_actions(parser) if a.choices}
        assert set(listed) == {k for k in refused if not (command == "bench" and k == "grad")}
        for name, allowed in listed.items():  # every listed value is one the config accepts and its error names
            assert set(allowed) <= refused[name], name
            for value in allowed:
                T.config_from("baby", **{name: value})
        text = parser.format_help()
        for name, allowed in listed.items():
            assert f"--{name.replace('_', '-')} {{{','.join(allowed)}}}" in text, name


@pytest.mark.parametrize("command", ["sample", "eval", "bench", "demo"])
def test_every_flag_is_described_with_its_default(command):
    parser = cli.build_parser().commands[command]
    text = " ".join(parser.format_help().split())
    for a in parser._actions:
        if isinstance(a, argparse._HelpAction):
            continue
        assert a.help, f"{command} {a.option_strings or a.dest}: no help text"
        if a.default not in (None, argparse.SUPPRESS) and "default" not in a.help:
            assert f"(default: {a.default})" in text, f"{command} {a.option_strings}: default not shown"
        if a.default is argparse.SUPPRESS and a.dest != "help":  # a TrainConfig field: the preset's value
            assert "baby preset" in a.help


def test_bench_eval_sample_refuse_flags_that_do_not_apply(capsys):
    # bench times one train step for both gradient functions: the loop's flags would be ignored
    train_only = {a.option_strings[0] for a in _config_actions(cli.build_parser().commands["train"])}
    bench = {a.option_strings[0] for a in _config_actions(cli.build_parser().commands["bench"])}
    assert train_only - bench == {"--grad", "--max-iters", "--eval-interval", "--eval-iters", "--ckpt-interval",
                                  "--log-interval", "--out-dir", "--sample-tokens"}
    for flag in sorted(train_only - bench):
        with pytest.raises(SystemExit) as e:
            cli.main(["bench", flag, *(["1"] if flag != "--out-dir" else ["x"])])
        assert e.value.code == 2
        assert f"{flag} does not apply to `fungpt bench`" in capsys.readouterr().err
    for argv in (["sample", "r", "--n-layer", "2"], ["eval", "r", "--dtype", "bfloat16"], ["sample", "r", "--data",
                 "x"], ["eval", "r", "--max-iters", "3"]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


def test_did_you_mean(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--lerning-rate", "1e-3", "--n_layers=2"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: --lerning-rate 1e-3 --n_layers=2" in err
    assert "did you mean: --lerning-rate -> --learning-rate, --n_layers -> --n-layer" in err
    (tmp_path / "c.json").write_text(json.dumps({"n_layers": 2, "max_iter": 3, "zzz": 1}))
    assert cli.main(["train", "--config", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err
    assert "unknown config fields ['max_iter', 'n_layers', 'zzz'] in " in err
    assert "(did you mean: max_iter -> max_iters, n_layers -> n_layer)" in err
    from fungpt._names import did_you_mean

    assert did_you_mean(["qqq"], ["n_layer"]) == ""


def test_every_config_field_is_a_train_flag():
    # Every TrainConfig field and every field of the nested model config (activation, layer_norm_epsilon, ...).
    from fungpt.gpt.config import GPTConfig, TrainConfig

    dests = {a.dest for a in cli.build_parser().commands["train"]._actions}
    fields = {f.name for cls in (TrainConfig, GPTConfig) for f in dataclasses.fields(cls)} - {"model"}
    assert fields <= dests, sorted(fields - dests)


def test_version_names_the_packages_and_the_devices(capsys):
    import fungpt

    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"fungpt {fungpt.__version__} ")
    assert out[1] == f"jax {jax.__version__}, jaxlib {importlib.metadata.version('jaxlib')}"
    devices = jax.devices()
    assert out[2] == f"backend {jax.default_backend()}: {len(devices)} device(s): {', '.join(map(str, devices))}"


def test_console_script_is_declared():
    eps = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "fungpt"]
    assert eps and {e.value for e in eps} == {"fungpt.cli:main"} and eps[0].load() is cli.main


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
     (["eval", "/nonexistent-run", "--batch-size", "0"], "--batch-size must be > 0"),
     (["train", "--mesh", "data=0"], "bad mesh 'data=0'"),
     (["train", "--num-processes", "2"], "pass coordinator, num_processes and process_id together"),
     (["train", "--coordinator", "nohost", "--num-processes", "2", "--process-id", "0"], "HOST:PORT"),
     (["train", "--resume", "/nonexistent-run", "--init-from", "x"], "--init-from cannot be combined with --resume")],
    ids=["bad-value", "missing-data", "missing-config", "sample-missing-run", "eval-missing-run", "bench-steps",
         "negative-lr", "resume-preset", "eval-batch-size", "bad-mesh", "partial-distributed", "bad-coordinator",
         "resume-init-from"],
)
def test_errors_are_one_clear_line(argv, match, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"fungpt {argv[0]}: error:") and re.search(match, err), err
    assert "Traceback" not in err


def test_train_with_no_arguments_is_the_default_baby_run(monkeypatch, tmp_path):
    seen = {}

    def fake_train(cfg, resume=None, progress=True, mesh=None):
        seen["cfg"], seen["resume"], seen["mesh"] = cfg, resume, mesh
        return T.TrainResult(tmp_path, cfg.max_iters, [], [(2000, 1.9, 1.95)], False, "sample")

    monkeypatch.setattr(T, "train", fake_train)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train"]) == 0
    assert seen["cfg"] == T.TrainConfig() and seen["resume"] is None and seen["mesh"] is None
    # A taken default folder moves to runs/baby-1, ...: the same rule for the API and the CLI, so it lives in
    # train (tests/gpt/test_train.py::test_a_taken_default_folder_moves_to_the_first_free_one).
    # A relative --data is saved absolute, so that `fungpt eval RUN` and --resume work from any directory.
    (tmp_path / "mine.txt").write_text("some text")
    assert cli.main(["train", "--data", "mine.txt", "--out-dir", "r"]) == 0
    assert seen["cfg"].data == str(tmp_path.resolve() / "mine.txt")
    # --mesh reaches train() as given (not saved in the config: a run resumes on any mesh)
    assert cli.main(["train", "--mesh", "data=1,model=1", "--out-dir", "r2"]) == 0
    assert seen["mesh"] == "data=1,model=1" and seen["cfg"] == T.TrainConfig(out_dir="r2")


def test_ctrl_c_message_and_exit_code(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(T, "train", lambda cfg, resume=None, progress=True, mesh=None: T.TrainResult(
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
    want, _, n, _ = T.evaluate_text(T.load_run(trained), text.read_text(encoding="utf-8"), batch_size=8)
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
    loop = {"--max-iters", "--eval-interval", "--eval-iters", "--ckpt-interval", "--log-interval"}
    model = [v for i, v in enumerate(TINY_FLAGS) if (TINY_FLAGS[i - (i % 2)] not in loop)]
    assert cli.main(["bench", "--data", text_file, *model, "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"grad=fungpt .* ms/iter", out) and re.search(r"grad=jax .* ms/iter", out)
    assert re.search(r"fungpt.grad / jax.grad = \d+\.\d+", out)


def test_demo_gradients_agree(capsys):
    assert cli.main(["demo", "--steps", "1", "--n-layer", "1", "--n-embd", "16", "--block-size", "8"]) == 0
    out = capsys.readouterr().out
    rel = float(re.search(r"largest relative difference over \d+ leaves: ([\d.e+-]+)", out).group(1))
    assert rel < 1e-4, out
