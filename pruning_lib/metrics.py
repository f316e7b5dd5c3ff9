"""What pruning buys and costs: parameters, MACs, measured latency, and a side-by-side report.

* ``count_macs`` uses ``torch.utils.flop_counter.FlopCounterMode`` and divides FLOPs by 2. It
  counts convolutions and matrix products only: BatchNorm, activations and pooling are left out.
* ``measure_latency`` times a forward pass on the model's device (CUDA events on a GPU, the wall
  clock on the CPU): warm-up runs, then the median of repeats, reported with device, dtype, batch
  size and thread count (a latency without its scope means little). ``dtype=torch.bfloat16``
  times a cast copy.

Introduced in: notebooks/00_tour.ipynb (§Masks vs physical removal).
"""

from __future__ import annotations

import copy
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from pruning_lib import repro
from pruning_lib.scoped import eval_mode, hooks


def count_params(model: nn.Module) -> int:
    """Number of parameters (weights and biases; BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, example_input: Tensor, *, exclude: Sequence[str] = ()) -> int:
    """Multiply-accumulates of one forward pass on ``example_input`` (FlopCounterMode FLOPs / 2).

    A conv with n filters and c input channels counts h_out·w_out·n·c·kh·kw / groups MACs per image,
    for an h_out × w_out output (docs/notation.md); a Linear in·out.

    Args:
        model: Any model; its train/eval mode is restored afterwards.
        example_input: (B, C, H, W); the count covers the whole batch.
        exclude: Names of submodules whose MACs are left out, e.g. ``("frontend",)`` for the audio
            models' log-mel front end (its mel-filterbank product; the FFT is never counted), so
            the count covers the CNN only, as in the papers, whose networks take log-mels.

    Returns:
        MACs as an int.

    Example:
        >>> conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
        >>> count_macs(conv, torch.zeros(1, 2, 4, 4)) == 4 * 4 * 2 * 3 * 9
        True
    """
    names = dict(model.named_modules())
    missing = [name for name in exclude if name not in names or not name]
    if missing:
        raise KeyError(f"exclude names no submodule of {type(model).__name__}: {missing}")
    with eval_mode(model), FlopCounterMode(display=False) as counter:
        model(example_input.to(repro.model_device(model)))
    # the union: a name inside another excluded module (or repeated) is already left out
    outermost = {name for name in exclude
                 if not any(name.startswith(other + ".") for other in exclude if other != name)}
    per_module = counter.get_flop_counts()
    left_out = sum(sum(per_module.get(f"{type(model).__name__}.{name}", {}).values())
                   for name in outermost)
    return int(counter.get_total_flops() - left_out) // 2


@torch.no_grad()
def conv_macs(model: nn.Module, example_input: Tensor) -> dict[str, int]:
    """Multiply-accumulates of every ``nn.Conv2d`` of ``model``, per layer, on ``example_input``.

    A conv with n filters and c input channels, output (B, n, h_out, w_out), counts
    B·n·h_out·w_out·(c / groups)·kh·kw, the same rule as ``count_macs`` (measured with forward hooks,
    so input-dependent shapes such as the time axis of a spectrogram are handled).

    Args:
        model: Any model; its train/eval mode is restored afterwards.
        example_input: The input the count is for (the whole batch is counted).

    Returns:
        {conv name: MACs}, in forward order.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 2, 1))
        >>> conv_macs(net, torch.zeros(1, 1, 5, 5))   # 25·4·1·9 and 25·2·4·1
        {'0': 900, '1': 200}
    """
    macs: dict[str, int] = {}

    def hook(name: str):  # noqa: ANN202
        def record(conv: nn.Conv2d, _inputs: tuple, output: Tensor) -> None:
            kh, kw = conv.kernel_size
            macs[name] = output.numel() * (conv.in_channels // conv.groups) * kh * kw
        return record

    recorders = [(m, hook(n)) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    with eval_mode(model), hooks(forward=recorders):
        model(example_input.to(repro.model_device(model)))
    return macs


def own_layer_saving(model: nn.Module, plan: dict, example_input: Tensor) -> float:
    """MACs a plan saves inside the pruned convs only: Σ_L MACs_L · n_removed_L / n_L.

    The next layer's fewer input channels are not counted (``mac_reductions`` explains both ways).

    Raises:
        KeyError: the plan names a layer that is not a conv of ``model``.
    """
    per_conv = conv_macs(model, example_input)
    modules = dict(model.named_modules())
    unknown = [name for name in plan["removed"] if name not in per_conv]
    if unknown:
        raise KeyError(f"plan prunes {unknown}, which are not convs of the model; convs: {list(per_conv)}")
    return sum(per_conv[name] * len(idx) / modules[name].out_channels
               for name, idx in plan["removed"].items())


def mac_reductions(model: nn.Module, pruned: nn.Module, plan: dict, example_input: Tensor, *,
                   exclude: Sequence[str] = ()) -> dict:
    """How much of ``model``'s MACs a plan saves, counted two ways.

    * **own layer only** (the Interspeech'22 figure labels): each pruned conv's MACs shrink by the
      share of filters it lost, n_removed / n; nothing else changes (``own_layer_saving``).
    * **with the next layer** (what the smaller network really costs, ``count_macs(pruned)``): the
      layer after a pruned conv also loses input channels, so its MACs shrink too.

    Args:
        model: The unpruned model.
        pruned: ``surgery.apply_plan(model, plan, ...)``.
        plan: The plan; only its ``"removed"`` entries are read.
        example_input: Input of the count, e.g. one clip.
        exclude: Submodules left out of every count (``count_macs``), e.g. ``("frontend",)``.

    Returns:
        {"macs", "macs_own", "macs_pruned", "own_reduction", "with_next_reduction"}: baseline MACs,
        MACs after the own-layer-only saving, measured MACs of ``pruned``, and the two reductions
        as fractions of the baseline.

    Raises:
        KeyError: the plan names a layer that is not a conv of ``model``.
    """
    saved_own = own_layer_saving(model, plan, example_input)
    total = count_macs(model, example_input, exclude=exclude)
    after = count_macs(pruned, example_input, exclude=exclude)
    return {"macs": total, "macs_own": round(total - saved_own), "macs_pruned": after,
            "own_reduction": saved_own / total, "with_next_reduction": (total - after) / total}


@dataclass(frozen=True)
class Latency:
    """A latency measurement with its scope (device, dtype, batch, threads).

    Attributes:
        median_ms: Median time of one forward pass, milliseconds.
        q1_ms: First quartile, milliseconds.
        q3_ms: Third quartile, milliseconds.
        batch: Batch size of the input.
        threads: ``torch.get_num_threads()`` during the measurement (CPU intra-op threads; on a
            GPU they only feed the kernel launches).
        repeats: Number of timed runs (after the warm-up).
        device: Where the model ran, e.g. "cpu", "cuda:0", "mps".
        dtype: The parameters' and input's floating dtype, e.g. "float32", "bfloat16".
    """

    median_ms: float
    q1_ms: float
    q3_ms: float
    batch: int
    threads: int
    repeats: int
    device: str = "cpu"
    dtype: str = "float32"

    @property
    def scope(self) -> str:
        """One line that says how the number was measured."""
        if self.device.startswith("cuda"):
            where, clock = f"{self.device} ({_cuda_name(self.device)})", "CUDA events"
        elif self.device.startswith("mps"):
            where, clock = "mps (Apple GPU)", "wall clock with torch.mps.synchronize"
        else:
            runtime = ", onnxruntime" if "onnxruntime" in self.device else ""
            where, clock = f"CPU {platform.machine()}{runtime}", "wall clock"
        return (f"{where}, {self.dtype}, batch {self.batch}, {self.threads} thread(s), "
                f"median of {self.repeats} after warm-up ({clock}), torch.inference_mode")

    def __str__(self) -> str:
        return f"{self.median_ms:.2f} ms (IQR {self.q1_ms:.2f}–{self.q3_ms:.2f}; {self.scope})"


def _cuda_name(device: str) -> str:
    """The GPU's name for a scope line (or "CUDA" when torch cannot say)."""
    try:
        return torch.cuda.get_device_name(torch.device(device))
    except (RuntimeError, AssertionError, ValueError):
        return "CUDA"


def measure_latency(model: nn.Module, example_input: Tensor, *, repeats: int = 20,
                    warmup: int = 3, threads: int | None = None,
                    dtype: torch.dtype | None = None) -> Latency:
    """Time ``model(example_input)`` on the model's device: ``warmup`` untimed runs, then ``repeats``.

    Args:
        model: Evaluated in eval mode under ``torch.inference_mode`` on its parameters' device; its
            mode is restored (and it is never cast: see ``dtype``).
        example_input: (B, C, H, W); moved to the model's device; B is reported as the batch size.
        repeats: Timed runs (the median is reported).
        warmup: Untimed runs first (allocations, caches, cuDNN autotuning).
        threads: Set torch's thread count for the measurement, then restore it.
        dtype: Time a copy of the model cast to this floating dtype (e.g. ``torch.bfloat16``), on
            an input cast the same way; None: the model's own dtype.

    Returns:
        A ``Latency`` with median, quartiles and scope (device, dtype, batch, threads).
    """
    return compare_latency({"model": model}, example_input, repeats=repeats, warmup=warmup,
                           threads=threads, dtype=dtype)["model"]


def _timed_call(model: nn.Module, x: Tensor, where: torch.device) -> float:
    """Milliseconds of one ``model(x)`` on ``where``.

    CUDA events on CUDA, else the wall clock (after ``torch.mps.synchronize`` on MPS), so queued GPU
    work is counted, not just its launch.
    """
    if where.type == "cuda":
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        model(x)
        end.record()
        torch.cuda.synchronize(where)
        return float(begin.elapsed_time(end))
    repro.synchronize(where)
    start = time.perf_counter()
    model(x)
    repro.synchronize(where)
    return (time.perf_counter() - start) * 1e3


def _prepared(models_by_name: dict[str, nn.Module], example_input: Tensor,
              dtype: torch.dtype | None) -> dict[str, tuple[nn.Module, Tensor]]:
    """{name: (model or a cast copy, the input on its device in its dtype)}; inputs untouched."""
    if dtype is not None and not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype (e.g. torch.bfloat16), got {dtype}")
    out = {}
    for name, model in models_by_name.items():
        params = next(iter(model.parameters()), None)
        own = params.dtype if params is not None else example_input.dtype
        runner = copy.deepcopy(model).to(dtype) if dtype is not None and dtype != own else model
        x = example_input.to(repro.model_device(runner))
        if x.is_floating_point():
            x = x.to(dtype or own)
        out[name] = (runner, x)
    return out


def compare_latency(models_by_name: dict[str, nn.Module], example_input: Tensor, *,
                    repeats: int = 20, warmup: int = 3, threads: int | None = None,
                    dtype: torch.dtype | None = None) -> dict[str, Latency]:
    """Time several models fairly: runs are interleaved (A, B, C, A, B, C, ...).

    On a shared machine the load changes over time; interleaving spreads that noise over all
    models instead of penalising whichever happened to run during a busy spell. Each model runs
    on its own parameters' device (CUDA: timed with CUDA events and synchronisation; MPS:
    ``torch.mps.synchronize`` around the wall clock).

    Args:
        models_by_name: {name: model}; each runs in eval mode, its mode restored afterwards.
        example_input: (B, C, H, W), the same for every model (moved to each model's device).
        repeats: Timed rounds.
        warmup: Untimed rounds first.
        threads: Set torch's thread count for the measurement, then restore it.
        dtype: Time copies cast to this floating dtype (e.g. ``torch.bfloat16``); the models
            themselves are never cast. None: each model's own dtype.

    Returns:
        {name: Latency}, each with its device, dtype, batch and threads.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    runs = _prepared(models_by_name, example_input, dtype)
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    times: dict[str, list[float]] = {name: [] for name in runs}
    try:
        with eval_mode(*(m for m, _ in runs.values())), torch.inference_mode():
            for i in range(warmup + repeats):
                for name, (model, x) in runs.items():
                    ms = _timed_call(model, x, x.device)
                    if i >= warmup:
                        times[name].append(ms)
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(old_threads)
    batch = int(example_input.shape[0])
    return {name: _latency(t, batch, used, runs[name][1].device, _dtype_of(runs[name][0]))
            for name, t in times.items()}


def _dtype_of(model: nn.Module) -> str:
    """The name of the floating dtype of ``model``'s first parameter ("float32" when it has none)."""
    params = next(iter(model.parameters()), None)
    return str(params.dtype).removeprefix("torch.") if params is not None else "float32"


def _latency(times: list[float], batch: int, threads: int, device: torch.device | str = "cpu",
             dtype: str = "float32") -> Latency:
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return Latency(statistics.median(times), q[0], q[2], batch, threads, len(times), str(device), dtype)


@dataclass(frozen=True)
class Summary:
    """Two models side by side: params, MACs, optional accuracy and latency, and their ratios.

    Attributes:
        rows: One dict per model: name, params, macs, accuracy (or None), n, latency_ms (or None).
        notes: Scope lines (MAC counter, latency scope, accuracy n).
    """

    rows: list[dict]
    notes: list[str] = field(default_factory=list)

    def ratio(self, key: str) -> float:
        """Second model's value divided by the first's (e.g. ``ratio("macs")``)."""
        return self.rows[1][key] / self.rows[0][key]

    def to_frame(self):  # noqa: ANN201  (pandas is an optional dependency)
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows).set_index("model")

    def _repr_markdown_(self) -> str:
        keys = [k for k in self.rows[0] if any(r[k] is not None for r in self.rows)]
        lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for r in self.rows:
            lines.append("| " + " | ".join(_fmt(r[k]) for k in keys) + " |")
        return "\n".join(lines + [""] + [f"*{n}*  " for n in self.notes])

    def __str__(self) -> str:
        return self._repr_markdown_()


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def summary(models_by_name: dict[str, nn.Module], example_input: Tensor, *,
            accuracy: dict[str, dict] | None = None, latency_input: Tensor | None = None,
            repeats: int = 10) -> Summary:
    """Compare models (usually baseline vs pruned) on params, MACs, accuracy and latency.

    Args:
        models_by_name: e.g. {"baseline": m, "pruned 50%": p}; the first is the reference.
        example_input: Input for the MAC count, e.g. (1, 1, 28, 28): MACs are per this batch.
        accuracy: Optional {name: train.evaluate(...) record} to show accuracy with its n.
        latency_input: If given, measure latency on it (e.g. a batch of 64).
        repeats: Timed runs per latency.

    Returns:
        A ``Summary`` (renders as a Markdown table in notebooks).
    """
    notes = ["MACs: FlopCounterMode FLOPs / 2 (convs and Linear only; BN, ReLU, pooling not "
             f"counted), input {tuple(example_input.shape)}"]
    latency = {}
    if latency_input is not None:
        latency = compare_latency(models_by_name, latency_input, repeats=repeats)
        notes.append(f"latency: {next(iter(latency.values())).scope}")
    rows = []
    for name, model in models_by_name.items():
        acc = (accuracy or {}).get(name)
        row = {"model": name, "params": count_params(model), "macs": count_macs(model, example_input),
               "accuracy": acc["accuracy"] if acc else None, "n": acc["n"] if acc else None,
               "latency_ms": latency[name].median_ms if latency else None}
        row["macs_vs_first"] = row["macs"] / (rows[0]["macs"] if rows else row["macs"])
        rows.append(row)
    return Summary(rows, notes)
