"""benchmarks/reproduction.py: verdict mapping and markdown formatter, on hand-made rows (no training)."""

from __future__ import annotations

import importlib.util
import math
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduction.py"


@pytest.fixture(scope="module")
def repro_script():
    spec = importlib.util.spec_from_file_location("reproduction", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                   # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


META = {"date": "2025-01-01T12:00", "mode": "default", "device": "cpu", "threads": 2, "torch": "2.x",
        "data": "Fashion-MNIST for the lessons: Debian package", "audio_data": "FSDD official split",
        "seeds": [0, 1, 2], "n": "500 test images", "wall_seconds": 1800.0}


def _rows(m):
    return [
        m.Row(paper="Operator norm (Singh & Plumbley)", claim="beats ℓ1", published="better",
              source="arXiv:2304.02319", measured="op − ℓ1 = +1.2 pts",
              verdict=m.comparison_verdict("better"),
              n="3 seed(s) × 500 test images", value=1.2, low=0.3, high=2.1, unit="pts"),
        m.Row(paper="PLS | layers", claim="FLOPs of the cuts", published="30.02%", source="JSTSP",
              measured="30.02%", verdict=m.exact_verdict(3, 3), n="3 configurations (exact)"),
        m.Row(paper="Nyström", claim="speed", published="2.97×", source="arXiv:2210.17416",
              measured="1.1×", verdict=m.comparison_verdict("worse", bound=True), n="5 repeats",
              value=1.1, low=0.9, high=1.3, unit="×"),
        m.Row(paper="SNPFI", claim="60%", published="≈ 60%", source="arXiv:2307.00758",
              measured="not measured",
              verdict=m.not_testable("ImageNet"), n="–"),
    ]


def test_comparison_verdicts(repro_script):
    m = repro_script
    assert m.comparison_verdict("better") == "reproduced"
    assert m.comparison_verdict("worse") == "not reproduced"
    assert m.comparison_verdict("tie") == "not reproduced (tie)"
    assert m.comparison_verdict("tie", bound=True).startswith("reproduced")   # a tie does not refute a bound
    assert m.comparison_verdict("better", bound=True) == "reproduced"
    assert m.comparison_verdict("worse", bound=True) == "not reproduced"
    with pytest.raises(ValueError, match="unknown verdict"):
        m.comparison_verdict("maybe")


def test_exact_and_untestable_verdicts(repro_script):
    m = repro_script
    assert m.exact_verdict(6, 6) == "reproduced"
    assert m.exact_verdict(5, 6) == "not reproduced (5 of 6 match)"
    with pytest.raises(ValueError):
        m.exact_verdict(0, 0)
    assert m.not_testable("CIFAR-10") == "not testable here: CIFAR-10"


def test_format_interval(repro_script):
    m = repro_script
    assert m.format_interval({"low": -0.42, "high": 1.26, "unit": "pts"}) == "[-0.4, +1.3] pts"
    assert m.format_interval({"low": 2.5, "high": 3.25, "unit": "×"}) == "[2.50, 3.25] ×"
    assert m.format_interval({"low": None, "high": None, "unit": ""}) == "–"
    assert m.format_interval({"low": math.nan, "high": math.nan, "unit": "×"}) == "–"


def test_markdown_has_header_and_one_row_per_claim(repro_script):
    m = repro_script
    rows = _rows(m)
    text = m.reproduction_markdown(rows, META)
    for fact in ("2025-01-01T12:00", "**default**", "cpu", "2 torch threads", "torch 2.x", "30.0 min",
                 "Debian package", "FSDD official split", "[0, 1, 2]", "500 test images"):
        assert fact in text, fact
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(rows)                                   # header + one line per claim
    assert all(line.count(" | ") == table[0].count(" | ") for line in table)   # "|" in a cell is escaped
    assert "PLS \\| layers" in text
    assert "[+0.3, +2.1] pts" in table[1] and "**reproduced**" in table[1]
    assert "| – |" in table[2] and "3 configurations (exact)" in table[2]
    assert "**not testable here: ImageNet**" in table[4]
    assert "better [S1]" in table[1] and "- [S1] arXiv:2304.02319" in text      # each source listed once
    assert text.count("arXiv:2210.17416") == 1 and "[S4]" in table[4]
    assert "Quick run" not in text


def test_markdown_accepts_dicts_and_flags_quick_runs(repro_script):
    m = repro_script
    rows = [asdict(r) for r in _rows(m)]
    text = m.reproduction_markdown(rows, {**META, "mode": "quick", "seeds": [0]})
    assert "**quick**" in text and "Quick run: 1 seed(s)" in text
    assert text == m.reproduction_markdown(_rows(m), {**META, "mode": "quick", "seeds": [0]})


def test_quick_mode_never_overwrites_the_committed_table(repro_script):
    m = repro_script
    assert m.QUICK_OUT != m.DEFAULT_OUT and m.QUICK_OUT.parent.name == "build"
    assert m.DEFAULT_OUT.relative_to(m.REPO).as_posix() == "docs/reproduction.md"
    assert len(m.DEFAULT.seeds) >= 3 and len(m.QUICK.seeds) >= 1
    args = m.parse_args(["--quick"])
    assert args.quick and args.out is None and args.json is None
