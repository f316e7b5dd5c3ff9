"""The lessons follow docs/notation.md: the symbol drifts it resolved do not come back."""

from __future__ import annotations

import re

import nbformat
import pytest

from pruning_lib import repro

NOTEBOOK_DIR = repro.REPO_ROOT / "notebooks"

# (lesson prefix, pattern in its markdown, what docs/notation.md says instead)
RETIRED = [
    ("01", r"A_c\b|u_c\b|v_c\b|r_c\b|\\mu_c\b", "the input-channel index is a (A_a, u_a, v_a, r_a, μ_a)"),
    ("01", r"\bt_i\b|t_j\^2", "the projection of filter i is τ_i (t indexes random samples)"),
    ("02", r"u_1\\in\\mathbb\{R\}\^d|\\sigma_1 v_1 u_1", "u: left singular vector (R^c), v: right (R^d)"),
    ("02", r"W_k\^|W = S_", "W is a conv weight; the landmark block is S_ΛΛ, the landmarks Λ"),
    ("03", r"\$N\$ be the number of filters|z\^\{\(k\)\}|L_k\b|R_c\b|K\\times N", "n filters, T masks z^(t)"),
    ("04", r"\\frac1B|I_b|U\(m\)", "N images x_b; U(k) for k filters; m is the number of landmarks"),
    ("05", r"C\\cdot g", "c channels, p = c·g²"),
]


def markdown_of(prefix: str) -> str:
    (path,) = NOTEBOOK_DIR.glob(f"{prefix}_*.ipynb")
    nb = nbformat.read(path, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


@pytest.mark.parametrize(("prefix", "pattern", "instead"), RETIRED,
                         ids=[f"{p}:{w[:30]}" for p, _, w in RETIRED])
def test_retired_symbols_are_gone(prefix, pattern, instead):
    hits = [m.group(0) for m in re.finditer(pattern, markdown_of(prefix))]
    assert hits == [], f"lesson {prefix} still writes {hits}; docs/notation.md: {instead}"


def test_the_patterns_match_the_old_forms():
    old = {"01": r"$A_c = W_{:,c,:} - \mu_c$, $t_i = \sum_c$",
           "02": r"$W_i \approx \sigma_1 v_1 u_1^\top$, $W_k^{+}$",
           "03": r"Let $N$ be the number of filters, $L_k$", "04": r"$\frac1B\sum_b \log P(y_b \mid I_b)$",
           "05": r"$p = C\cdot g^2$"}
    for prefix, pattern, _ in RETIRED:
        assert re.search(pattern, old[prefix]), (prefix, pattern)
