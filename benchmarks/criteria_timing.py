"""Time filter-importance criteria on VGG-16 and ResNet-50 (torchvision layouts, random weights).

Passive criteria score every conv of the model (``criteria.score_model``). ``operator_norm`` is the
fast form (per-channel Gram matrices, no SVD); ``operator_norm_svd`` is the same score by one batched
SVD (the definition); ``operator_norm_reference`` is the looped numpy transcription of the authors'
code. Each passive time is the median of ``--repeats`` runs after one untimed warm-up run.

The active criteria run ``--n-images`` random images (default 256) of 3×SIZE×SIZE (default 64×64) in
batches of ``--batch`` (default 32) through the model. Why 64×64: both layouts are built for 224×224,
but one run of 256 images at 224×224 takes minutes on one CPU thread; at 64×64 every stage still
has spatial maps (VGG-16's last convs see 4×4, ResNet-50's last block 2×2) and the work is about
(224/64)² ≈ 12× smaller. Active time grows with the input size, so the active / operator-norm ratio
measured here is a lower bound for real inputs. One run takes seconds (measured on one thread of the
dev box: VGG-16 mean activation ≈ 6 s, HRank ≈ 15 s; ResNet-50 ≈ 2 s and ≈ 13 s), so each active time
is the median of ``--active-repeats`` runs (default 1) after an untimed warm-up on one batch; the
whole benchmark takes about a minute at 1 thread.

Targets reported: operator-norm scoring of all VGG-16 convs ≤ 3× the ℓ1-norm time; the active
criteria ≥ 20× slower than the operator norm (the paper claims ≥ 4.5×).

Usage: python benchmarks/criteria_timing.py [--repeats 5] [--active-repeats 1] [--quick] [--size 64]
       [--batch 32] [--n-images 256] [--threads 0]
"""

from __future__ import annotations

import argparse
import functools
import platform
import time

import torch
import torchvision
from torch import Tensor, nn

from pruning_lib.criteria import ACTIVE_CRITERIA, PASSIVE_CRITERIA, score_model
from pruning_lib.criteria.operator_norm import operator_norm_reference, operator_norm_svd
from pruning_lib.experiments import time_call
from pruning_lib.models import prunable_convs

PASSIVE_EXTRA = {"operator_norm_svd": operator_norm_svd, "operator_norm_reference": operator_norm_reference}
PASSIVE = ["l1", "l2", "fpgm", "spectral", "operator_norm", "operator_norm_svd", "operator_norm_eq",
           "operator_norm_reference"]
ACTIVE = ["mean_activation", "hrank"]


def random_batches(n_images: int, size: int, batch: int) -> list[tuple[Tensor, Tensor]]:
    """Precomputed (x (B, 3, size, size), y (B,)) batches, so drawing images is not timed."""
    g = torch.Generator().manual_seed(0)
    sizes = [min(batch, n_images - i) for i in range(0, n_images, batch)]
    return [(torch.randn(b, 3, size, size, generator=g), torch.zeros(b, dtype=torch.long)) for b in sizes]


def time_model(model: nn.Module, batches: list, args: argparse.Namespace) -> dict[str, float]:
    """{criterion: median seconds} for every passive criterion (all convs) and active criterion."""
    passive = {**PASSIVE_CRITERIA, **PASSIVE_EXTRA}
    times = {}
    for name in PASSIVE:
        run = functools.partial(score_model, model, passive[name])
        times[name] = time_call(run, repeats=args.repeats, warmup=1)
    for name in ACTIVE:
        run = functools.partial(ACTIVE_CRITERIA[name], model, batches, n_images=args.n_images)
        warmup = functools.partial(ACTIVE_CRITERIA[name], model, batches[:1], n_images=len(batches[0][0]))
        warmup()                                   # one batch: allocations, not the whole run
        times[name] = time_call(run, repeats=args.active_repeats, warmup=0)
    return times


def print_table(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    """Markdown table: criterion, model, seconds, ratios to the ℓ1-norm and operator-norm times."""
    print(f"| criterion | model | seconds (median of {args.repeats} passive / {args.active_repeats} "
          "active) | × ℓ1-norm time | × operator_norm time |")
    print("|---|---|---|---|---|")
    for model_name, times in results.items():
        for name, seconds in times.items():
            print(f"| {name} | {model_name} | {seconds:.4f} | {seconds / times['l1']:.1f}× "
                  f"| {seconds / times['operator_norm']:.1f}× |")


def print_targets(results: dict[str, dict[str, float]], quick: bool) -> None:
    """Compare the measured ratios with the issue's targets and the paper's claim."""
    if quick:
        print("\n--quick: the active criteria saw 64 images, not 256: their times and ratios below are "
              "about 1/4 of a full run's.")
    vgg = results["VGG-16"]
    ratio = vgg["operator_norm"] / vgg["l1"]
    print(f"\nVGG-16, operator_norm / l1 = {ratio:.1f}× (target ≤ 3×: {'met' if ratio <= 3 else 'NOT met'}); "
          f"operator_norm_svd / l1 = {vgg['operator_norm_svd'] / vgg['l1']:.1f}×, "
          f"operator_norm_svd / operator_norm = {vgg['operator_norm_svd'] / vgg['operator_norm']:.1f}×")
    for model_name, times in results.items():
        for name in ACTIVE:
            ratio = times[name] / times["operator_norm"]
            verdict = "met" if ratio >= 20 else "NOT met"
            print(f"{model_name}, {name} / operator_norm = {ratio:.0f}× "
                  f"(target ≥ 20×: {verdict}; paper claims ≥ 4.5×)")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5, help="timed runs per passive criterion")
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
    """Print the timing table, the target comparison and the scope of the measurement."""
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    start = time.perf_counter()
    nets = {"VGG-16": torchvision.models.vgg16(weights=None).eval(),
            "ResNet-50": torchvision.models.resnet50(weights=None).eval()}
    batches = random_batches(args.n_images, args.size, args.batch)
    results = {name: time_model(net, batches, args) for name, net in nets.items()}
    print_table(results, args)
    print_targets(results, args.quick)
    convs = ", ".join(f"{name}: {len(prunable_convs(net))} convs" for name, net in nets.items())
    print(f"\nScope: CPU {platform.machine()}, {torch.get_num_threads()} torch thread(s), torch "
          f"{torch.__version__}; passive = all convs ({convs}), random weights, median of "
          f"{args.repeats} after 1 warm-up; active = {args.n_images} random images of "
          f"3×{args.size}×{args.size}, batch {args.batch}, median of {args.active_repeats} after a "
          f"1-batch warm-up{' (--quick)' if args.quick else ''}; benchmark wall time "
          f"{time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
