"""Time filter-importance criteria on VGG-16 and ResNet-50 (torchvision layouts, random weights).

Passive criteria score every conv of the model (``criteria.score_model``); the active criteria run
``--n-images`` random images (3×SIZE×SIZE, batch ``--batch``) through it. Input size: 224×224 takes
minutes per repeat for VGG-16 on a 2-core CPU, so the default is CIFAR-sized 32×32 (measured: one
batch of 32 through VGG-16 takes ~0.36 s at 32×32 and ~1.0 s at 64×64 on one thread of the dev box).
Active time grows with the input size, so smaller inputs make the active/passive ratio conservative.
Each number is the median of ``--repeats`` timed runs after one untimed warm-up (time.perf_counter).

Targets reported: operator-norm scoring of all VGG-16 convs ≤ 3× the ℓ1-norm time; the active
criteria ≥ 20× slower than the operator norm (the paper claims ≥ 4.5×).

Usage: python benchmarks/criteria_timing.py [--repeats 5] [--quick] [--size 32] [--batch 32]
       [--n-images 256] [--threads 0]
"""

from __future__ import annotations

import argparse
import functools
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torchvision
from torch import Tensor, nn

from pruning_lib.criteria import ACTIVE_CRITERIA, PASSIVE_CRITERIA, score_model
from pruning_lib.criteria.operator_norm import operator_norm_reference
from pruning_lib.models import prunable_convs

PASSIVE = ["l1", "l2", "fpgm", "spectral", "operator_norm", "operator_norm_eq", "operator_norm_reference"]
ACTIVE = ["mean_activation", "hrank"]


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` runs after one untimed warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def random_batches(n_images: int, size: int, batch: int) -> list[tuple[Tensor, Tensor]]:
    """Precomputed (x (B, 3, size, size), y (B,)) batches, so drawing images is not timed."""
    g = torch.Generator().manual_seed(0)
    sizes = [min(batch, n_images - i) for i in range(0, n_images, batch)]
    return [(torch.randn(b, 3, size, size, generator=g), torch.zeros(b, dtype=torch.long)) for b in sizes]


def time_model(model: nn.Module, batches: list, args: argparse.Namespace) -> dict[str, float]:
    """{criterion: median seconds} for every passive criterion (all convs) and active criterion."""
    passive = {**PASSIVE_CRITERIA, "operator_norm_reference": operator_norm_reference}
    times = {}
    for name in PASSIVE:
        times[name] = median_seconds(functools.partial(score_model, model, passive[name]), args.repeats)
    for name in ACTIVE:
        run = functools.partial(ACTIVE_CRITERIA[name], model, batches, n_images=args.n_images)
        times[name] = median_seconds(run, args.repeats)
    return times


def print_table(results: dict[str, dict[str, float]], repeats: int) -> None:
    """Markdown table: criterion, model, seconds, ratio to the ℓ1-norm time of the same model."""
    print(f"| criterion | model | seconds (median of {repeats}) | × ℓ1-norm time |")
    print("|---|---|---|---|")
    for model_name, times in results.items():
        for name, seconds in times.items():
            print(f"| {name} | {model_name} | {seconds:.4f} | {seconds / times['l1']:.1f}× |")


def print_targets(results: dict[str, dict[str, float]], quick: bool) -> None:
    """Compare the measured ratios with the issue's targets and the paper's claim."""
    if quick:
        print("\n--quick: the active criteria saw 64 images, not 256: their times and ratios below are "
              "about 1/4 of a full run's.")
    vgg = results["VGG-16"]
    ratio = vgg["operator_norm"] / vgg["l1"]
    print(f"\nVGG-16, operator_norm / l1 = {ratio:.1f}× (target ≤ 3×: {'met' if ratio <= 3 else 'NOT met'})")
    for model_name, times in results.items():
        for name in ACTIVE:
            ratio = times[name] / times["operator_norm"]
            verdict = "met" if ratio >= 20 else "NOT met"
            print(f"{model_name}, {name} / operator_norm = {ratio:.0f}× "
                  f"(target ≥ 20×: {verdict}; paper claims ≥ 4.5×)")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="64 images instead of --n-images (a smoke run)")
    p.add_argument("--size", type=int, default=32, help="input images are 3×SIZE×SIZE")
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
    nets = {"VGG-16": torchvision.models.vgg16(weights=None).eval(),
            "ResNet-50": torchvision.models.resnet50(weights=None).eval()}
    batches = random_batches(args.n_images, args.size, args.batch)
    results = {name: time_model(net, batches, args) for name, net in nets.items()}
    print_table(results, args.repeats)
    print_targets(results, args.quick)
    convs = ", ".join(f"{name}: {len(prunable_convs(net))} convs" for name, net in nets.items())
    print(f"\nScope: CPU {platform.machine()}, {torch.get_num_threads()} torch thread(s), torch "
          f"{torch.__version__}; passive = all convs ({convs}), random weights; active = "
          f"{args.n_images} random images of 3×{args.size}×{args.size}, batch {args.batch}; median of "
          f"{args.repeats} after 1 warm-up{' (--quick)' if args.quick else ''}.")


if __name__ == "__main__":
    main()
