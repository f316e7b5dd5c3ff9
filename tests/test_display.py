"""Showing the library's own source in notebooks."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.display import Code, Markdown

from pruning_lib import selection
from pruning_lib.criteria import norms
from pruning_lib.lab import display


def test_source_text_is_the_real_source():
    text = display.source_text(norms.l1_norm)
    assert text.startswith("def l1_norm(weight: Tensor) -> Tensor:")
    assert "as_filter_matrix(weight)" in text
    assert text in Path(norms.__file__).read_text(encoding="utf-8")      # verbatim from the module file
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


def test_glossary_renders_the_notation_page():
    page = display.glossary()
    assert isinstance(page, Markdown)
    assert page.data == display.NOTATION_PAGE.read_text(encoding="utf-8")
    assert page.data.startswith("# Notation")


def test_notation_page_tables_are_well_formed():
    sections = display.notation_sections()
    assert {"Convolutions and filters", "Scores, plans and cost", "Data"} <= set(sections)
    for title, text in sections.items():
        rows = [line for line in text.splitlines() if line.startswith("|")]
        if rows:
            assert rows[0] == "| symbol | meaning | shape or type | in code | lessons |", title
            widths = {len(r.replace("\\|", "").split("|")) for r in rows}
            assert widths == {7}, (title, widths)


def test_one_meaning_per_letter_for_the_counts():
    """n filters, c channels, N images, K classes, T samples: each defined in exactly one row."""
    rows = [line for line in display.NOTATION_PAGE.read_text(encoding="utf-8").splitlines()
            if line.startswith("| $")]
    for symbol in ("$n$", "$c$", "$N$", "$K$", "$T$", "$m$", "$W$"):
        assert sum(r.startswith(f"| {symbol} |") for r in rows) == 1, symbol


def test_glossary_picks_sections_in_order():
    part = display.glossary(["Data", "Convolutions and filters"]).data
    assert part.index("## Data") < part.index("## Convolutions and filters")
    assert "## Games" not in part and "| $K$ | number of classes |" in part


def test_glossary_rejects_an_unknown_section():
    with pytest.raises(KeyError, match="no section"):
        display.glossary(["Quantum"])


def test_notation_table_is_the_glossarys_first_sections():
    table = display.notation_table()
    assert isinstance(table, Markdown)
    assert "| $n$ | number of filters" in table.data and "## Data" not in table.data
    assert "C_out" not in table.data


def test_show_markdown_renders_a_file(tmp_path):
    page = tmp_path / "table.md"
    page.write_text("# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", encoding="utf-8")
    shown = display.show_markdown(page)
    assert isinstance(shown, Markdown)
    assert shown.data == page.read_text(encoding="utf-8")
    assert display.show_markdown(str(page)).data == shown.data          # a str path works too


def test_show_markdown_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="reproduction.py"):
        display.show_markdown(tmp_path / "reproduction.md")
