"""Checkers for the exercises: each compares the reader's answer with the library and says why.

Every checker returns True/False and prints one friendly line (✓ or ✗ with the reason).

Introduced in: notebooks/00_tour.ipynb (§Exercises).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor, nn

from pruning_lib import metrics, surgery


def _report(ok: bool, good: str, bad: str) -> bool:
    print(("✓ " + good) if ok else ("✗ " + bad))
    return ok


def check_linf_criterion(fn: Callable[[Tensor], Tensor]) -> bool:
    """Exercise: the ℓ∞ criterion, score_i = max |W[i]|, shape (n,), for a 4-D conv weight."""
    w = torch.tensor([[[[1.0, -3.0]], [[2.0, 0.0]]], [[[0.5, 0.5]], [[-0.25, 0.0]]]])  # (2, 2, 1, 2)
    rand = torch.randn(7, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    try:
        got_hand, got_rand = fn(w), fn(rand)
    except Exception as err:  # noqa: BLE001  (report any error to the reader)
        return _report(False, "", f"your function raised {type(err).__name__}: {err}")
    if tuple(got_hand.shape) != (2,):
        return _report(False, "", f"expected one score per filter, shape (2,), got {tuple(got_hand.shape)}")
    ok = torch.allclose(got_hand.float(), torch.tensor([3.0, 0.5])) and torch.allclose(
        got_rand.float(), rand.abs().flatten(1).amax(1))
    return _report(ok, "ℓ∞ scores match: the largest |weight| of each filter",
                   f"for the hand example expected [3.0, 0.5], got {got_hand.tolist()}")


def check_spectral_norm(fn: Callable[[Tensor], Tensor]) -> bool:
    """Exercise: σ_max of each filter reshaped to (C_in, kH·kW); compared with ``spectral_norm``."""
    from pruning_lib.criteria import spectral_norm

    w = torch.randn(6, 3, 3, 3, generator=torch.Generator().manual_seed(1))
    try:
        got = fn(w)
    except Exception as err:  # noqa: BLE001  (report any error to the reader)
        return _report(False, "", f"your function raised {type(err).__name__}: {err}")
    ok = tuple(got.shape) == (6,) and torch.allclose(got.float(), spectral_norm(w), atol=1e-5)
    return _report(ok, "spectral norms match criteria.spectral_norm",
                   f"expected {spectral_norm(w).tolist()}, got {got.tolist()}")


OPERATOR_NORM_EXERCISE = torch.tensor([[[[3.0, 1.0]]], [[[1.0, 1.0]]], [[[-1.0, 1.0]]]])  # (3, 1, 1, 2)


def check_operator_norm_by_hand(answer: Iterable[float]) -> bool:
    """Exercise: the operator-norm scores of ``OPERATOR_NORM_EXERCISE``, worked out by hand."""
    from pruning_lib.criteria import operator_norm

    truth = operator_norm(OPERATOR_NORM_EXERCISE)
    given = torch.tensor([float(a) for a in answer])
    ok = given.shape == truth.shape and torch.allclose(given, truth, atol=1e-3)
    return _report(ok, f"scores {truth.tolist()}: centring removed the common [1, 1]",
                   f"expected 3 scores in [0, 1]; got {given.tolist()}. Hint: subtract the mean "
                   "filter first, then project on the top right singular vector")


def check_cosine_distance(answer: float) -> bool:
    """Exercise: the cosine distance of r_a = [0.6, 0.8] and r_b = [1, 0] (1 − 0.6 = 0.4)."""
    truth = 1.0 - (0.6 * 1.0 + 0.8 * 0.0)
    return _report(abs(float(answer) - truth) < 1e-6, f"D_ab = 1 − ⟨r_a, r_b⟩ = {truth:.1f}",
                   f"expected 1 − ⟨r_a, r_b⟩ for unit vectors; you said {answer}")


def check_nystrom_exact_m(answer: int, *, kernel_size: tuple[int, int], n_filters: int) -> bool:
    """Exercise: the smallest m that can make Nyström exact is min(n, kh·kw) (rank of S)."""
    truth = min(n_filters, kernel_size[0] * kernel_size[1])
    d = kernel_size[0] * kernel_size[1]
    why = (f"S = RRᵀ has rank ≤ kh·kw = {d}" if d <= n_filters
           else f"S = RRᵀ is {n_filters}×{n_filters}, so its rank is at most n = {n_filters} (< kh·kw = {d})")
    return _report(int(answer) == truth, f"m = {truth}: {why}",
                   f"not {answer}: S = RRᵀ is n×n with rows of kh·kw entries, so rank(S) ≤ min(n, kh·kw)")


def check_conv_params(answer: int, model: nn.Module, layer: str) -> bool:
    """Exercise: the number of weights of ``layer`` in ``model`` (c_out·c_in·kh·kw + bias)."""
    conv = dict(model.named_modules())[layer]
    truth = sum(p.numel() for p in conv.parameters())
    return _report(int(answer) == truth, f"{layer} has {truth:,} parameters",
                   f"{layer} has {truth:,} parameters, not {answer:,}: its weight is "
                   f"{tuple(conv.weight.shape)}; both its filters and its inputs were pruned")


def check_macs(answer: int, model: nn.Module, example_input: Tensor) -> bool:
    """Exercise: the MACs of ``model`` on ``example_input`` (tolerance 0.5%)."""
    truth = metrics.count_macs(model, example_input)
    ok = abs(int(answer) - truth) <= 0.005 * truth
    return _report(ok, f"{truth:,} MACs", f"the counter says {truth:,} MACs, you said {answer:,}")


def check_coupled(answer: Iterable[str], model: nn.Module, layer: str, example_input: Tensor) -> bool:
    """Exercise: the set of prunable convs whose output channels are coupled to ``layer``."""
    group = next(g for g in surgery.coupled_groups(model, example_input) if layer in g)
    given = set(answer)
    return _report(given == set(group), f"{layer} is coupled with {sorted(set(group) - {layer})}",
                   f"missing {sorted(set(group) - given)}; not coupled {sorted(given - set(group))}")


def check_own_mac_share(answer: float, model: nn.Module, layer: str, n_removed: int,
                        example_input: Tensor, *, exclude: Sequence[str] = ()) -> bool:
    """Exercise: the share (%) of ``model``'s MACs saved inside ``layer`` alone when it loses
    ``n_removed`` filters (own-layer counting; tolerance 0.05 percentage points)."""
    conv = dict(model.named_modules())[layer]
    plan = {"removed": {layer: list(range(n_removed))}, "coupled": []}
    truth = 100 * metrics.own_layer_saving(model, plan, example_input) / metrics.count_macs(
        model, example_input, exclude=exclude)
    return _report(abs(float(answer) - truth) < 0.05,
                   f"{truth:.2f}% of the MACs: {n_removed}/{conv.out_channels} of {layer}'s share",
                   f"expected {truth:.2f}%, you said {answer}: take the layer's MACs "
                   f"(metrics.conv_macs), times {n_removed}/{conv.out_channels}, over the total")


def check_stop_index(answer: int, scores: Sequence[float]) -> bool:
    """Exercise: the block index where the layer-pruning stop rule stops (``pls.stop_index``)."""
    from pruning_lib.criteria.pls import stop_index

    truth = stop_index(scores)
    return _report(int(answer) == truth,
                   f"index {truth}: the first block whose successor does not score higher",
                   f"expected {truth}, you said {answer}: walk while the next score is strictly higher")


def check_max_mean_vip(answer: float) -> bool:
    """Exercise: the largest possible mean VIP of a block (1, since Σ_j VIP_j² = p)."""
    return _report(abs(float(answer) - 1.0) < 1e-9, "1: Σ VIP² = p, so mean VIP ≤ sqrt(mean VIP²) = 1, "
                   "with equality only when every VIP is 1",
                   f"not {answer}: use Σ_j VIP_j² = p and the inequality mean(x) ≤ sqrt(mean(x²))")


ACTIVE = frozenset({"mean_activation", "apoz", "hrank", "ensemble", "snpfi", "pls_layer"})
CRITERIA_QUIZ = ("l1", "fpgm", "operator_norm", "similarity", "mean_activation", "apoz", "hrank",
                 "ensemble", "snpfi", "pls_layer")


def check_active_criteria(answer: Iterable[str]) -> bool:
    """Exercise: which of ``CRITERIA_QUIZ`` need data (are active)?"""
    given = set(answer)
    unknown = given - set(CRITERIA_QUIZ)
    if unknown:
        return _report(False, "", f"not in the quiz: {sorted(unknown)}; choose among {list(CRITERIA_QUIZ)}")
    return _report(given == ACTIVE, f"active: {sorted(ACTIVE)}; the rest read only the weights",
                   f"missing {sorted(ACTIVE - given)}; not active {sorted(given - ACTIVE)}")


def check_expected_off(answer: float, *, n_units: int, keep_prob: float) -> bool:
    """Exercise: the expected number of filters switched off in one random mask, N·(1 − q)."""
    truth = n_units * (1 - keep_prob)
    return _report(abs(float(answer) - truth) < 0.5,
                   f"{truth:.1f} filters: each is off with probability 1 − q",
                   f"expected N·(1 − q) = {n_units}·{1 - keep_prob:.2f} = {truth:.1f}, you said {answer}")


def check_two_player_shapley(answer: float) -> bool:
    """Exercise: φ_1 of the game v(∅)=0, v({1})=1, v({2})=3, v({1,2})=6: ½[(1 − 0) + (6 − 3)] = 2."""
    truth = 0.5 * ((1 - 0) + (6 - 3))
    return _report(abs(float(answer) - truth) < 1e-9,
                   f"φ_1 = {truth:g}: the mean of its gains in the two orders (1 first: +1; 2 first: +3)",
                   f"expected {truth:g}, you said {answer}: average filter 1's gain over the orders (1, 2) "
                   "and (2, 1)")
