"""After pruning: latency across ratios, widths and batch sizes, and export to ONNX.

* ``latency_table`` prunes a model at several ratios, with and without hardware-aware widths
  (``selection``'s ``round_to``), and times every pruned model against the baseline, interleaved,
  at several batch sizes, on the model's device. A pruned network is not automatically faster:
  fewer MACs help when the device is busy (large batches, CPUs); a small batch on a GPU is bound
  by kernel launches and memory traffic, and odd channel counts can miss the fast kernels.
* ``export_onnx`` writes a model to ONNX (TorchScript-based exporter, which needs no extra
  package) and ``onnx_latency`` times it under onnxruntime on the CPU, so the deployed number can
  be read next to PyTorch's. onnx and onnxruntime are the optional ``deploy`` extra
  (``pip install -e '.[deploy]'``); ``missing_onnx`` says what is missing.

Introduced in: notebooks/08_prune_your_own_network.ipynb.
"""

from __future__ import annotations

import copy
import importlib.util
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from pruning_lib import metrics, repro, selection, surgery

Scores = dict[str, Tensor]


def _variants(model: nn.Module, scores: Scores, ratios: Sequence[float], round_tos: Sequence[int | None],
              example_input: Tensor, groups: Sequence[Sequence[str]],
              plan_fn: Callable[..., dict]) -> dict[tuple[float, int | None], nn.Module]:
    """{(ratio, round_to): pruned copy of ``model``} (ratio 0 is the baseline itself)."""
    out = {}
    for ratio in ratios:
        for k in round_tos:
            plan = plan_fn(scores, ratio, groups=groups, round_to=k)
            out[(ratio, k)] = surgery.apply_plan(model, plan, example_input)
    return out


def latency_table(model: nn.Module, scores: Scores, ratios: Sequence[float], example_input: Tensor, *,  # noqa: PLR0913 — the grid and timing options are keyword-only, with defaults
                  batches: Sequence[int] = (1, 32), round_tos: Sequence[int | None] = (None, 8),
                  groups: Sequence[Sequence[str]] = (), repeats: int = 10, warmup: int = 3,
                  threads: int | None = None, dtype: torch.dtype | None = None,
                  plan_fn: Callable[..., dict] = selection.plan_uniform) -> list[dict]:
    """Time the baseline and its pruned copies at every ratio × ``round_to`` × batch size.

    For each batch size, one ``metrics.compare_latency`` call times the baseline and every pruned
    copy interleaved (A, B, C, A, B, C, …), so a busy spell of a shared machine hits all of them.

    Args:
        model: The unpruned model, on the device to time on (untouched).
        scores: {conv name: (n,)}, higher = keep.
        ratios: Fractions of filters removed per layer (or coupled group), each in (0, 1).
        example_input: (1, C, H, W): traces the model and counts MACs per image; the timed input
            is ``example_input`` repeated to each batch size.
        batches: Batch sizes to time.
        round_tos: Width rounding of each plan (None: none; 8: kept counts multiples of 8).
        groups: Coupled conv groups (``surgery.coupled_groups``).
        repeats: Timed rounds per batch size (the median is reported).
        warmup: Untimed rounds first.
        threads: torch's thread count during the timing (restored after).
        dtype: Time cast copies in this dtype (e.g. ``torch.bfloat16``); None: the model's own.
        plan_fn: ``selection.plan_uniform`` or ``selection.plan_global``.

    Returns:
        One record per (ratio, round_to, batch), the baseline as ratio 0: {"ratio", "round_to",
        "batch", "macs" (per image), "params", "macs_ratio" (vs baseline), "latency_ms",
        "speedup" (baseline ms / this ms), "device", "dtype", "threads", "repeats"}.
    """
    pruned = _variants(model, scores, ratios, round_tos, example_input, groups, plan_fn)
    nets = {(0.0, None): model, **pruned}
    macs = {key: metrics.count_macs(net, example_input) for key, net in nets.items()}
    rows = []
    for batch in batches:
        x = example_input.expand(batch, *example_input.shape[1:]).contiguous()     # (batch, C, H, W)
        named = {f"{ratio}/{k}": net for (ratio, k), net in nets.items()}
        timed = metrics.compare_latency(named, x, repeats=repeats, warmup=warmup, threads=threads,
                                        dtype=dtype)
        base = timed[f"{0.0}/{None}"].median_ms
        for (ratio, k), net in nets.items():
            lat = timed[f"{ratio}/{k}"]
            rows.append({"ratio": ratio, "round_to": k, "batch": batch, "macs": macs[(ratio, k)],
                         "params": metrics.count_params(net),
                         "macs_ratio": macs[(ratio, k)] / macs[(0.0, None)],
                         "latency_ms": lat.median_ms, "speedup": base / lat.median_ms,
                         "device": lat.device, "dtype": lat.dtype, "threads": lat.threads,
                         "repeats": lat.repeats})
    return rows


def missing_onnx() -> str | None:
    """None when onnx and onnxruntime can be imported; otherwise what to install."""
    missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return (f"{' and '.join(missing)} not installed: pip install -e '.[deploy]' "
            "(or pip install onnx onnxruntime)")


def export_onnx(model: nn.Module, example_input: Tensor, path: str | Path, *, opset: int = 17) -> Path:
    """Write ``model`` (a CPU copy, eval mode) to an ONNX file with a dynamic batch axis.

    Uses torch's TorchScript-based exporter (``dynamo=False``), which needs no package beyond torch
    and handles the plain CNNs of torchvision; its deprecation warning is silenced here.

    Args:
        model: Any device; not modified (a CPU copy is exported).
        example_input: (B, C, H, W); only its shape and dtype matter.
        path: The ``.onnx`` file to write (folders are created).
        opset: ONNX operator set.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    work = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(work, (example_input.cpu(),), str(path), dynamo=False, opset_version=opset,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    return path


def onnx_session(path: str | Path, *, threads: int | None = None):  # noqa: ANN201 (optional dependency)
    """An onnxruntime CPU ``InferenceSession`` on ``path`` with ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or repro.num_threads()
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_run(path: str | Path, x: Tensor, *, threads: int | None = None) -> Tensor:
    """The ONNX model's output on ``x`` (B, C, H, W), as a CPU tensor."""
    session = onnx_session(path, threads=threads)
    return torch.from_numpy(session.run(None, {"input": x.detach().cpu().numpy()})[0])


def onnx_latency(path: str | Path, x: Tensor, *, repeats: int = 20, warmup: int = 3,
                 threads: int | None = None) -> metrics.Latency:
    """Wall-clock latency of the ONNX model under onnxruntime (CPU execution provider).

    Args:
        path: An ``.onnx`` file from ``export_onnx``.
        x: (B, C, H, W) input; B is reported as the batch size.
        repeats: Timed runs (median reported).
        warmup: Untimed runs first.
        threads: onnxruntime intra-op threads (default: torch's current count, for a fair
            comparison with ``metrics.measure_latency``).

    Returns:
        A ``metrics.Latency`` whose device is "cpu (onnxruntime)".
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    used = threads or repro.num_threads()
    session = onnx_session(path, threads=used)
    feed = {"input": x.detach().cpu().numpy()}
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        session.run(None, feed)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return metrics.Latency(statistics.median(times), q[0], q[2], int(x.shape[0]), used, len(times),
                           "cpu (onnxruntime)", str(x.dtype).removeprefix("torch."))
