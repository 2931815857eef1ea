"""Sample inputs for the Final Phase (nn layers, the GPT): see tests/roadmap_samples/__init__.py.

The GPT functions run on the tiniest config (1 layer, 2 heads, 8 dims, block 8, vocab 11): the check is
that jit, vmap and fungpt.grad compose with them, not their speed.
"""
import jax
import jax.numpy as jnp

from fungpt import gpt, nn
from tests.roadmap_samples import Sample

N, G = "fungpt.nn.", "fungpt.gpt."
CFG = gpt.GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
_DROP_KEY = jax.random.key(3)  # closed over (static): dropout's own randomness, not what is checked


def _jitter(key, tree, scale=0.3):
    # Random offsets on every leaf, so that unit layer-norm gains and zero biases are not special points.
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return treedef.unflatten([a + scale * jax.random.normal(k, a.shape, a.dtype) for a, k in zip(leaves, keys,
                                                                                                    strict=True)])


def _x(key, shape=(5, 8)):
    return jax.random.normal(jax.random.fold_in(key, 99), shape, jnp.float32)  # the parameters' dtype


def _params(init):
    def make(key):
        return _jitter(key, init(key))
    return make


def _tokens(key, shape=(2, 6)):
    return jax.random.randint(jax.random.fold_in(key, 7), shape, 0, CFG.vocab_size)


def _gpt(key):
    return _jitter(key, gpt.init_params(CFG, key), 0.05)


def _qkv(key):
    q, k, v = (jax.random.normal(k, (5, 2, 4), jnp.float32) for k in jax.random.split(key, 3))
    return q, k, v, jnp.tril(jnp.ones((5, 5), bool))


_ln = lambda key: (_params(lambda k: nn.layer_norm_init(8))(key), _x(key))
SAMPLES = {
    # build a neural net from scratch
    N + "linear": Sample(lambda key: (_params(lambda k: nn.linear_init(k, 8, 3))(key), _x(key))),
    N + "gelu": Sample(lambda key: (3 * _x(key),), rtol=1e-5, atol=1e-6),
    N + "layer_norm": Sample(_ln, rtol=1e-5, atol=1e-6),
    N + "rms_norm": Sample(lambda key: (_params(lambda k: nn.rms_norm_init(8))(key), _x(key)), rtol=1e-5),
    N + "dropout": Sample(lambda key: (_DROP_KEY, _x(key), 0.5), static=(0, 2), argnum=1),
    N + "cross_entropy": Sample(lambda key: (_x(key, (4, 7)), jax.random.randint(key, (4,), 0, 7))),
    # transformers and attention
    N + "attention": Sample(_qkv, rtol=1e-5, atol=1e-6),
    N + "self_attention": Sample(
        lambda key: (_params(lambda k: nn.causal_self_attention_init(k, 8, 2))(key), _x(key), 2, nn.causal_attend()),
        static=(2, 3), rtol=1e-5, atol=1e-6),
    N + "causal_self_attention": Sample(
        lambda key: (_params(lambda k: nn.causal_self_attention_init(k, 8, 2))(key), _x(key), 2), static=(2,),
        rtol=1e-5, atol=1e-6),
    N + "mlp": Sample(lambda key: (_params(lambda k: nn.mlp_init(k, 8))(key), _x(key)), rtol=1e-5, atol=1e-6),
    G + "lm_head": Sample(lambda key: ({"wte": _gpt(key)["wte"]}, _x(key, (2, 5, 8)), CFG), static=(2,), rtol=1e-5,
                          atol=1e-6),
    # a GPT from raw math and code
    G + "forward": Sample(lambda key: (_gpt(key), _tokens(key), CFG), static=(2,), rtol=1e-5, atol=1e-6),
    G + "loss": Sample(lambda key: (_gpt(key), _tokens(key), _tokens(jax.random.fold_in(key, 1)), CFG),
                       static=(3,), rtol=1e-5, atol=1e-6),
}
