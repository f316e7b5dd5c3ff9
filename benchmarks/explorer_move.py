"""How long one slider move of the lessons' pruning explorer takes (the budget is 1.5 s on 2 cores).

One move is what a student waits for: prune vgg16_slim at the new ratio (physical surgery), recalibrate
BatchNorm on the explorer's 200 fixed training images, evaluate on its 500 test images, count MACs and
params, redraw the read-out and the plot. The explorer is built exactly as lesson 00 builds it; each
move sets the slider (and, every other move, the criterion) and the widget's own callback runs. The
first move, done when the explorer is built, is reported separately (it includes warm-up).

Usage: python benchmarks/explorer_move.py [--moves 12] [--threads 0] [--json PATH]
Prints one line per move and a summary (median, max, n, threads, device); --json saves them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")      # no display: the figure is still drawn, as in a headless notebook

import torch  # noqa: E402 — after choosing the backend

from pruning_lib import criteria, data, experiments, models, repro, surgery  # noqa: E402
from pruning_lib.lab import widgets  # noqa: E402

RATIOS = (0.3, 0.5, 0.7, 0.55, 0.85, 0.4)


def time_moves(moves: int, seed: int = 0) -> dict:
    """Build lesson 00's explorer on vgg16_slim and time ``moves`` slider moves (wall clock, s)."""
    repro.seed_everything(seed)
    device = repro.device()
    fashion = data.fashion_mnist_loaders(fast=False, seed=seed).data
    model = models.load_pretrained("vgg16_slim", device=device)
    example = torch.zeros(1, 1, 28, 28)
    scores = {name: criteria.score_model(model, fn) for name, fn in criteria.PASSIVE_CRITERIA.items()}
    start = time.perf_counter()
    explorer = widgets.pruning_explorer(
        model, scores, data.subset_loader(fashion, "test", 50, seed=seed + 1), example,
        groups=surgery.coupled_groups(model, example), ratio=0.5,
        recalibrate_loader=experiments.recalibration_loader(fashion, 20, seed=seed))
    first = time.perf_counter() - start
    order = list(scores)
    names = itertools.cycle(order[1:] + order[:1])    # never the current one: each set is one move
    seconds = []
    for k, ratio in zip(range(moves), itertools.cycle(RATIOS), strict=False):
        begin = time.perf_counter()
        if k % 2:
            explorer.criterion.value = next(names)     # one move: the callback runs once
        else:
            explorer.ratio.value = ratio
        seconds.append(time.perf_counter() - begin)
        result = explorer.results[-1]
        print(f"move {k + 1:2d}: {result['criterion']:<16} ratio {result['ratio']:.2f}  "
              f"{seconds[-1]:.2f} s (library's own: {result['seconds']:.2f} s)", flush=True)
    return {"model": "vgg16_slim", "test_images": 500, "recalibration_images": 200,
            "device": str(device), "threads": repro.num_threads(), "torch": torch.__version__,
            "first_move_s": round(first, 3), "moves_s": [round(s, 3) for s in seconds],
            "median_s": round(statistics.median(seconds), 3), "max_s": round(max(seconds), 3),
            "n": len(seconds), "source": fashion.source}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=12)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    summary = time_moves(args.moves)
    print(f"{summary['n']} moves on {summary['device']}, {summary['threads']} threads: median "
          f"{summary['median_s']:.2f} s, max {summary['max_s']:.2f} s (first, with warm-up: "
          f"{summary['first_move_s']:.2f} s); budget 1.5 s")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
