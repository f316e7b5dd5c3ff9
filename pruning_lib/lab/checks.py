"""Checkers for the exercises: each compares the reader's answer with the library and says why.

Every checker returns True/False and prints what it found. A right answer gets ``✓`` and the reason
it is right. A wrong answer gets ``✗``, what is wrong with it (recognising the usual slips) and a
``Hint:``; it never prints the expected value, and no docstring here states it either
(``tests/test_checks.py`` checks both for every checker).

Introduced in: notebooks/00_tour.ipynb (§Exercises).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor, nn

from pruning_lib import metrics, surgery


def _right(message: str) -> bool:
    """Print ``✓ message`` and return True."""
    print("✓ " + message)
    return True


def _wrong(what: str, hint: str) -> bool:
    """Print ``✗ what`` and a hint on the next line, and return False."""
    print(f"✗ {what}\n  Hint: {hint}")
    return False


def _close(a: Tensor, b: Tensor, atol: float = 1e-5) -> bool:
    """Same shape and all entries within ``atol`` (False for a shape mismatch)."""
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), atol=atol)


def _call_on(fn: Callable[[Tensor], Tensor], *weights: Tensor) -> tuple[list[Tensor] | None, str]:
    """``fn`` applied to every weight, or (None, the error it raised as text)."""
    try:
        return [torch.as_tensor(fn(w)) for w in weights], ""
    except Exception as err:  # noqa: BLE001  (report any error to the reader)
        return None, f"your function raised {type(err).__name__}: {err}"


SIGNATURE_HINT = "the function gets a conv weight of shape (n, c, kh, kw); it returns one score per filter"


# --- lesson 00 -------------------------------------------------------------------------------------

LINF_HAND = torch.tensor([[[[1.0, -3.0]], [[2.0, 0.0]]], [[[0.5, 0.5]], [[-0.25, 0.0]]]])  # (2, 2, 1, 2)


def check_linf_criterion(fn: Callable[[Tensor], Tensor]) -> bool:
    """Exercise (lesson 00): the ℓ∞ criterion, one score per filter of a 4-D conv weight.

    Tried on ``LINF_HAND`` and on random weights of shape (7, 3, 3, 3).
    """
    rand = torch.randn(7, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    got, error = _call_on(fn, LINF_HAND, rand)
    if got is None:
        return _wrong(error, SIGNATURE_HINT)
    hand, on_rand = got
    if tuple(hand.shape) != (LINF_HAND.shape[0],):
        return _wrong(f"for a weight with {LINF_HAND.shape[0]} filters your function returned shape "
                      f"{tuple(hand.shape)}", "reduce over every axis but the first: "
                      "weight.flatten(1) gives one row per filter")
    if _close(hand, LINF_HAND.abs().flatten(1).amax(1)) and _close(on_rand, rand.abs().flatten(1).amax(1)):
        return _right("ℓ∞ scores match: the largest |weight| of each filter")
    slips = {"the ℓ1 norm (you summed the absolute weights)": lambda w: w.abs().flatten(1).sum(1),
             "the ℓ2 norm": lambda w: w.flatten(1).norm(dim=1),
             "the largest signed weight: a large negative weight is missed": lambda w: w.flatten(1).amax(1)}
    for name, slip in slips.items():
        if _close(hand, slip(LINF_HAND)) and _close(on_rand, slip(rand)):
            return _wrong(f"your scores are {name}", "ℓ∞ keeps a single entry per filter: the one with "
                          "the largest absolute value")
    if not hand.any():
        return _wrong("every score is zero: the stub line is still there", "flatten each filter to a row, "
                      "take absolute values, then the largest entry of each row")
    where = "right on checks.LINF_HAND but wrong on random weights of shape (7, 3, 3, 3)" if _close(
        hand, LINF_HAND.abs().flatten(1).amax(1)) else f"on checks.LINF_HAND your scores were {hand.tolist()}"
    return _wrong(where, "flatten each filter to a row, take absolute values, then the largest "
                  "entry of each row")


def check_conv_params(answer: int, model: nn.Module, layer: str) -> bool:
    """Exercise (lesson 00): the number of parameters of conv ``layer`` in (pruned) ``model``."""
    conv = dict(model.named_modules())[layer]
    n, c, kh, kw = conv.weight.shape
    bias = 0 if conv.bias is None else conv.bias.numel()
    truth = n * c * kh * kw + bias
    answer = int(answer)
    if answer == truth:
        return _right(f"{layer} has {truth:,} parameters: weight {tuple(conv.weight.shape)}"
                      + (" plus one bias per filter" if bias else ", no bias"))
    if bias and answer == truth - bias:
        return _wrong(f"{answer:,} counts the weights only", "this conv has a bias: one number per filter")
    if not bias and answer == truth + n:
        return _wrong(f"{answer:,} counts a bias, but this conv has none",
                      "count the weight tensor alone")
    weights = answer - bias
    hint = ("the weight has shape (filters kept, input channels kept, kh, kw); both the layer's own "
            "filters and the previous layer's filters were pruned")
    fits_inputs, fits_filters = weights % (c * kh * kw) == 0, weights % (n * kh * kw) == 0
    if weights > 0 and fits_inputs and not fits_filters:
        return _wrong(f"{answer:,} fits the layer's input channels but not the number of its filters", hint)
    if weights > 0 and fits_filters and not fits_inputs:
        return _wrong(f"{answer:,} fits the layer's filters but not its input channels: the previous "
                      "layer lost filters, so this one lost input channels", hint)
    return _wrong(f"{answer:,} is not the parameter count of {layer}", hint)


def check_macs(answer: int, model: nn.Module, example_input: Tensor) -> bool:
    """Exercise: the MACs of ``model`` on ``example_input`` (tolerance 0.5%)."""
    truth = metrics.count_macs(model, example_input)
    answer = int(answer)
    if abs(answer - truth) <= 0.005 * truth:
        return _right(f"{truth:,} MACs")
    hint = ("a conv costs H_out·W_out·n·c·kh·kw/groups MACs, a linear layer in·out; add up every layer "
            "for one input")
    if abs(answer - 2 * truth) <= 0.01 * truth:
        return _wrong(f"{answer:,} counts a multiply and an add separately (FLOPs)", "one MAC is one "
                      "multiply-accumulate: " + hint)
    return _wrong(f"{answer:,} is too {'high' if answer > truth else 'low'} by more than 0.5%", hint)


def check_coupled(answer: Iterable[str], model: nn.Module, layer: str, example_input: Tensor) -> bool:
    """Exercise (lesson 00): the set of prunable convs whose output channels are coupled to ``layer``."""
    groups = surgery.coupled_groups(model, example_input)
    group = set(next(g for g in groups if layer in g))
    given = set(answer)
    convs = {name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    if given == group:
        return _right(f"{layer} is coupled with {sorted(group - {layer})}")
    if given - convs:
        return _wrong(f"not convs of this model: {sorted(given - convs)}",
                      "use the names printed by models.conv_widths(model)")
    hint = ("follow the residual stream: every conv whose output is added into the same sum as "
            f"{layer}'s (directly or through a projection shortcut) must keep the same channels")
    if layer not in given:
        return _wrong(f"include {layer} itself", hint)
    wrong = sorted(given - group)
    missing = len(group - given)
    parts = ([f"{wrong} do not add into the same sum as {layer}"] if wrong else []) + (
        [f"{missing} coupled conv(s) are missing"] if missing else [])
    return _wrong("; ".join(parts), hint)


# --- lesson 01 -------------------------------------------------------------------------------------

def check_spectral_norm(fn: Callable[[Tensor], Tensor]) -> bool:
    """Exercise (lesson 01): σ_max of each filter viewed as a (c, kh·kw) matrix."""
    from pruning_lib.criteria import spectral_norm

    w = torch.randn(6, 3, 3, 3, generator=torch.Generator().manual_seed(1))
    got, error = _call_on(fn, w)
    if got is None:
        return _wrong(error, SIGNATURE_HINT)
    scores = got[0]
    if tuple(scores.shape) != (6,):
        return _wrong(f"for 6 filters your function returned shape {tuple(scores.shape)}",
                      "one σ_max per filter: loop over the filters, or batch over them")
    if _close(scores, spectral_norm(w), atol=1e-5):
        return _right("spectral norms match criteria.spectral_norm")
    svd_hint = ("torch.linalg.svdvals(M) returns the singular values of a matrix M, largest first; "
                "M must be filter i viewed as a c × kh·kw matrix")
    if not scores.any():
        return _wrong("every value is zero: the stub line is still there", svd_hint)
    if _close(scores, w.flatten(1).norm(dim=1)):
        return _wrong("these are the filters' ℓ2 (Frobenius) norms, √(Σ σ²) over all singular values",
                      svd_hint)
    if _close(scores, torch.linalg.svdvals(w.flatten(2))[:, -1]):
        return _wrong("you took the smallest singular value", svd_hint)
    return _wrong("your values are not the largest singular values; check how each filter is reshaped",
                  svd_hint)


OPERATOR_NORM_EXERCISE = torch.tensor([[[[3.0, 1.0]]], [[[1.0, 1.0]]], [[[-1.0, 1.0]]]])  # (3, 1, 1, 2)


def check_operator_norm_by_hand(answer: Iterable[float]) -> bool:
    """Exercise (lesson 01): the operator-norm scores of ``OPERATOR_NORM_EXERCISE``, by hand."""
    from pruning_lib.criteria import operator_norm

    truth = operator_norm(OPERATOR_NORM_EXERCISE)
    given = torch.tensor([float(a) for a in answer])
    if _close(given, truth, atol=1e-3):
        return _right(f"scores {truth.tolist()}: centring removed what all filters share")
    steps = "steps 1–4 of the math section: centre, find the top direction, project, square and divide"
    if given.numel() != truth.numel():
        return _wrong(f"you gave {given.numel()} score(s); the layer has {truth.numel()} filters", steps)
    if (given < 0).any() or (given > 1 + 1e-6).any():
        return _wrong(f"scores lie in [0, 1]; you said {given.tolist()}",
                      "square the projections τ_i, then divide by the largest square")
    if _close(given, operator_norm(OPERATOR_NORM_EXERCISE, center=False), atol=1e-3):
        return _wrong("these are the scores without centring", "subtract the mean filter first")
    if abs(float(given.max()) - 1) > 1e-3:
        return _wrong(f"the largest of your scores is {float(given.max()):g}, but dividing by the largest "
                      "square makes the top score exactly one", steps)
    return _wrong(f"you said {given.tolist()}: at least one score is off",
                  "after subtracting the mean filter, every centred filter lies on one line; project each "
                  "on that line's unit direction")


ACTIVE_TOY_IMAGE = torch.tensor([[1.0, -2.0, 0.0], [3.0, -1.0, 0.0], [0.0, 2.0, 1.0]])   # lesson 01's X
ACTIVE_TOY_WEIGHTS = (1.0, -1.0, 2.0)       # W_0 and W_1 of the lesson's toy layer, then exercise 6's filter
ACTIVE_BY_HAND_KEYS = ("mean_activation", "apoz", "hrank")   # criteria.ACTIVE_CRITERIA names (apoz: 1 − APoZ)


def _active_toy_scores() -> dict[str, Tensor]:
    """The library's active scores of the toy layer's filters on ``ACTIVE_TOY_IMAGE``, by criterion.

    The toy layer is the lesson's: a 1×1 ``ConvBNReLU`` with the weights ``ACTIVE_TOY_WEIGHTS`` and a
    BatchNorm set to the identity (running mean 0, variance 1, eps 0). The global RNG is not touched.
    """
    from pruning_lib import models
    from pruning_lib.criteria import ACTIVE_CRITERIA

    n = len(ACTIVE_TOY_WEIGHTS)
    with torch.random.fork_rng(devices=[]):
        toy = nn.Sequential(models.ConvBNReLU(1, n, kernel_size=1), nn.Flatten()).eval()
    with torch.no_grad():
        toy[0].conv.weight.copy_(torch.tensor(ACTIVE_TOY_WEIGHTS).view(n, 1, 1, 1))
        toy[0].bn.eps = 0.0
    h, w = ACTIVE_TOY_IMAGE.shape
    loader = [(ACTIVE_TOY_IMAGE.view(1, 1, h, w), torch.tensor([0]))]
    return {name: ACTIVE_CRITERIA[name](toy, loader, n_images=1)["0.conv"].double()
            for name in ACTIVE_BY_HAND_KEYS}


def _active_slip(key: str, value: float, scores: Tensor, image: Tensor, weight: float) -> str:
    """What a wrong ``value`` for criterion ``key`` of the new filter most likely is ("" if unknown)."""
    pre = weight * image.double()                                  # the new filter's map before the ReLU
    near = {"mean_activation": [
        (scores[0], "filter 0's score: the new filter's map is not the same size as filter 0's"),
        (pre.abs().mean(), "the mean of |map| before the ReLU: the score reads the map after it"),
        (pre.mean(), "the mean of the map before the ReLU: negative entries do not reach the next layer"),
        (pre.clamp(min=0).sum(), "a sum over the positions, not a mean")],
        "apoz": [(1 - scores[-1], "APoZ itself, the share of zeros; the score is 1 − APoZ (higher = keep)"),
                 (scores[-1] * pre.numel(), "a count of positions, not a share")],
        "hrank": [(min(pre.shape), "the largest rank a map of this size can have: are its rows "
                                   "independent?")],
    }
    for target, why in near.get(key, []):
        if abs(value - float(target)) < 5e-3:
            return why
    if key == "hrank" and value != round(value):
        return "a rank is a whole number"
    return "not what the definition gives"


def check_active_by_hand(answer: dict[str, float]) -> bool:
    """Exercise (lesson 01): the active scores of the filter added to the toy layer, worked out by hand.

    ``answer`` maps each name of ``ACTIVE_BY_HAND_KEYS`` to the new filter's score (for ``apoz``, the
    score 1 − APoZ that ``criteria.apoz`` returns); compared with the library on the lesson's toy layer
    and image, tolerance 0.005.
    """
    keys = list(ACTIVE_BY_HAND_KEYS)
    hint = ("write out the new filter's map, ReLU(weight · X), as a matrix; then the mean of its entries, "
            "the share of its entries that are positive, and its matrix rank")
    if not isinstance(answer, dict) or set(answer) != set(keys):
        got = sorted(answer) if isinstance(answer, dict) else type(answer).__name__
        return _wrong(f"give a dict with the keys {keys}; got {got}", hint)
    try:
        given = {k: float(answer[k]) for k in keys}
    except (TypeError, ValueError):
        return _wrong("every value must be a number (a fraction such as 5 / 9 is fine)", hint)
    scores = _active_toy_scores()
    right = [k for k in keys if abs(given[k] - float(scores[k][-1])) < 5e-3]
    if len(right) == len(keys):
        return _right("the new filter's three scores match the library's on the toy layer: it scales filter "
                      "0's map, so its mean activation scales too while its zero pattern and its rank stay")
    if not any(given.values()):
        return _wrong("every score is zero: the stub line is still there", hint)
    wrong = [f"{k}: {_active_slip(k, given[k], scores[k], ACTIVE_TOY_IMAGE, ACTIVE_TOY_WEIGHTS[-1])}"
             for k in keys if k not in right]
    return _wrong("; ".join(wrong) + (f" (right: {right})" if right else ""), hint)


def check_tells_apart(answer: Iterable[str]) -> bool:
    """Exercise (lesson 01): which of ``ACTIVE_BY_HAND_KEYS`` score filter 0 and the new one differently."""
    scores = _active_toy_scores()
    truth = {k for k, s in scores.items() if abs(float(s[0] - s[-1])) > 1e-6}
    given = {answer} if isinstance(answer, str) else set(answer)
    hint = ("compare filter 0's map with the new filter's: what changes, and which of the three scores "
            "(mean of the map, share of positive entries, rank) sees that change?")
    unknown = sorted(given - set(ACTIVE_BY_HAND_KEYS))
    if unknown:
        return _wrong(f"not criteria of the toy check: {unknown}",
                      "use the names in checks.ACTIVE_BY_HAND_KEYS; " + hint)
    if given == truth:
        return _right(f"only {sorted(truth)} separate them, and only by scale: the two maps have the same "
                      "pattern, which a BatchNorm after the conv would normalise away")
    same, missing = sorted(given - truth), len(truth - given)
    parts = ([f"{same} give the two filters the same score"] if same else []) + (
        [f"{missing} criterion that tells them apart is missing" if missing == 1
         else f"{missing} criteria that tell them apart are missing"] if missing else [])
    return _wrong("; ".join(parts), hint)


def check_still_last_to_go(answer: Iterable[str] | None, model: nn.Module, conv: str, index: int,
                           alpha: float, *, bn: str | None = None) -> bool:
    """Exercise (lesson 01): the passive criteria that still rank a rescaled filter last-to-go.

    Filter ``index`` of ``conv`` is scaled by ``alpha`` with ``surgery.rescale_filter`` (the network's
    function is unchanged; ``bn`` as there). Names are the keys of ``criteria.PASSIVE_CRITERIA``
    except "random", which reads no weights; "last-to-go" means that every other filter of the conv
    scores strictly lower.
    """
    from pruning_lib.criteria import PASSIVE_CRITERIA

    names = [n for n in PASSIVE_CRITERIA if n != "random"]
    rescaled = surgery.rescale_filter(model, conv, index, alpha, bn=bn)
    weight = rescaled.get_submodule(conv).weight.detach().cpu()
    truth = set()
    for name in names:
        scores = PASSIVE_CRITERIA[name](weight)
        if int((scores < scores[index]).sum()) == weight.shape[0] - 1:
            truth.add(name)
    hint = ("rescale with surgery.rescale_filter at this α, score the conv's new weight with each criterion, "
            "and check whether every other filter scores lower than this one")
    if answer is None:
        return _wrong("no answer yet: the stub None is still there", "answer with a set of names from "
                      "criteria.PASSIVE_CRITERIA (an empty set counts); " + hint)
    given = {answer} if isinstance(answer, str) else set(answer)
    unknown = sorted(given - set(names))
    if unknown:
        return _wrong(f"not passive criteria that read the weights: {unknown}",
                      "use the keys of criteria.PASSIVE_CRITERIA (random reads no weights: leave it out)")
    if given == truth:
        kept = (f"{sorted(truth)} still keep it to the end" if truth
                else "none of them keeps it to the end any more")
        return _right(f"{kept}: the network computes the same function at every α, yet the weight criteria "
                      "follow the scale that the BatchNorm cancels")
    moved, missing = sorted(given - truth), len(truth - given)
    parts = ([f"{moved} no longer rank the filter last-to-go at this α"] if moved else []) + (
        [f"{missing} criteria that still rank it last-to-go are missing"] if missing else [])
    return _wrong("; ".join(parts), hint)


# --- lesson 02 -------------------------------------------------------------------------------------

COSINE_PAIR = (torch.tensor([0.6, 0.8]), torch.tensor([1.0, 0.0]))


def check_cosine_distance(answer: float) -> bool:
    """Exercise (lesson 02): the cosine distance D_ab of the two unit representatives ``COSINE_PAIR``."""
    r_a, r_b = COSINE_PAIR
    truth = float(1 - r_a @ r_b)
    answer = float(answer)
    if abs(answer - truth) < 1e-6:
        return _right(f"D_ab = 1 − ⟨r_a, r_b⟩ = {truth:.1f}")
    hint = "both vectors have length one, so their cosine is their inner product; D = 1 − cosine"
    if abs(answer - float(r_a @ r_b)) < 1e-6:
        return _wrong(f"{answer:g} is the cosine similarity ⟨r_a, r_b⟩, not the distance", hint)
    if abs(answer - float((r_a - r_b).norm())) < 1e-3:
        return _wrong(f"{answer:g} is the Euclidean distance ‖r_a − r_b‖", hint)
    if not 0 <= answer <= 2:
        return _wrong(f"{answer:g} is outside [0, 2], where cosine distances of unit vectors lie", hint)
    return _wrong(f"{answer:g} is not D_ab", hint)


def check_nystrom_exact_m(answer: int, *, kernel_size: tuple[int, int], n_filters: int) -> bool:
    """Exercise (lessons 02, 06): the smallest number of landmarks m that can make Nyström exact."""
    d = kernel_size[0] * kernel_size[1]
    truth = min(n_filters, d)
    answer = int(answer)
    if answer == truth:
        why = (f"S = RRᵀ has rank ≤ kh·kw = {d}" if d <= n_filters
               else f"S = RRᵀ is {n_filters}×{n_filters}: its rank is at most n = {n_filters} < kh·kw = {d}")
        return _right(f"m = {truth}: {why}")
    hint = ("S = RRᵀ, with one row of R per filter and one column per entry of a representative; "
            "the rank of S is at most the smaller dimension of R, and m landmarks give S̃ a rank ≤ m")
    if answer < 1:
        return _wrong("m counts landmark filters, so it is at least one", hint)
    if answer > n_filters:
        return _wrong(f"m = {answer} is more landmarks than the layer has filters", hint)
    if answer > truth:
        return _wrong(f"m = {answer} is enough, but not the smallest: fewer landmarks already make S̃ = S",
                      hint)
    return _wrong(f"with m = {answer} landmarks S̃ has rank ≤ {answer}, but S can have a larger rank", hint)


# --- lesson 03 -------------------------------------------------------------------------------------

def check_expected_off(answer: float, *, n_units: int, keep_prob: float) -> bool:
    """Exercise (lesson 03): the expected number of filters one random keep-mask switches off."""
    truth = n_units * (1 - keep_prob)
    answer = float(answer)
    if abs(answer - truth) < 0.5:
        return _right(f"{truth:.1f} filters: each is off with probability 1 − q")
    hint = ("each filter is switched off independently, with probability 1 − q; the expected count is "
            "the sum of these probabilities over all filters (linearity of expectation)")
    if abs(answer - n_units * keep_prob) < 0.5:
        return _wrong(f"{answer:g} is how many filters stay on: q is the keep probability", hint)
    if 0 < answer <= 1:
        return _wrong(f"{answer:g} looks like a probability; the question asks for a number of filters", hint)
    return _wrong(f"{answer:g} is too {'high' if answer > truth else 'low'}", hint)


# --- lesson 04 -------------------------------------------------------------------------------------

def _two_player_game(masks: Tensor) -> Tensor:
    """Values of the lesson-04 hand game for (K, 2) 0/1 masks: v(∅), v({1}), v({2}), v({1,2}) as stated."""
    z1, z2 = masks[:, 0], masks[:, 1]
    return 1 * z1 * (1 - z2) + 3 * z2 * (1 - z1) + 6 * z1 * z2


def check_two_player_shapley(answer: float) -> bool:
    """Exercise (lesson 04): φ_1 of the two-filter hand game of the lesson, worked out by hand."""
    from pruning_lib.criteria.snpfi import exact_shapley

    phi = exact_shapley(_two_player_game, 2)
    truth = float(phi[0])
    full = _two_player_game(torch.ones(1, 2))
    alone = _two_player_game(torch.tensor([[1.0, 0.0]]))
    other = _two_player_game(torch.tensor([[0.0, 1.0]]))
    answer = float(answer)
    if abs(answer - truth) < 1e-9:
        return _right(f"φ_1 = {truth:g}: the mean of its gains in the two orders "
                      f"(first: +{float(alone):g}; second: +{float(full - other):g})")
    hint = ("write down the two orders in which the filters can join; in each, filter one's gain is "
            "v(with it) − v(without it); φ_1 is the mean of the two gains")
    if abs(answer - float(alone)) < 1e-9:
        return _wrong(f"{answer:g} is filter one's gain when it joins first; it also has an order where it "
                      "joins second", hint)
    if abs(answer - float(full - other)) < 1e-9:
        return _wrong(f"{answer:g} is filter one's gain when it joins second; it also has an order where it "
                      "joins first", hint)
    if abs(answer - float(phi[1])) < 1e-9:
        return _wrong(f"{answer:g} is the other filter's Shapley value", hint)
    if abs(answer - float(full)) < 1e-9:
        return _wrong(f"{answer:g} is the value of the whole team, which the Shapley values share", hint)
    return _wrong(f"{answer:g} is not φ_1", hint)


def check_shapley_sum(answer: float, *, v_all: float, v_empty: float, n_filters: int) -> bool:
    """Exercise (lesson 04): what a layer's sampled Shapley values add up to, from v(all) and v(∅)."""
    truth = v_all - v_empty
    answer = float(answer)
    if abs(answer - truth) < 1e-6:
        return _right(f"Σ_i φ_i = v(all) − v(∅) = {truth:g}, for every sampled order and so for any number "
                      "of them (efficiency)")
    hint = ("follow one order: each filter's marginal contribution starts where the previous one ended, "
            "so the contributions along the order telescope")
    if abs(answer + truth) < 1e-6:
        return _wrong(f"{answer:g} has the wrong sign: the sum runs from no filter to all filters", hint)
    if abs(answer - v_all) < 1e-6 or abs(answer - v_empty) < 1e-6:
        return _wrong(f"{answer:g} is one of the two values; the sum involves both", hint)
    if abs(answer - truth * n_filters) < 1e-6 or abs(answer - truth / n_filters) < 1e-6:
        return _wrong(f"{answer:g} scales with the number of filters, but the total to share does not", hint)
    return _wrong(f"{answer:g} is not the sum of the Shapley values", hint)


# --- lesson 05 -------------------------------------------------------------------------------------

def check_stop_index(answer: int, scores: Sequence[float]) -> bool:
    """Exercise (lesson 05): the block index where the layer-pruning stop rule cuts (``pls.stop_index``)."""
    from pruning_lib.criteria.pls import stop_index

    truth = stop_index(scores)
    answer = int(answer)
    if answer == truth:
        return _right(f"index {truth}: the first block whose successor does not score higher")
    hint = ("walk from index zero while the next score is strictly higher than the current one; "
            "a tie is not a rise")
    if not 0 <= answer < len(scores):
        return _wrong(f"{answer} is not an index of the score list (indices start at zero)", hint)
    if answer > truth and answer == max(range(len(scores)), key=lambda i: scores[i]):
        return _wrong(f"index {answer} has the highest score, but the rule does not look for the maximum: "
                      "it stops earlier", hint)
    if answer > truth:
        return _wrong(f"the rule never reaches index {answer}: some earlier block is followed by a score "
                      "that is not higher", hint)
    return _wrong(f"too early: after index {answer} the score still rises, so the walk goes on", hint)


def check_max_mean_vip(answer: float) -> bool:
    """Exercise (lesson 05): the largest possible block score (mean VIP), for any block and data."""
    truth = 1.0                                    # Σ_j VIP_j² = p  ⇒  mean VIP ≤ √(p / p)
    answer = float(answer)
    if abs(answer - truth) < 1e-9:
        return _right(f"{truth:g}: Σ VIP² = p, so mean VIP ≤ √(mean VIP²) = {truth:g}, with equality only "
                      "when every VIP is the same")
    hint = ("Σ_j VIP_j² = p tells you the mean of the VIP² over the p features; then use "
            "mean(x) ≤ √(mean(x²))")
    if answer > truth:
        return _wrong(f"{answer:g} is above the ceiling (p is the sum of the squares, not a mean)", hint)
    return _wrong(f"{answer:g} is below the ceiling: a block whose VIPs are all equal scores higher", hint)


def check_block_score(answer: float, vip_squared: Sequence[float]) -> bool:
    """Exercise (lesson 05): the block score s_l (mean VIP) of a block whose squared VIPs are given."""
    squares = torch.tensor([float(v) for v in vip_squared], dtype=torch.float64)
    truth = float(squares.sqrt().mean())
    answer = float(answer)
    if abs(answer - truth) < 5e-3:
        where = ("at the ceiling: every VIP is the same" if bool((squares == squares[0]).all())
                 else "below the ceiling, because the VIPs are not all equal")
        return _right(f"s_l = {truth:.3f}, the mean of √VIP² over the {len(squares)} features: {where}")
    hint = "s_l is the mean of the VIPs themselves: take the square root of each VIP² first, then average"
    if abs(answer - float(squares.mean())) < 5e-3:
        return _wrong(f"{answer:g} is the mean of the squares VIP², the same for every block", hint)
    if abs(answer - float(squares.sqrt().sum())) < 5e-3:
        return _wrong(f"{answer:g} is the sum of the VIPs, not their mean", hint)
    if answer > 1:
        return _wrong(f"{answer:g} is above the ceiling the math section derives", hint)
    return _wrong(f"{answer:g} is not s_l", hint)


# --- lesson 06 -------------------------------------------------------------------------------------

def check_own_mac_share(answer: float, model: nn.Module, layer: str, n_removed: int,
                        example_input: Tensor, *, exclude: Sequence[str] = ()) -> bool:
    """Exercise (lesson 06): the share (%) of ``model``'s MACs saved inside ``layer`` alone.

    ``layer`` loses ``n_removed`` filters; own-layer counting, tolerance 0.05 percentage points.
    """
    conv = dict(model.named_modules())[layer]
    total = metrics.count_macs(model, example_input, exclude=exclude)
    layer_share = 100 * metrics.conv_macs(model, example_input)[layer] / total
    truth = layer_share * n_removed / conv.out_channels
    answer = float(answer)
    if abs(answer - truth) < 0.05:
        return _right(f"{truth:.2f}% of the MACs: {n_removed}/{conv.out_channels} of {layer}'s share")
    hint = (f"take {layer}'s MACs (metrics.conv_macs), times the fraction of its filters removed, over the "
            "total MACs" + (" without the front end" if exclude else "") + ", in percent; the next layer "
            "does not count here")
    if abs(answer - layer_share) < 0.05:
        return _wrong(f"{answer:g}% is the whole layer's share, as if every filter went", hint)
    if abs(answer - layer_share * (conv.out_channels - n_removed) / conv.out_channels) < 0.05:
        return _wrong(f"{answer:g}% is the share of the filters that stay", hint)
    if abs(100 * answer - truth) < 0.05:
        return _wrong(f"{answer:g} is a fraction; the question asks for a percentage", hint)
    if exclude and abs(answer - truth * total / metrics.count_macs(model, example_input)) < 0.05:
        return _wrong(f"{answer:g}% is a share of all MACs, front end included", hint)
    return _wrong(f"{answer:g}% is too {'high' if answer > truth else 'low'}", hint)


# --- lesson 07 -------------------------------------------------------------------------------------

CRITERIA_QUIZ = ("l1", "fpgm", "operator_norm", "similarity", "mean_activation", "apoz", "hrank",
                 "ensemble", "snpfi", "pls_layer")


def _active_in_quiz() -> frozenset[str]:
    """The quiz's criteria that need data: the library's active criteria and lessons 03–05's methods."""
    from pruning_lib.criteria import ACTIVE_CRITERIA

    return frozenset(ACTIVE_CRITERIA) | {"ensemble", "snpfi", "pls_layer"}


def check_active_criteria(answer: Iterable[str]) -> bool:
    """Exercise (lesson 07): which of ``CRITERIA_QUIZ`` need data (are active)?"""
    active = _active_in_quiz()
    given = set(answer)
    unknown = given - set(CRITERIA_QUIZ)
    hint = ("a criterion is active when computing it needs a forward pass on images (activations, "
            "labels or a loss); a passive one reads only conv.weight")
    if unknown:
        return _wrong(f"not in the quiz: {sorted(unknown)}",
                      "choose among the names in checks.CRITERIA_QUIZ; " + hint)
    if given == active:
        return _right(f"active: {sorted(active)}; the rest read only the weights")
    wrong, missing = sorted(given - active), len(active - given)
    parts = ([f"{wrong} read only the weights"] if wrong else []) + (
        [f"{missing} criteria that need data are missing"] if missing else [])
    return _wrong("; ".join(parts), hint)
