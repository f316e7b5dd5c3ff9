"""Tests that the environment files agree with pyproject.toml, the one place dependencies live.

environment.yml is parsed by a small parser below (PyYAML is not a declared dependency); when PyYAML
happens to be installed, a test checks that both parsers agree.
"""

from __future__ import annotations

import operator
import re

import pytest

from pruning_lib import repro

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = repro.REPO_ROOT
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]

# Where each required package must be declared: "core" = [project] dependencies, else the extra.
REQUIRED = {
    "core": ["torch", "torchvision", "torch-pruning", "scikit-learn", "numpy", "tqdm"],
    "notebooks": ["matplotlib", "seaborn", "pandas", "ipywidgets", "jupyterlab", "ipykernel"],
    "audio": ["torchaudio"],
    "dev": ["pytest", "nbmake", "hypothesis", "pytest-timeout", "ruff"],
}
UNPINNED = ("torch", "torchvision", "torchaudio")   # the machine's own builds (CPU/CUDA) must fit


# Small parsers ----------------------------------------------------------------------------------

def parse_environment_yml(text: str) -> dict:
    """Parse the YAML subset environment.yml uses: top-level keys, lists, a nested ``- pip:`` list."""
    result: dict = {}
    items: list | None = None     # the top-level list being filled
    nested: list | None = None    # the list under "- pip:"
    nested_indent = 0
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*", "", raw).rstrip()
        if not line:
            continue
        indent, body = len(line) - len(line.lstrip()), line.strip()
        if indent == 0:
            key, _, value = body.partition(":")
            result[key.strip()] = value.strip() or []
            items, nested = (result[key.strip()] if not value.strip() else None), None
        elif body.startswith("- ") and items is not None:
            item = body[2:].strip().strip("'\"")
            if nested is not None and indent > nested_indent:
                nested.append(item)
            elif item.endswith(":"):
                nested, nested_indent = [], indent
                items.append({item[:-1]: nested})
            else:
                nested = None
                items.append(item)
        else:
            raise ValueError(f"unsupported line in environment.yml: {raw!r}")
    return result


def split_requirement(spec: str) -> tuple[str, str]:
    """("Torch_Pruning == 1.6.1; python_version>'3'") → ("torch-pruning", "==1.6.1")."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)", spec)
    assert match, spec
    return re.sub(r"[-_.]+", "-", match[1]).lower(), match[2].replace(" ", "")


def all_requirements() -> dict[str, list[tuple[str, str]]]:
    groups = {"core": PYPROJECT["project"]["dependencies"], **EXTRAS}
    return {group: [split_requirement(s) for s in specs] for group, specs in groups.items()}


def version_allowed(version: tuple[int, ...], specifier: str) -> bool:
    """Evaluate a comma-separated specifier such as ">=3.10,<4" for a release tuple."""
    ops = {">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
           ">": operator.gt, "<": operator.lt}
    for clause in filter(None, specifier.replace(" ", "").split(",")):
        op, number = re.fullmatch(r"(>=|<=|==|!=|>|<)([\d.]+)", clause).groups()
        bound = tuple(int(p) for p in number.split("."))
        if not ops[op](version[:len(bound)], bound):
            return False
    return True


@pytest.fixture(scope="module")
def environment() -> dict:
    return parse_environment_yml((ROOT / "environment.yml").read_text())


# The parsers themselves -------------------------------------------------------------------------

def test_parse_environment_yml_hand_example():
    text = "name: x  # comment\nchannels:\n  - a\ndependencies:\n  - python=3.11\n  - pip:\n    - '-e .'\n"
    assert parse_environment_yml(text) == {
        "name": "x", "channels": ["a"], "dependencies": ["python=3.11", {"pip": ["-e ."]}]}


def test_parse_environment_yml_agrees_with_pyyaml(environment):
    yaml = pytest.importorskip("yaml")
    assert environment == yaml.safe_load((ROOT / "environment.yml").read_text())


def test_split_requirement_and_version_allowed():
    assert split_requirement("Torch_Pruning == 1.6.1 ; python_version > '3'") == ("torch-pruning", "==1.6.1")
    assert split_requirement("torch>=2.2") == ("torch", ">=2.2")
    assert split_requirement("pkg[extra]") == ("pkg", "")
    assert version_allowed((3, 11), ">=3.10") and not version_allowed((3, 9), ">=3.10,<4")


# environment.yml --------------------------------------------------------------------------------

def test_environment_yml_is_thin(environment):
    assert environment["name"] == "pruning-lab"
    assert environment["channels"] == ["conda-forge", "nodefaults"]
    deps = environment["dependencies"]
    assert deps[:2] == ["python=3.11", "pip"] and len(deps) == 3   # no package of its own
    assert list(deps[2]) == ["pip"] and len(deps[2]["pip"]) == 1


def test_environment_yml_installs_the_package_with_every_extra(environment):
    (line,) = environment["dependencies"][2]["pip"]
    match = re.fullmatch(r"-e \.\[([a-z0-9_,-]+)\]", line)
    assert match, f"expected '-e .[extra,...]', got {line!r}"
    extras = match[1].split(",")
    assert len(extras) == len(set(extras))
    assert set(extras) == set(EXTRAS)


def test_environment_python_satisfies_requires_python(environment):
    python = environment["dependencies"][0].removeprefix("python=")
    assert version_allowed(tuple(int(p) for p in python.split(".")), PYPROJECT["project"]["requires-python"])


def test_makefile_installs_the_same_extras():
    makefile = (ROOT / "Makefile").read_text()
    installs = re.findall(r"pip install -e '\.\[([a-z0-9_,-]+)\]'", makefile)
    assert installs and all(set(extras.split(",")) == set(EXTRAS) for extras in installs)


# pyproject.toml ---------------------------------------------------------------------------------

def test_torch_pruning_is_pinned_exactly():
    pins = [c for reqs in all_requirements().values() for n, c in reqs if n == "torch-pruning"]
    assert pins == ["==1.6.1"]


@pytest.mark.parametrize("name", UNPINNED)
def test_torch_family_is_not_pinned_exactly(name):
    for group, reqs in all_requirements().items():
        for req_name, constraint in reqs:
            if req_name == name:
                assert "==" not in constraint, f"{name} pinned in {group}: {constraint}"


@pytest.mark.parametrize("group", REQUIRED)
def test_required_packages_are_declared_in_their_group(group):
    declared = {name for name, _ in all_requirements()[group]}
    missing = sorted(set(REQUIRED[group]) - declared)
    assert not missing, f"{group} lacks {missing}"


def test_each_package_is_declared_once():
    names = [name for reqs in all_requirements().values() for name, _ in reqs]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


# CI entry point ---------------------------------------------------------------------------------

def test_ci_run_is_an_executable_strict_bash_script_running_make_test():
    script = ROOT / ".ci" / "run"
    assert script.stat().st_mode & 0o111, ".ci/run must be executable"
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    lines = [line.strip() for line in text.splitlines()]
    assert "make test" in lines                       # unconditional, at top level
    assert "make e2e" in lines and lines.index("make test") < lines.index("make e2e")
    assert "SKIPPING make e2e" in text                # says so plainly when it cannot run it


def test_ci_run_gets_data_first_and_reruns_the_unit_suite_under_other_kernels():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert lines.index("if ! make data; then") < lines.index("make test")   # a failure does not stop CI
    reruns = [i for i, line in enumerate(lines) if line.startswith("unit ")]
    assert len(reruns) == 2 and all(lines.index("make test") < i < lines.index("make e2e") for i in reruns)
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in lines[reruns[0]]
    assert "ATEN_CPU_CAPABILITY=default" in lines[reruns[1]]
    assert any('pytest -q -p no:randomly -m "not slow"' in line for line in lines)


def test_makefile_lab_allows_root_and_prints_the_source_and_url():
    makefile = (ROOT / "Makefile").read_text()
    lab = makefile.split("\nlab: venv\n", 1)[1].split("\n\n", 1)[0]
    assert "python -m pruning_lib.data --which" in lab
    assert 'if [ "$$(id -u)" = 0 ]; then root_flag="--allow-root"' in lab
    assert "make lab: open http://127.0.0.1:$(LAB_PORT)/lab?token=$$token" in lab
    data_target = makefile.split("\ndata: venv\n", 1)[1].split("\n\n", 1)[0]
    assert "python -m pruning_lib.data --get" in data_target
