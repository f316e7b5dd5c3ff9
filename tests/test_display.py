"""Showing the library's own source in notebooks."""

from __future__ import annotations

from IPython.display import Code, Markdown

from pruning_lib import selection
from pruning_lib.criteria import norms
from pruning_lib.lab import display


def test_source_text_is_the_real_source():
    text = display.source_text(norms.l1_norm)
    assert text.startswith("def l1_norm(weight: Tensor) -> Tensor:")
    assert "return as_filter_matrix(weight).abs().sum(dim=1)" in text
    assert "def plan_uniform(" in display.source_text(selection.plan_uniform)


def test_source_text_of_a_class():
    from pruning_lib import metrics

    assert display.source_text(metrics.Latency).lstrip().startswith(("@dataclass", "class Latency"))
    assert "class Latency" in display.source_text(metrics.Latency)


def test_show_source_returns_highlighted_code():
    code = display.show_source(norms.fpgm)
    assert isinstance(code, Code)
    assert "def fpgm(weight: Tensor) -> Tensor:" in code.data
    assert code.data == display.source_text(norms.fpgm)


def test_notation_table_lists_every_symbol():
    table = display.notation_table()
    assert isinstance(table, Markdown)
    lines = table.data.splitlines()
    assert lines[0] == "| symbol | in code | shape | meaning |"
    assert len(lines) == 2 + len(display.NOTATION)
    assert "`prune_ratio`" in table.data
