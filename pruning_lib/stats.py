"""Uncertainty for comparisons: intervals over seeds, paired comparisons of two criteria, verdicts.

A difference of one or two points between two pruned networks says nothing until we know how
much a result moves with the fine-tuning seed, the random draw and the test images. Two tools:

- ``interval``: mean, standard deviation and a 95% t-interval of a few numbers (one per seed);
  ``summarise`` applies it to groups of records.
- ``paired_bootstrap``: the accuracy difference of two criteria *paired by seed and by test
  image* (both were fine-tuned with the same seeds and tested on the same images), with a 95%
  bootstrap interval that resamples seeds and images, and a verdict in three words: "better",
  "worse" or "tie" (the interval contains 0).

``compare_to`` runs ``paired_bootstrap`` on the records of ``experiments`` (their ``hits``: the
per-image correctness) and ``conclusion`` turns the verdicts into a sentence that is true whatever
the run shows. Nothing here plots or prints.

Introduced in: notebooks/07_comparison.ipynb (§Seeds and intervals).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from scipy import stats as scipy_stats
from torch import Tensor

TEST_NAME = "paired bootstrap over seeds and test images"


def interval(values: Sequence[float], level: float = 0.95) -> dict:
    """Mean, sample standard deviation and a Student-t interval of ``values`` (one per seed).

    Example:
        >>> r = interval([1.0, 2.0, 3.0])
        >>> r["mean"], r["sd"], round(r["low"], 3), round(r["high"], 3)
        (2.0, 1.0, -0.484, 4.484)

    Args:
        values: n numbers, e.g. accuracies of n fine-tune seeds.
        level: Coverage of the interval.

    Returns:
        {"n", "mean", "sd", "low", "high", "note"}; with n = 1 there is no spread: "sd", "low" and
        "high" are NaN and "note" says so (otherwise "note" is "").

    Raises:
        ValueError: no values, or ``level`` outside (0, 1).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    x = [float(v) for v in values]
    if not x:
        raise ValueError("interval() needs at least one value")
    n, mean = len(x), sum(x) / len(x)
    if n == 1:
        return {"n": 1, "mean": mean, "sd": math.nan, "low": math.nan, "high": math.nan,
                "note": "one seed: no interval"}
    sd = math.sqrt(sum((v - mean) ** 2 for v in x) / (n - 1))
    half = float(scipy_stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "low": mean - half, "high": mean + half, "note": ""}


def summarise(rows: Sequence[dict], by: Sequence[str], *, value: str = "accuracy",
              level: float = 0.95) -> list[dict]:
    """``interval`` of ``value`` for every group of records with equal ``by`` keys (first-seen order).

    Example:
        >>> rows = [{"c": "l1", "accuracy": a} for a in (0.8, 0.9)] + [{"c": "random", "accuracy": 0.7}]
        >>> [(r["c"], r["n"], round(r["mean"], 2), r["note"]) for r in summarise(rows, ["c"])]
        [('l1', 2, 0.85, ''), ('random', 1, 0.7, 'one seed: no interval')]

    Returns:
        One record per group: the ``by`` keys and the keys of ``interval``.
    """
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in by), []).append(float(r[value]))
    return [{**dict(zip(by, key, strict=True)), **interval(values, level)} for key, values in groups.items()]


def verdict(low: float, high: float) -> str:
    """"better" if the interval of a difference lies above 0, "worse" if below, else "tie"."""
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "tie"


def _counts(n: int, resamples: int, generator: torch.Generator) -> Tensor:
    """How often each of n items is drawn in each of ``resamples`` draws with replacement: (R, n)."""
    draws = torch.randint(n, (resamples, n), generator=generator)
    return torch.zeros(resamples, n, dtype=torch.float64).scatter_add_(
        1, draws, torch.ones(resamples, n, dtype=torch.float64))


def _resampled_means(hits: Tensor, image_counts: Tensor, generator: torch.Generator) -> Tensor:
    """Mean of ``hits`` (S, N) over resampled seeds and the given image counts (R, N): (R,)."""
    n_seeds, n_images = hits.shape
    resamples = image_counts.shape[0]
    seed_counts = (_counts(n_seeds, resamples, generator) if n_seeds > 1
                   else torch.ones(resamples, 1, dtype=torch.float64))     # (R, S)
    per_seed = hits @ image_counts.T                                       # (S, R)
    return (seed_counts.T * per_seed).sum(0) / (n_seeds * n_images)


def paired_bootstrap(a: Tensor, b: Tensor, *, pair_seeds: bool = True, resamples: int = 2000,
                     level: float = 0.95, seed: int = 0) -> dict:
    """Accuracy of A minus accuracy of B, paired by test image (and by seed), with a bootstrap interval.

    Column i of ``a`` and ``b`` is the same test image. With ``pair_seeds``, row s of both also comes
    from the same seed (same fine-tuning data order) and each resample draws seeds and images with
    replacement (a two-level bootstrap) and takes the mean of ``a − b`` over the drawn cells. Without
    it (e.g. one deterministic criterion against five random draws) the rows of ``a`` and ``b`` are
    resampled independently, the images still together. The interval holds the central ``level`` of
    the resampled means (percentile method). With one seed on each side only the images are
    resampled: the interval then ignores seed-to-seed variation ("note" says so). With paired seeds,
    swapping ``a`` and ``b`` negates the difference and mirrors the interval.

    Args:
        a: (S, N) per-image correctness (bool or 0/1) of criterion A, S seeds × N test images.
        b: (S', N) the same for criterion B (S' = S when ``pair_seeds``).
        pair_seeds: Whether row s of ``a`` and of ``b`` belong together.
        resamples: Bootstrap resamples.
        level: Coverage of the interval.
        seed: Seeds the resampling (the result is reproducible).

    Returns:
        {"difference", "low", "high", "verdict", "seeds", "reference_seeds", "paired_seeds",
        "images", "test", "note"}; differences are fractions (0.01 = one point of accuracy);
        verdict as ``verdict``.

    Raises:
        ValueError: not two (S, N) tensors with the same N >= 1 (and the same S when pairing seeds);
            ``resamples`` < 1; bad ``level``.
    """
    if a.ndim != 2 or b.ndim != 2 or a.numel() == 0 or b.numel() == 0 or a.shape[1] != b.shape[1] \
            or (pair_seeds and a.shape != b.shape):
        raise ValueError("need two (seeds, images) tensors of one shape (or, unpaired, the same images), "
                         f"got {tuple(a.shape)}, {tuple(b.shape)}")
    if resamples < 1 or not 0 < level < 1:
        raise ValueError(f"need resamples >= 1 and level in (0, 1), got {resamples}, {level}")
    generator = torch.Generator().manual_seed(seed)
    image_counts = _counts(a.shape[1], resamples, generator)               # (R, N)
    if pair_seeds:
        means = _resampled_means(a.double() - b.double(), image_counts, generator)
    else:
        means = (_resampled_means(a.double(), image_counts, generator)
                 - _resampled_means(b.double(), image_counts, generator))
    difference = float(a.double().mean() - b.double().mean())
    tail = (1 - level) / 2
    low, high = (float(q) for q in torch.quantile(means, torch.tensor([tail, 1 - tail], dtype=torch.float64)))
    one_seed = a.shape[0] == 1 and b.shape[0] == 1
    return {"difference": difference, "low": low, "high": high, "verdict": verdict(low, high),
            "seeds": a.shape[0], "reference_seeds": b.shape[0], "paired_seeds": pair_seeds,
            "images": a.shape[1], "test": TEST_NAME,
            "note": "one seed: the interval covers test images only" if one_seed else ""}


def hits_by_seed(rows: Sequence[dict]) -> tuple[list[int], Tensor]:
    """Stack the ``hits`` of records, one per seed, sorted by seed: (seeds, (S, N) bool tensor).

    Raises:
        ValueError: two records with the same seed, or hits of different lengths.
    """
    seeds = [int(r["seed"]) for r in rows]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"one record per seed expected, got seeds {seeds}")
    ordered = sorted(rows, key=lambda r: int(r["seed"]))
    lengths = {len(r["hits"]) for r in ordered}
    if len(lengths) != 1:
        raise ValueError(f"hits of different lengths {sorted(lengths)}: not the same test images")
    return sorted(seeds), torch.stack([torch.as_tensor(r["hits"]).bool() for r in ordered])


def compare_to(rows: Sequence[dict], reference: str, *, by: Sequence[str] = ("stage",),
               resamples: int = 2000, level: float = 0.95) -> list[dict]:
    """Every criterion against ``reference`` (e.g. "random") within each group of ``by``.

    Records are always paired by test image; by seed too when both criteria ran the same seeds
    (e.g. three fine-tune seeds each); otherwise (one deterministic criterion against five random
    draws, or three seeds against five draws) all seeds of each side are used and resampled
    independently. Pass only records of one kind of experiment (e.g. one budget and one allocation,
    or add those keys to ``by``).

    Args:
        rows: Records of ``experiments`` with "criterion", "seed", "hits" and the ``by`` keys.
        reference: The criterion everything is compared with.
        by: Keys that define a group, e.g. ("budget", "stage").
        resamples: Passed to ``paired_bootstrap``.
        level: Passed to ``paired_bootstrap``.

    Returns:
        One record per group and criterion: the ``by`` keys, "criterion", "reference" and the
        result of ``paired_bootstrap`` (criterion minus reference).

    Raises:
        ValueError: a group without the reference, or records on different test images.
    """
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in by), {}).setdefault(r["criterion"], []).append(r)
    out = []
    for key, by_criterion in groups.items():
        if reference not in by_criterion:
            raise ValueError(f"no '{reference}' records in group {dict(zip(by, key, strict=True))}")
        ref_seeds, ref_hits = hits_by_seed(by_criterion[reference])
        for criterion, records in by_criterion.items():
            if criterion == reference:
                continue
            seeds, hits = hits_by_seed(records)
            out.append({**dict(zip(by, key, strict=True)), "criterion": criterion, "reference": reference,
                        **paired_bootstrap(hits, ref_hits, pair_seeds=seeds == ref_seeds,
                                           resamples=resamples, level=level)})
    return out


def conclusion(comparisons: Sequence[dict], *, context: str = "") -> str:
    """One sentence that follows from the verdicts of ``compare_to`` records (one group).

    Example:
        >>> conclusion([{"criterion": "l1", "reference": "random", "verdict": "tie"}])
        'No criterion beats random: tie: l1 (paired bootstrap over seeds and test images, 95% interval).'

    Args:
        comparisons: Records with "criterion", "reference" and "verdict" (one reference).
        context: Prefixed as "context: ", e.g. "25% of MACs, fine-tuned".

    Raises:
        ValueError: no records, or more than one reference.
    """
    references = {c["reference"] for c in comparisons}
    if len(references) != 1:
        raise ValueError(f"need comparisons against one reference, got {sorted(references)}")
    (reference,) = references
    by_verdict = {v: [c["criterion"] for c in comparisons if c["verdict"] == v]
                  for v in ("better", "tie", "worse")}
    better = by_verdict["better"]
    verb = "beats" if len(better) == 1 else "beat"
    head = f"{', '.join(better)} {verb} {reference}" if better else f"No criterion beats {reference}"
    parts = [f"{v}: {', '.join(names)}" for v, names in by_verdict.items() if names]
    prefix = f"{context}: " if context else ""
    return f"{prefix}{head}: {'; '.join(parts)} ({TEST_NAME}, 95% interval)."
