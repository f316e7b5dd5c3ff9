"""Saved records of long experiments, so that a lesson's default mode stays within its runtime.

A lesson's seed sweep (criteria × seeds × budgets, each pruned, recalibrated and fine-tuned) can take
longer than the lesson's runtime budget on a 2-core CPU. Such a cell calls ``load_or_compute``:

- with ``PRUNING_RECORD=1`` (what ``benchmarks/lesson_records.py`` sets) it computes the records and
  saves them, with the parameters that produced them and how (date, device, threads, wall time), to
  ``benchmarks/results/<key>.json``;
- otherwise, when that file exists **and was made with exactly the same parameters**, it loads the
  records and says so in one printed line (where they come from and how long computing them took);
- otherwise it computes them, saying why (no saved file, or different parameters: FAST mode, another
  data source, other seeds) — nothing is ever loaded for parameters it was not computed with.

Records are lists of flat dicts whose values are numbers, strings, None, lists, or bool tensors (the
per-image ``hits`` of ``experiments.evaluate_images``), stored bit-packed.

Introduced in: notebooks/07_comparison.ipynb (§Experiment 2).
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from pruning_lib import repro

RESULTS_DIR = repro.REPO_ROOT / "benchmarks" / "results"
_BOOL_TENSOR = "__bool_tensor__"


def recording() -> bool:
    """True when ``PRUNING_RECORD`` is set to a true value: compute and save, never load."""
    return os.environ.get("PRUNING_RECORD", "").strip().lower() in {"1", "true", "yes", "on"}


def encode(value: object) -> object:
    """A JSON-ready copy of one record value (bool tensors bit-packed; other tensors refused).

    Example:
        >>> decode(encode(torch.tensor([True, False, True]))).tolist()
        [True, False, True]
    """
    if isinstance(value, torch.Tensor):
        if value.dtype != torch.bool or value.dim() != 1:
            raise TypeError(f"records store 1-d bool tensors only (per-image hits), got {value.dtype} "
                            f"{tuple(value.shape)}; convert other values to numbers or lists first")
        packed = np.packbits(value.detach().cpu().numpy().astype(np.uint8))
        return {_BOOL_TENSOR: base64.b64encode(packed.tobytes()).decode("ascii"), "n": len(value)}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def decode(value: object) -> object:
    """The inverse of ``encode``."""
    if isinstance(value, dict) and _BOOL_TENSOR in value:
        packed = np.frombuffer(base64.b64decode(value[_BOOL_TENSOR]), dtype=np.uint8)
        return torch.from_numpy(np.unpackbits(packed)[: value["n"]].astype(bool))
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def _canonical(params: dict) -> dict:
    """``params`` as they read back from JSON (tuples become lists), for comparison."""
    return json.loads(json.dumps(params, sort_keys=True, default=str))


def save(path: Path, params: dict, records: list[dict], seconds: float) -> None:
    """Write records with their parameters and provenance (date, device, threads, torch, wall time)."""
    meta = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "device": str(repro.device()),
            "threads": repro.num_threads(), "torch": torch.__version__, "seconds": round(seconds, 1)}
    payload = {"params": _canonical(params), "meta": meta,
               "records": [{k: encode(v) for k, v in r.items()} for r in records]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=None, separators=(",", ":")) + "\n", encoding="utf-8")


def load(path: Path) -> tuple[dict, dict, list[dict]]:
    """(params, meta, records) of a file written by ``save``.

    Raises:
        ValueError: the file is not such a file (the message names it).
    """
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        return payload["params"], payload["meta"], [{k: decode(v) for k, v in r.items()}
                                                    for r in payload["records"]]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a records file written by pruning_lib.records.save ({err})") from err


def load_or_compute(key: str, params: dict, compute: Callable[[], list[dict]], *,
                    directory: Path | None = None) -> list[dict]:
    """Records for ``params``: loaded when saved with exactly these parameters, else computed.

    Args:
        key: File stem, e.g. ``"07_seed_sweep"`` (``<directory>/<key>.json``).
        params: Everything the records depend on (criteria, budgets, seeds, image counts, data
            source, model…), JSON-serialisable; compared for equality with the saved ones.
        compute: Makes the records (the experiment itself).
        directory: Where records live (default ``benchmarks/results``).

    Returns:
        The records (bool tensors decoded), one line printed saying where they come from.
    """
    path = (directory or RESULTS_DIR) / f"{key}.json"
    if recording():
        start = time.perf_counter()
        records = compute()
        save(path, params, records, time.perf_counter() - start)
        print(f"records: saved {len(records)} records to {_shown(path)} (PRUNING_RECORD is set)")
        return records
    reason = f"no saved records in {_shown(path)}"
    if path.is_file():
        saved_params, meta, records = load(path)
        if saved_params == _canonical(params):
            print(f"records: loaded {len(records)} records from {_shown(path)}, computed on {meta['date']} "
                  f"({meta['device']}, {meta['threads']} threads, torch {meta['torch']}) in "
                  f"{meta['seconds'] / 60:.1f} min with these same parameters; "
                  "`PRUNING_RECORD=1` recomputes them")
            return records
        differ = sorted(k for k in set(saved_params) | set(_canonical(params))
                        if saved_params.get(k) != _canonical(params).get(k))
        reason = f"{_shown(path)} was computed with other parameters ({', '.join(differ)})"
    print(f"records: {reason}; computing them now")
    return compute()


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (no absolute paths in lesson outputs)."""
    try:
        return str(path.relative_to(repro.REPO_ROOT))
    except ValueError:
        return path.name


def scores_to_records(scores: dict[str, torch.Tensor], **fields: object) -> list[dict]:
    """One record per layer of a score dict, for ``load_or_compute``.

    Args:
        scores: {conv name: scores (n,)} (any float dtype, any device).
        fields: Numbers or strings added to every record (e.g. ``seed=0, seconds=12.5``).

    Returns:
        ``[{**fields, "layer": name, "scores": [n floats]}, ...]`` in the order of ``scores``;
        float32 scores read back bit-for-bit with ``scores_from_records``.

    Example:
        >>> rows = scores_to_records({"c": torch.tensor([0.5, 2.0])}, seed=1)
        >>> rows
        [{'seed': 1, 'layer': 'c', 'scores': [0.5, 2.0]}]
        >>> scores_from_records(rows, seed=1)["c"].tolist()
        [0.5, 2.0]
    """
    for name, value in scores.items():
        if not isinstance(value, torch.Tensor) or value.dim() != 1:
            raise TypeError(f"scores_to_records: scores[{name!r}] should be a 1-d tensor (n,), got "
                            f"{type(value).__name__} {tuple(getattr(value, 'shape', ()))}")
    return [{**fields, "layer": name, "scores": value.detach().cpu().tolist()}
            for name, value in scores.items()]


def scores_from_records(rows: list[dict], **match: object) -> dict[str, torch.Tensor]:
    """The inverse of ``scores_to_records``: {layer: float32 scores (n,)} of the rows matching ``match``.

    Raises:
        ValueError: no row has all the fields of ``match`` (the message lists what there is).
    """
    chosen = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    if not chosen:
        seen = sorted({tuple((k, r.get(k)) for k in match) for r in rows})
        raise ValueError(f"scores_from_records: no record has {match}; the records have {seen}")
    return {r["layer"]: torch.tensor(r["scores"], dtype=torch.float32) for r in chosen}
