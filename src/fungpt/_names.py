"""Messages for names a user mistyped: a "did you mean" taken from the list of valid names (difflib)."""
from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(unknown: Iterable[str], valid: Iterable[str]) -> str:
    """``" (did you mean: n_layers -> n_layer)"`` for each unknown name with a close valid one, else ``""``.

    Close means difflib's similarity ratio 2·matches/(len(a)+len(b)) >= 0.6; the best match is named.
    """
    valid = sorted(valid)
    pairs = [(u, m[0]) for u in unknown if (m := difflib.get_close_matches(u, valid, n=1))]
    return " (did you mean: " + ", ".join(f"{u} -> {m}" for u, m in pairs) + ")" if pairs else ""
