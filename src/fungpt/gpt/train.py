"""Training, in one namespace: ``from fungpt.gpt import train as T`` then ``T.train(T.config_from("baby"))``.

The code lives by responsibility: `fungpt.gpt.config` (TrainConfig, presets, config files), `fungpt.gpt.step`
(loss → grad → update, eval, mesh, bench), `fungpt.gpt.loop` (`train`), `fungpt.gpt.run` (the run folder:
lock, resume checks, metrics, plot, `load_run`, sampling, evaluation) and `fungpt.gpt.data`.
"""
from fungpt.gpt.config import PRESETS, TrainConfig, config_from, config_from_dict, read_config_file
from fungpt.gpt.data import prepare_data, tokenizer_from_dict
from fungpt.gpt.loop import NonFiniteError, TrainResult, train
from fungpt.gpt.run import (
    Run,
    RunLockedError,
    TextScore,
    curves,
    evaluate_text,
    load_eval_text,
    load_run,
    resume_config,
    sample_text,
)
from fungpt.gpt.step import (
    Functions,
    Model,
    TrainState,
    bench_step,
    compiled_functions,
    decay_mask,
    estimate_loss,
    functions,
    gpt_model,
    make_eval_fn,
    make_mesh,
    make_optimizer,
    make_train_step,
    put_ids,
    run_keys,
    step_fields,
)

__all__ = [
    "PRESETS", "Functions", "Model", "NonFiniteError", "Run", "RunLockedError", "TextScore", "TrainConfig",
    "TrainResult", "TrainState", "bench_step", "compiled_functions", "config_from", "config_from_dict", "curves",
    "decay_mask", "estimate_loss", "evaluate_text", "functions", "gpt_model", "load_eval_text", "load_run",
    "make_eval_fn", "make_mesh", "make_optimizer", "make_train_step", "prepare_data", "put_ids", "read_config_file",
    "resume_config", "run_keys", "sample_text", "step_fields", "tokenizer_from_dict", "train",
]
