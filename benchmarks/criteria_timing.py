"""Time filter-importance criteria on VGG-16 and ResNet-50 (torchvision layouts, random weights).

Passive criteria score every conv of the model (``criteria.score_model``) and are compared with two
baselines measured side by side: ``l2_norm``, which reads every weight once (the least a passive
criterion can do), and ``l1_norm``. ``operator_norm`` is the default form of Singh & Plumbley's score
(per-channel d×d Gram matrices, no SVD); ``operator_norm_svd`` is the same score by one batched SVD
(the definition); ``operator_norm_reference`` is the looped numpy transcription of the authors' code.
The passive criteria run interleaved (every repeat times each criterion once, in the same order), so
that machine noise hits all of them alike; each time is the median of ``--repeats`` repeats after one
untimed warm-up round. VGG-16 is ``vgg16_bn`` (the same conv weights as ``vgg16``).

The active criteria (skipped with ``--passive-only``) run ``--n-images`` random images (default 256)
of 3×SIZE×SIZE (default 64×64) in batches of ``--batch`` (default 32) through the model. Why 64×64:
both layouts are built for 224×224, but one run of 256 images at 224×224 takes minutes on one CPU
thread; at 64×64 every stage still has spatial maps (VGG-16's last convs see 4×4, ResNet-50's last
block 2×2) and the work is about (224/64)² ≈ 12× smaller. Active time grows with the input size, so
the active / operator-norm ratio measured here is a lower bound for real inputs. Each active time is
the median of ``--active-repeats`` runs (default 1) after an untimed warm-up on one batch.

Targets reported: ``operator_norm`` on all VGG-16 convs ≤ 8× the ℓ2 time (issue #11); the active
criteria ≥ 20× slower than the operator norm (the paper claims ≥ 4.5×).

Usage: python benchmarks/criteria_timing.py [--repeats 11] [--passive-only] [--threads 0]
       [--active-repeats 1] [--quick] [--size 64] [--batch 32] [--n-images 256]
"""

from __future__ import annotations

import argparse
import functools
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

from pruning_lib.criteria import ACTIVE_CRITERIA, PASSIVE_CRITERIA, score_model
from pruning_lib.criteria.operator_norm import operator_norm_reference, operator_norm_svd
from pruning_lib.experiments import time_call
from pruning_lib.models import prunable_convs

PASSIVE_EXTRA = {"operator_norm_svd": operator_norm_svd, "operator_norm_reference": operator_norm_reference}
PASSIVE = ["l2", "l1", "fpgm", "spectral", "operator_norm", "operator_norm_eq", "operator_norm_svd",
           "operator_norm_reference"]
ACTIVE = ["mean_activation", "hrank"]
TARGET_X_L2 = 8.0


def random_batches(n_images: int, size: int, batch: int) -> list[tuple[Tensor, Tensor]]:
    """Precomputed (x (B, 3, size, size), y (B,)) batches, so drawing images is not timed."""
    g = torch.Generator().manual_seed(0)
    sizes = [min(batch, n_images - i) for i in range(0, n_images, batch)]
    return [(torch.randn(b, 3, size, size, generator=g), torch.zeros(b, dtype=torch.long)) for b in sizes]


def interleaved_medians(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """{name: median seconds}: one warm-up round, then ``repeats`` rounds that each time every run once."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(repeats + 1):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if round_:                                       # round 0 is the warm-up
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def time_passive(model: nn.Module, repeats: int) -> dict[str, float]:
    """{criterion: median seconds to score every prunable conv of ``model``}, interleaved."""
    passive = {**PASSIVE_CRITERIA, **PASSIVE_EXTRA}
    runs = {name: functools.partial(score_model, model, passive[name]) for name in PASSIVE}
    return interleaved_medians(runs, repeats)


def time_active(model: nn.Module, batches: list, args: argparse.Namespace) -> dict[str, float]:
    """{criterion: median seconds} for the active criteria over ``args.n_images`` images."""
    times = {}
    for name in ACTIVE:
        run = functools.partial(ACTIVE_CRITERIA[name], model, batches, n_images=args.n_images)
        warmup = functools.partial(ACTIVE_CRITERIA[name], model, batches[:1], n_images=len(batches[0][0]))
        warmup()                                   # one batch: allocations, not the whole run
        times[name] = time_call(run, repeats=args.active_repeats, warmup=0)
    return times


def print_passive_table(results: dict[str, dict[str, float]], repeats: int) -> None:
    """Markdown table: criterion, then ms, ×ℓ2 and ×ℓ1 for each model."""
    models = list(results)
    print("| criterion | " + " | ".join(f"{m} ms | ×ℓ2 | ×ℓ1" for m in models) + " |")
    print("|---|" + "---:|---:|---:|" * len(models))
    for name in PASSIVE:
        cells = []
        for m in models:
            t = results[m]
            cells.append(f"{t[name] * 1e3:.1f} | {t[name] / t['l2']:.1f}× | {t[name] / t['l1']:.1f}×")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nms: median of {repeats} interleaved repeats, all convs of the model; ×ℓ2 / ×ℓ1: that time "
          "divided by the l2_norm / l1_norm time of the same model.")


def print_active_table(results: dict[str, dict[str, float]], passive: dict[str, dict[str, float]],
                       args: argparse.Namespace) -> None:
    """Markdown table: active criterion, model, seconds and ratio to the operator-norm time."""
    if args.quick:
        print("\n--quick: the active criteria saw 64 images, not 256: their times and ratios below are "
              "about 1/4 of a full run's.")
    print(f"\n| active criterion | model | seconds (median of {args.active_repeats}) | × operator_norm |")
    print("|---|---|---:|---:|")
    for model_name, times in results.items():
        for name, seconds in times.items():
            ratio = seconds / passive[model_name]["operator_norm"]
            verdict = "met" if ratio >= 20 else "NOT met"
            print(f"| {name} | {model_name} | {seconds:.2f} | {ratio:.0f}× (target ≥ 20×: {verdict}; "
                  "paper ≥ 4.5×) |")


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where there is one, else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def parse_args() -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=11, help="interleaved rounds of the passive criteria")
    p.add_argument("--passive-only", action="store_true", help="skip the active criteria")
    p.add_argument("--active-repeats", type=int, default=1, help="timed runs per active criterion")
    p.add_argument("--quick", action="store_true", help="64 images instead of --n-images (a smoke run)")
    p.add_argument("--size", type=int, default=64, help="active criteria: images are 3×SIZE×SIZE")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--n-images", type=int, default=256)
    p.add_argument("--threads", type=int, default=0, help="0: torch's default")
    args = p.parse_args()
    if args.quick:
        args.n_images = min(args.n_images, 64)
    return args


def main() -> None:
    """Print the passive table, the operator-norm target, the active table and the scope."""
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    start = time.perf_counter()
    nets = {"VGG-16": torchvision.models.vgg16_bn(weights=None).eval(),
            "ResNet-50": torchvision.models.resnet50(weights=None).eval()}
    passive = {name: time_passive(net, args.repeats) for name, net in nets.items()}
    print_passive_table(passive, args.repeats)
    vgg = passive["VGG-16"]
    ratio = vgg["operator_norm"] / vgg["l2"]
    print(f"\nVGG-16: operator_norm = {ratio:.1f}× the ℓ2 time (target ≤ {TARGET_X_L2:.0f}×: "
          f"{'met' if ratio <= TARGET_X_L2 else 'NOT met'}), {vgg['operator_norm'] / vgg['l1']:.1f}× ℓ1; "
          f"operator_norm_svd / operator_norm = {vgg['operator_norm_svd'] / vgg['operator_norm']:.1f}×.")
    if not args.passive_only:
        batches = random_batches(args.n_images, args.size, args.batch)
        active = {name: time_active(net, batches, args) for name, net in nets.items()}
        print_active_table(active, passive, args)
    convs = ", ".join(f"{name}: {len(prunable_convs(net))} convs" for name, net in nets.items())
    active_scope = ("" if args.passive_only else f"; active = {args.n_images} random images of "
                    f"3×{args.size}×{args.size}, batch {args.batch}, median of {args.active_repeats} "
                    f"after a 1-batch warm-up{' (--quick)' if args.quick else ''}")
    print(f"\nScope: CPU {cpu_name()} ({platform.machine()}), {torch.get_num_threads()} torch thread(s), "
          f"torch {torch.__version__}; passive = all convs ({convs}), random weights{active_scope}; "
          f"benchmark wall time {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
