"""Params, MACs and measured CPU latency of vgg16_slim before and after pruning 50% of filters.

Uniform ℓ1-norm pruning of every conv layer, physical removal through surgery.apply_plan.
Batch 64 of 28×28 images; median of interleaved repeats after warm-up; thread count printed.

Usage: python benchmarks/latency.py [--model vgg16_slim] [--ratio 0.5] [--batch 64] [--repeats 30]
"""

from __future__ import annotations

import argparse

import torch

from pruning_lib import criteria, metrics, models, selection, surgery


def main() -> None:
    """Print a Markdown table: model, params, MACs (per image), latency."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vgg16_slim", choices=models.PRETRAINED)
    p.add_argument("--ratio", type=float, default=0.5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=0, help="0: torch's default")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        baseline = models.load_pretrained(args.model)
    except FileNotFoundError:
        baseline = models.build({"resnet20": "resnet"}.get(args.model, args.model)).eval()
    one = torch.zeros(1, 1, 28, 28)
    groups = surgery.coupled_groups(baseline, one)
    plan = selection.plan_uniform(criteria.score_model(baseline, criteria.l1_norm), args.ratio,
                                  groups=groups)
    pruned = surgery.apply_plan(baseline, plan, one)
    masked = surgery.mask_plan(baseline, plan, one)
    batch = torch.randn(args.batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    variants = {"baseline": baseline, f"masked {args.ratio:.0%}": masked,
                f"pruned {args.ratio:.0%}": pruned}
    latency = metrics.compare_latency(variants, batch, repeats=args.repeats, warmup=5)
    rows = [(name, metrics.count_params(m), metrics.count_macs(m, one), latency[name])
            for name, m in variants.items()]
    base_ms = rows[0][3].median_ms
    print(f"| {args.model} | params | MACs / image | latency (ms, batch {args.batch}) | speed-up |")
    print("|---|---|---|---|---|")
    for name, params, macs, lat in rows:
        print(f"| {name} | {params:,} | {macs:,} | {lat.median_ms:.2f} "
              f"(IQR {lat.q1_ms:.2f}–{lat.q3_ms:.2f}) | {base_ms / lat.median_ms:.2f}× |")
    print(f"\nScope: {rows[0][3].scope}; torch {torch.__version__}.")


if __name__ == "__main__":
    main()
