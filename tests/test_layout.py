"""The package layout (issue #11): the core and ``criteria`` import no notebook or audio dependency,
and the audio CNNs exist only once ``pruning_lib.audio`` has registered them.

Each check runs in a fresh interpreter, because this test session has long imported everything."""

from __future__ import annotations

import importlib.util
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import pruning_lib
import pruning_lib.criteria

ROOT = Path(__file__).resolve().parents[1]
# Packages that need an extra (`audio`: torchaudio, soundfile; `lab`: the notebook stack).
EXTRAS = ("audio", "lab")
FORBIDDEN = ("ipywidgets", "matplotlib", "seaborn", "pandas", "torchaudio")


def core_modules() -> list[str]:
    """pruning_lib's own modules outside the extras: every top-level module, ``criteria`` and its modules."""
    top = [m.name for m in pkgutil.iter_modules(pruning_lib.__path__) if m.name not in EXTRAS]
    criteria = [f"criteria.{m.name}" for m in pkgutil.iter_modules(pruning_lib.criteria.__path__)]
    return sorted(f"pruning_lib.{name}" for name in top + criteria)


def run_fresh(code: str) -> str:
    """Run ``code`` in a new Python process from the repository root; return its stdout."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def forbidden_in(modules: list[str]) -> list[str]:
    """The loaded modules that belong to a FORBIDDEN package (the package or one of its submodules)."""
    return sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)


def test_core_modules_include_the_documented_layout():
    names = set(core_modules())
    for core in ("repro", "data", "models", "activations", "selection", "surgery", "tp_adapter", "metrics",
                 "train", "experiments", "depth", "criteria"):
        assert f"pruning_lib.{core}" in names
    for crit in ("norms", "operator_norm", "similarity", "nystrom", "active", "ensembles", "snpfi", "pls"):
        assert f"pruning_lib.criteria.{crit}" in names
    assert not any(n.startswith(("pruning_lib.audio", "pruning_lib.lab")) for n in names)


def test_forbidden_helper_matches_packages_and_submodules_only():
    assert forbidden_in(["pandas", "pandas.core.frame", "matplotlib.pyplot", "torch", "pandasx"]) == [
        "matplotlib.pyplot", "pandas", "pandas.core.frame"]


def test_core_and_criteria_import_no_notebook_or_audio_dependency():
    modules = core_modules()
    code = ("import importlib, json, sys\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    loaded = json.loads(run_fresh(code).strip().splitlines()[-1])
    assert set(modules) <= set(loaded)                              # the imports did run
    packages = sorted({m.split(".")[0] for m in forbidden_in(loaded)})
    assert packages == [], f"importing the core loads {packages} (run `python -X importtime` to see why)"


def test_core_alone_explains_how_to_get_the_audio_models():
    code = ("import sys\n"
            "from pruning_lib import models\n"
            "assert 'dcase21_net' not in models.architectures()\n"
            "try:\n"
            "    models.build('dcase21_net')\n"
            "except ValueError as err:\n"
            "    print(err)\n"
            "print('torchaudio' in sys.modules)\n")
    message, torchaudio_loaded = run_fresh(code).strip().splitlines()[-2:]
    assert "import pruning_lib.audio" in message and "[audio]" in message
    assert torchaudio_loaded == "False"


@pytest.mark.skipif(importlib.util.find_spec("torchaudio") is None, reason="needs the [audio] extra")
def test_importing_audio_registers_its_models():
    code = ("import pruning_lib.audio\n"
            "from pruning_lib import models\n"
            "for name in ('dcase21_net', 'vggish_slim'):\n"
            "    net = models.build(name)\n"
            "    print(name, net.arch_spec['name'], sum(p.numel() for p in net.parameters()))\n")
    rows = [line.split() for line in run_fresh(code).strip().splitlines()[-2:]]
    assert [(name, spec) for name, spec, _ in rows] == [("dcase21_net", "dcase21_net"),
                                                        ("vggish_slim", "vggish_slim")]
    assert all(int(params) > 0 for _, _, params in rows)
