"""Run lessons in default mode with PRUNING_RECORD=1, so their long sweeps are saved for later runs.

    python benchmarks/lesson_records.py 07          # lesson 07 (the file whose name starts with 07)
    python benchmarks/lesson_records.py 01 06 07    # several, one after the other

A lesson cell that calls ``records.load_or_compute`` computes its records and saves them to
``benchmarks/results/<key>.json`` with the parameters they were made with and how (date, device,
threads, wall time). A later default-mode run of the lesson with the same parameters loads them and
says so; anything else (FAST mode, other seeds, other data) computes its own. The executed lesson is
written to ``build/records/`` (its tables are the records' readable form); ``make book`` builds the pages.

Prints each lesson as it starts and its wall time when it ends.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def lesson_path(prefix: str, folder: Path = REPO / "notebooks") -> Path:
    """The one lesson in ``folder`` whose file name starts with ``prefix`` (e.g. "07")."""
    found = sorted(folder.glob(f"{prefix}*.ipynb"))
    if len(found) != 1:
        names = ", ".join(p.name for p in sorted(folder.glob("*.ipynb")))
        raise SystemExit(f"lesson_records: {prefix!r} matches {len(found)} lessons; lessons: {names}")
    return found[0]


def run(path: Path, out: Path) -> float:
    """Run one lesson in default mode with PRUNING_RECORD=1, write it to ``out``; return its wall time (s)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=7200, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / path.name)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lessons", nargs="+", help="lesson number prefixes, e.g. 07")
    args = parser.parse_args()
    paths = [lesson_path(prefix) for prefix in args.lessons]
    os.environ["PRUNING_RECORD"] = "1"
    os.environ.pop("PRUNING_FAST", None)               # records are for the default mode
    for path in paths:
        print(f"{path.name}: executing in default mode with PRUNING_RECORD=1 ...", flush=True)
        seconds = run(path, REPO / "build" / "records")
        print(f"{path.name}: done in {seconds / 60:.1f} min", flush=True)
    saved = sorted((REPO / "benchmarks" / "results").glob("*.json"))
    print("records in benchmarks/results/:", ", ".join(p.name for p in saved) or "none", file=sys.stderr)


if __name__ == "__main__":
    main()
