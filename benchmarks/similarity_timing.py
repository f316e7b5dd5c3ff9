"""Similarity pruning's distance matrix: looped vs vectorised vs Nyström, and keep-list agreement.

Cases (random weights, seeded): the 13 conv layers of torchvision VGG-16's layout (rank-1
representatives, d = kh·kw = 9, n up to 512); the whole-filter-vector case (n = 512 filters of
512×3×3, d = 4608, m = 64); and the same shape with filters of rank 64 (the case where Nyström is
exact at m = 64). Each time is the median of --repeats runs (after one warm-up, except for the
looped reference) of building the n×n distance matrix from precomputed representatives. Keep-lists
come from ``greedy_pair_keep`` (5 decimals) and are compared with the exact (vectorised) one.

Usage: python benchmarks/similarity_timing.py [--repeats 5] [--quick] [--threads 0]
       [--looped-max-n 512]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from pruning_lib.criteria import nystrom, similarity
from pruning_lib.experiments import time_call

# torchvision VGG-16 ("D"): (name, in_channels, filters), all 3×3.
VGG16_CONVS = (
    ("conv1_1", 3, 64), ("conv1_2", 64, 64), ("conv2_1", 64, 128), ("conv2_2", 128, 128),
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv4_1", 256, 512),
    ("conv4_2", 512, 512), ("conv4_3", 512, 512), ("conv5_1", 512, 512), ("conv5_2", 512, 512),
    ("conv5_3", 512, 512),
)
QUICK_CONVS = ("conv1_1", "conv3_1", "conv5_1")
Method = Callable[[Tensor], Tensor]   # representatives (n, d) -> distances (n, n)


@dataclass(frozen=True)
class Row:
    case: str
    n: int
    d: int
    method: str
    kept: int
    seconds: float
    exact_seconds: float
    agreement: float
    identical: bool
    m: int | None = None   # landmarks of a Nyström row


def random_conv(n: int, c: int, gen: torch.Generator) -> Tensor:
    """Kaiming-normal conv weight (n, c, 3, 3)."""
    return torch.randn(n, c, 3, 3, generator=gen) * (2.0 / (c * 9)) ** 0.5


def low_rank_conv(n: int, c: int, rank: int, gen: torch.Generator) -> Tensor:
    """Conv weight (n, c, 3, 3) whose flattened filters span only ``rank`` dimensions."""
    basis = torch.randn(rank, c * 9, generator=gen)                   # (rank, c*9)
    return (torch.randn(n, rank, generator=gen) @ basis).reshape(n, c, 3, 3)


def nystrom_method(n: int, m: int) -> Method:
    return lambda R: similarity.nystrom_distances(R, nystrom.choose_landmarks(n, m))


def methods_for(n: int, ms: tuple[int, ...], looped: bool) -> dict[str, Method]:
    methods: dict[str, Method] = {}
    if looped:
        methods["looped"] = similarity.cosine_distances_looped
    methods["vectorised exact"] = similarity.cosine_distances
    methods.update({f"Nyström m={m}": nystrom_method(n, m) for m in ms if m <= n})
    return methods


def time_case(case: str, reps: Tensor, methods: dict[str, Method], repeats: int) -> list[Row]:
    """Time every method on one layer's representatives (n, d) and compare its keep-list."""
    n, d = reps.shape
    exact_s = time_call(lambda: similarity.cosine_distances(reps), repeats=repeats, warmup=1)
    exact_keep = torch.zeros(n, dtype=torch.bool)
    exact_keep[similarity.greedy_pair_keep(similarity.cosine_distances(reps))] = True
    rows = []
    for name, method in methods.items():
        looped = name == "looped"
        seconds = exact_s if name == "vectorised exact" else time_call(
            lambda method=method: method(reps), repeats=1 if looped else repeats, warmup=int(not looped))
        keep = torch.zeros(n, dtype=torch.bool)
        keep[similarity.greedy_pair_keep(method(reps))] = True
        agree = float((keep == exact_keep).double().mean())
        m = int(name.split("=")[1]) if "=" in name else None
        rows.append(Row(case, n, d, name, int(keep.sum()), seconds, exact_s, agree,
                        bool(torch.equal(keep, exact_keep)), m))
    return rows


def print_table(rows: list[Row]) -> None:
    print("| case | n | d | method | kept | seconds | speed-up vs exact | keep agreement | identical |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.case} | {r.n} | {r.d} | {r.method} | {r.kept} | {r.seconds:.4g} | "
              f"{r.exact_seconds / r.seconds:.3g}× | {r.agreement:.1%} | {'yes' if r.identical else 'no'} |")


def print_targets(rows: list[Row]) -> None:
    """Each target of the issue, with the measured value and met / missed."""
    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"
    looped = [r.seconds / r.exact_seconds for r in rows if r.method == "looped"]
    if looped:
        print(f"- vectorised ≥ 10× faster than looped: {min(looped):.0f}× (worst layer) to "
              f"{max(looped):.0f}× → {verdict(min(looped) >= 10)}")
    at_d = [r for r in rows if r.m is not None and r.m >= r.d]
    same = sum(r.identical for r in at_d)
    print(f"- Nyström keep-list identical to exact at m ≥ d: {same}/{len(at_d)} cases "
          f"→ {verdict(same == len(at_d))}")
    for r in rows:
        if r.case.startswith("whole filters") and r.m is not None:
            speed = r.exact_seconds / r.seconds
            print(f"- {r.case}, {r.method}: {speed:.1f}× faster than exact (target ≥ 5×) "
                  f"→ {verdict(speed >= 5)}; keep agreement {r.agreement:.1%}")


def run(args: argparse.Namespace) -> list[Row]:
    gen = torch.Generator().manual_seed(0)
    names = QUICK_CONVS if args.quick else tuple(name for name, _, _ in VGG16_CONVS)
    rows = []
    for name, c, n in VGG16_CONVS:
        weight = random_conv(n, c, gen)
        if name in names:
            reps = similarity.filter_representatives(weight)           # (n, 9)
            methods = methods_for(n, (4, 9, 16), looped=n <= args.looped_max_n)
            rows += time_case(f"VGG-16 {name}", reps, methods, args.repeats)
    whole = {"whole filters, random": random_conv(512, 512, gen),
             "whole filters, rank 64": low_rank_conv(512, 512, 64, gen)}
    for case, weight in whole.items():
        reps = similarity.whole_filter_representatives(weight)         # (512, 4608)
        rows += time_case(case, reps, methods_for(512, (64,), looped=not args.quick), args.repeats)
    return rows


def main() -> None:
    """Print the Markdown table, then the targets with their measured values."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true",
                   help=f"layers {', '.join(QUICK_CONVS)} only, looped up to n = 256, no looped "
                        "whole-filter case, 2 repeats")
    p.add_argument("--threads", type=int, default=0, help="0: torch's default")
    p.add_argument("--looped-max-n", type=int, default=512, help="skip the looped reference above")
    args = p.parse_args()
    if args.quick:
        args.repeats, args.looped_max_n = min(args.repeats, 2), min(args.looped_max_n, 256)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, CPU, float64\n")
    rows = run(args)
    print_table(rows)
    print("\nTargets:")
    print_targets(rows)
    print(f"\nScope: seconds = median of {args.repeats} runs (looped: 1 run) of the n×n distance "
          "matrix from precomputed representatives (batched SVD, shared by all methods, not timed); "
          "keep agreement = fraction of filters with the same keep/remove decision as the exact "
          "matrix; random weights (seed 0), not trained ones"
          f"{'; --quick: a subset of layers' if args.quick else ''}.")


if __name__ == "__main__":
    main()
