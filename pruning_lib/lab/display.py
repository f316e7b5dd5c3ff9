"""Showing the library's real code and small tables in notebooks (no copy-pasted code).

Introduced in: notebooks/00_tour.ipynb (§The pipeline).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

NOTATION = (
    ("W", "conv.weight", "(C_out, C_in, kH, kW)", "weights of one conv layer; W[i] is filter i"),
    ("A", "activations", "(N, C, H, W)", "a layer's output feature maps for N images"),
    ("scores", "criterion(W)", "(C_out,)", "importance of each filter; higher = keep"),
    ("prune_ratio", "ratio", "float in [0, 1)", "fraction of filters REMOVED"),
    ("plan", "selection.plan_*", "JSON dict", "{'removed': {layer: [indices]}, 'coupled': [[layers]]}"),
    ("MACs", "metrics.count_macs", "int", "multiply-accumulates of one forward pass"),
)


def source_text(obj: Callable | type) -> str:
    """The source code of a library function or class, as text."""
    return inspect.getsource(obj)


def show_source(obj: Callable | type):  # noqa: ANN201  (IPython is optional)
    """Render the real source of ``obj`` with syntax highlighting in a notebook.

    Returns:
        An ``IPython.display.Code`` object (displayed when it is the cell's last expression).
    """
    from IPython.display import Code

    return Code(source_text(obj), language="python")


def notation_table():  # noqa: ANN201
    """The notation used across the lessons, as a Markdown table."""
    from IPython.display import Markdown

    lines = ["| symbol | in code | shape | meaning |", "|---|---|---|---|"]
    lines += [f"| `{s}` | `{c}` | {shape} | {m} |" for s, c, shape, m in NOTATION]
    return Markdown("\n".join(lines))
