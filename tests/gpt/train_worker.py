"""Subprocess side of tests/gpt/test_train_wiring.py: `fungpt.gpt.train.train` on 8 virtual CPU devices
(XLA_FLAGS set by the test) with several meshes, printing one line ``RESULT{json}``.

    python tests/gpt/train_worker.py CONFIG_JSON OUT_DIR
"""
import json
import shutil
import sys

import jax

from fungpt.gpt import train as T


def _fractions(state):
    # the fraction of each leaf that device 0 holds, by path
    return {jax.tree_util.keystr(p): x.addressable_shards[0].data.size / x.size
            for p, x in jax.tree_util.tree_flatten_with_path(state)[0]}


def main():
    fields, out = json.loads(sys.argv[1]), sys.argv[2]
    cfg = T.config_from("baby", **fields)
    devices = jax.devices()
    assert len(devices) == 8, devices
    quiet = dict(progress=False, print_fn=None)
    n = cfg.max_iters
    one = T.train(cfg.replace(out_dir=f"{out}/one"), devices=devices[:1], **quiet)
    default = T.train(cfg.replace(out_dir=f"{out}/default"), **quiet)  # every device on "data"
    full = T.train(cfg.replace(out_dir=f"{out}/full"), mesh="data=4,model=2", **quiet)
    T.train(cfg.replace(out_dir=f"{out}/part", max_iters=n - 2), mesh=(4, 2), **quiet)
    for name in ("part1", "part22"):
        shutil.copytree(f"{out}/part", f"{out}/{name}")
    res = {"one": one.losses, "default": default.losses, "full": full.losses, "resumed": {}}
    for name, kw in (("part", dict(mesh=(4, 2))), ("part1", dict(devices=devices[:1])),
                     ("part22", dict(devices=devices[:4], mesh="data=2,model=2"))):
        r = T.train(T.resume_config(f"{out}/{name}", max_iters=n), resume=f"{out}/{name}", **kw, **quiet)
        res["resumed"][name] = r.losses
    res["fractions"] = {"full": _fractions(full.state), "default": _fractions(default.state)}
    saved = T.load_run(f"{out}/full").params  # the checkpoint holds the gathered arrays
    res["saved_equal"] = all(jax.tree.leaves(jax.tree.map(
        lambda a, b: bool((a == b).all()) and a.shape == b.shape, saved, full.state.params)))
    print("RESULT" + json.dumps(res))


if __name__ == "__main__":
    main()
