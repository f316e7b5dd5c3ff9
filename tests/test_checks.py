"""Exercise checkers: True for a right answer; for a wrong one False, what is wrong and a hint, never the
expected value (in the printed text or in the checker's docstring).

Every ``check_*`` function of ``pruning_lib.lab.checks`` must have an entry in ``CASES``: a checker added
without one fails ``test_every_checker_has_cases``.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import Tensor

from pruning_lib import metrics, models, surgery
from pruning_lib.criteria import PASSIVE_CRITERIA, l1_norm, operator_norm, spectral_norm
from pruning_lib.lab import checks

pytestmark = pytest.mark.usefixtures("single_thread")

EXAMPLE = torch.zeros(1, 1, 28, 28)
CHECKERS = sorted(name for name, fn in inspect.getmembers(checks, inspect.isfunction)
                  if name.startswith("check_") and fn.__module__ == checks.__name__)


def linf(weight: Tensor) -> Tensor:
    return weight.abs().flatten(1).amax(dim=1)


def raises(weight: Tensor) -> Tensor:
    raise RuntimeError("not implemented yet")


def spectral_loop(weight: Tensor) -> Tensor:
    return torch.stack([torch.linalg.svdvals(f.flatten(1))[0] for f in weight])


# --- the leak detector -------------------------------------------------------------------------------

NUMBER = re.compile(r"-?[0-9][0-9,]*(?:\.[0-9]+)?")


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text`` ("4,608" → 4608.0, "φ_2" → 2.0)."""
    return [float(m.replace(",", "")) for m in NUMBER.findall(text) if m.replace(",", "").strip("-")]


@dataclass(frozen=True)
class Case:
    """A checker bound to its exercise's context, with right and wrong answers and the expected value.

    The expected value is given as the numbers that must not be printed (``numbers``, within ``tol``),
    a list that must not be printed in order (``sequence``), or names that must not be printed unless
    the reader's answer contains them (``names``).
    """

    check: Callable[[Any], bool]
    right: Any
    wrong: tuple[Any, ...]
    numbers: tuple[float, ...] = ()
    sequence: tuple[float, ...] = ()
    names: frozenset[str] = frozenset()
    tol: float = 1e-6

    def leaks(self, text: str, answer: Any = ()) -> list[str]:
        """The parts of the expected value that ``text`` gives away (empty when none)."""
        found = numbers_in(text)
        out = [f"number {x:g}" for x in found if any(abs(x - t) <= self.tol for t in self.numbers)]
        k = len(self.sequence)
        if k and any(all(abs(a - b) <= self.tol for a, b in zip(found[i:i + k], self.sequence, strict=True))
                     for i in range(len(found) - k + 1)):
            out.append(f"sequence {list(self.sequence)}")
        given = set(answer) if isinstance(answer, (set, frozenset, list, tuple)) else set()
        out += [f"name {n!r}" for n in sorted(self.names - given) if re.search(rf"\b{re.escape(n)}\b", text)]
        return out


def test_the_leak_detector_catches_the_old_messages():
    shapley = Case(checks.check_two_player_shapley, 2, (1,), numbers=(2,))
    assert shapley.leaks("✗ expected 2, you said 1") == ["number 2"]
    assert shapley.leaks("✗ that is φ_2") == ["number 2"]
    assert shapley.leaks("✗ 1 is filter one's gain when it joins first") == []
    assert Case(checks.check_conv_params, 0, (1,), numbers=(4608,)).leaks("has 4,608 parameters") != []
    group = Case(checks.check_coupled, [], ([],), names=frozenset({"stem.conv", "layer1.0.conv2.conv"}))
    assert group.leaks("missing ['layer1.0.conv2.conv']", ["stem.conv"]) == ["name 'layer1.0.conv2.conv'"]
    assert group.leaks("['stem.conv'] do not add into the same sum", ["stem.conv"]) == []
    hand = Case(checks.check_operator_norm_by_hand, [], ([],), sequence=(1, 0, 1), tol=1e-3)
    assert hand.leaks("scores [1.0, 0.0, 1.0] expected") == ["sequence [1, 0, 1]"]
    assert hand.leaks("scores lie in [0, 1]; you said [1.0, 0.5, 0.0]") == []


# --- one case per checker ----------------------------------------------------------------------------

RESNET_GROUP = ("stem.conv", "layer1.0.conv2.conv", "layer1.1.conv2.conv", "layer1.2.conv2.conv")
ACTIVE = frozenset({"mean_activation", "apoz", "hrank", "ensemble", "snpfi", "pls_layer"})
STOP_SCORES = [0.90, 0.93, 0.95, 0.95, 0.97, 0.92]
BLOCK_VIP2 = [2.0, 1.0, 1.0, 0.0]        # Σ = p = 4; s_l = (√2 + 1 + 1 + 0) / 4 ≈ 0.854


PASSIVE_NAMES = {"l1", "l2", "fpgm", "spectral", "operator_norm", "operator_norm_eq"}
# rescale_net's filter 0 scaled by α: the criteria that still rank it last of the six (worked out with
# surgery.rescale_filter and criteria.PASSIVE_CRITERIA); α = 1.5 splits them
STILL_LAST = {100.0: PASSIVE_NAMES, 0.01: set(), 1.5: PASSIVE_NAMES - {"l1", "l2"}}


def rescale_net() -> torch.nn.Module:
    """One ConvBNReLU(2 → 6), 3×3, with seeded random filters, in eval mode (the global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        net = torch.nn.Sequential(models.ConvBNReLU(2, 6)).eval()
    with torch.no_grad():
        net[0].conv.weight.copy_(torch.randn(6, 2, 3, 3, generator=torch.Generator().manual_seed(3)))
    return net


def mac_net() -> tuple[torch.nn.Module, Tensor]:
    """conv 0: 4 filters on 1 channel, 3×3 on 5×5 'same': 25·4·9 = 900 MACs; conv 1: 25·2·4 = 200."""
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1, bias=False),
                              torch.nn.Conv2d(4, 2, 1, bias=False))
    return net, torch.zeros(1, 1, 5, 5)


@functools.cache
def cases() -> dict[str, list[Case]]:
    resnet = models.build("resnet20").eval()
    biased = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3))                 # 3·2·9 + 3 = 57
    plain = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, bias=False))      # 4·2·9 = 72
    conv = torch.nn.Conv2d(2, 3, 3, padding=1, bias=False)
    x10 = torch.zeros(1, 2, 10, 10)                                        # 10·10·2·3·9 = 5,400 MACs
    net, x5 = mac_net()
    share = 100 * 900 / 4 / 1100                                           # 20.45%
    w_spec = torch.randn(6, 3, 3, 3, generator=torch.Generator().manual_seed(1))
    still_net = rescale_net()
    ex = checks.OPERATOR_NORM_EXERCISE
    group = list(RESNET_GROUP)
    return {
        "check_linf_criterion": [Case(
            checks.check_linf_criterion, linf,
            (l1_norm, raises, lambda w: w.abs().amax(), lambda w: w.flatten(1).amax(dim=1),
             lambda w: w.flatten(1).norm(dim=1), lambda w: torch.zeros(w.shape[0]),
             lambda w: w.abs().flatten(1)[:, :2].amax(1)),                # right on the hand case only
            sequence=(3.0, 0.5))],
        "check_conv_params": [
            Case(lambda a: checks.check_conv_params(a, biased, "0"), 57,
                 (54, 0, 4 * 3 * 9 + 3, 5 * 2 * 9 + 3), numbers=(57,)),
            Case(lambda a: checks.check_conv_params(a, plain, "0"), 72, (76, 8 * 2 * 9, 4 * 5 * 9, 1),
                 numbers=(72,))],
        "check_macs": [Case(lambda a: checks.check_macs(a, conv, x10), 5400, (10800, 5000, 0, 6000),
                            numbers=(5400,), tol=0.5)],
        "check_coupled": [Case(
            lambda a: checks.check_coupled(a, resnet, "layer1.1.conv2.conv", EXAMPLE), group,
            (["layer1.1.conv2.conv"], group[:2], group[1:], group + ["layer1.0.conv1.conv"], ["no.such.conv"],
             ["layer1.1.conv2.conv", "layer1.0.conv1.conv"]),
            names=frozenset(group) - {"layer1.1.conv2.conv"})],
        "check_spectral_norm": [Case(
            checks.check_spectral_norm, spectral_loop,
            (lambda w: w.flatten(1).norm(dim=1), lambda w: torch.linalg.svdvals(w.flatten(2))[:, -1],
             lambda w: torch.linalg.svdvals(w.flatten(1, 2))[:, 0], raises, lambda w: torch.zeros(w.shape[0]),
             lambda w: torch.linalg.svdvals(w.flatten(2))),                  # all singular values
            numbers=tuple(spectral_norm(w_spec).tolist()), tol=1e-3)],
        "check_operator_norm_by_hand": [Case(
            checks.check_operator_norm_by_hand, [1.0, 0.0, 1.0],
            ([0.0, 0.0, 0.0], [1.0, 0.5, 0.0], [1.0], [1.0, 0.0, -1.0], [4.0, 2.0, 2.0],
             operator_norm(ex, center=False).tolist(), [0.5, 0.0, 0.5]),
            sequence=(1.0, 0.0, 1.0), tol=1e-3)],
        "check_active_by_hand": [Case(
            checks.check_active_by_hand, {"mean_activation": 14 / 9, "apoz": 4 / 9, "hrank": 2},
            (dict.fromkeys(checks.ACTIVE_BY_HAND_KEYS, 0.0),                                 # the stub
             {"mean_activation": 7 / 9, "apoz": 4 / 9, "hrank": 2},                         # filter 0's
             {"mean_activation": 14 / 9, "apoz": 5 / 9, "hrank": 3},                        # APoZ, max rank
             {"mean_activation": 20 / 9, "apoz": 4, "hrank": 2.5},
             {"mean_activation": 8 / 9, "apoz": 4 / 9, "hrank": 1}, [14 / 9, 4 / 9, 2],
             {"mean_activation": 1}),
            numbers=(14 / 9, 4 / 9, 2.0), tol=1e-3)],
        "check_tells_apart": [Case(
            checks.check_tells_apart, {"mean_activation"},
            (set(), {"apoz"}, {"apoz", "hrank"}, {"mean_activation", "hrank"}, {"l1"},
             list(checks.ACTIVE_BY_HAND_KEYS)),
            names=frozenset({"mean_activation"}))],
        "check_still_last_to_go": [
            Case(lambda a, alpha=alpha: checks.check_still_last_to_go(a, still_net, "0.conv", 0, alpha),
                 truth, tuple(w for w in (None, set(), {"l1"}, {"random"}, {"magic"}, PASSIVE_NAMES,
                                          truth | {"l1"}, set(sorted(truth)[:1])) if w != truth),
                 names=frozenset(truth))
            for alpha, truth in STILL_LAST.items()],
        "check_cosine_distance": [Case(checks.check_cosine_distance, 0.4, (0.0, 0.6, 0.8944, 1.4, 3.0, -0.4),
                                       numbers=(0.4,))],
        "check_nystrom_exact_m": [
            Case(lambda a: checks.check_nystrom_exact_m(a, kernel_size=(5, 5), n_filters=256), 25,
                 (0, 9, 24, 26, 64, 256, 300), numbers=(25,)),
            Case(lambda a: checks.check_nystrom_exact_m(a, kernel_size=(7, 7), n_filters=32), 32,
                 (49, 16, 31, 33, 0), numbers=(32,))],
        "check_shapley_sum": [Case(
            lambda a: checks.check_shapley_sum(a, v_all=-0.2, v_empty=-2.3, n_filters=128), 2.1,
            (-2.1, -0.2, -2.3, 268.8, 2.1 / 128, 0.0, -2.5), numbers=(2.1,))],
        "check_two_player_shapley": [Case(checks.check_two_player_shapley, 2, (1, 3, 4, 6, 0, 2.5),
                                          numbers=(2,))],
        "check_expected_off": [Case(
            lambda a: checks.check_expected_off(a, n_units=1056, keep_prob=0.8), 211.2,
            (844.8, 0.2, 0.8, 0, 1056, 150), numbers=(211.2,), tol=0.5)],
        "check_stop_index": [Case(lambda a: checks.check_stop_index(a, STOP_SCORES), 2,
                                  (4, 3, 0, 1, 5, 6, -1), numbers=(2,))],
        "check_block_score": [Case(lambda a: checks.check_block_score(a, BLOCK_VIP2), 0.8536,
                                   (1.0, 3.414, 0.0, 0.5, 1.2, 0.75), numbers=(0.8536,), tol=5e-3)],
        "check_max_mean_vip": [Case(checks.check_max_mean_vip, 1.0, (0, 64, 0.5, 2, 8), numbers=(1,))],
        "check_own_mac_share": [Case(
            lambda a: checks.check_own_mac_share(a, net, "0", 1, x5), share,
            (4 * share, 3 * share, share / 100, 100 * (225 + 50) / 1100, 0, 50), numbers=(share,), tol=0.05)],
        "check_active_criteria": [Case(
            checks.check_active_criteria, sorted(ACTIVE),
            (["hrank"], [], ["l1", *ACTIVE], ["magic"], list(checks.CRITERIA_QUIZ),
             ["mean_activation", "l1"]),
            names=ACTIVE)],
    }


@pytest.mark.parametrize("name", CHECKERS)
def test_every_checker_has_cases(name):
    assert cases().get(name), f"checks.{name} has no entry in CASES: add its right and wrong answers"


def test_cases_name_only_existing_checkers():
    assert set(cases()) <= set(CHECKERS)


@pytest.mark.parametrize("name", CHECKERS)
def test_checker_accepts_the_expected_answer(capsys, name):
    for case in cases().get(name, []):
        assert case.check(case.right) is True
        assert capsys.readouterr().out.startswith("✓")


@pytest.mark.parametrize("name", CHECKERS)
def test_wrong_answers_say_what_is_wrong_with_a_hint_and_never_the_answer(capsys, name):
    assert cases().get(name)
    for case in cases()[name]:
        for answer in case.wrong:
            assert case.check(answer) is False, answer
            out = capsys.readouterr().out
            assert out.startswith("✗") and "\n  Hint: " in out, out
            assert case.leaks(out, answer) == [], (answer, out)


@pytest.mark.parametrize("name", CHECKERS)
def test_docstrings_do_not_state_the_answer(name):
    doc = inspect.getdoc(getattr(checks, name)) or ""
    assert doc, f"checks.{name} has no docstring"
    for case in cases().get(name, []):
        assert case.leaks(doc) == [] and case.leaks(checks.__doc__ or "") == [], doc


# --- what the messages recognise -------------------------------------------------------------------

def out_of(capsys, check: Callable[[Any], bool], answer: Any) -> str:
    check(answer)
    return capsys.readouterr().out


@pytest.mark.parametrize(("fn", "reason"), [
    (l1_norm, "ℓ1 norm"),
    (raises, "raised RuntimeError: not implemented yet"),
    (lambda w: w.abs().amax(), "returned shape ()"),
    (lambda w: w.flatten(1).amax(dim=1), "largest signed weight"),
    (lambda w: w.abs().flatten(1)[:, :2].amax(1), "on random weights"),
])
def test_linf_checker_names_the_slip(capsys, fn, reason):
    assert reason in out_of(capsys, checks.check_linf_criterion, fn)


def test_check_conv_params_names_the_slip(capsys):
    biased = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3))
    assert "has a bias" in out_of(capsys, lambda a: checks.check_conv_params(a, biased, "0"), 54)
    vgg = models.build("vgg16_slim")
    assert checks.check_conv_params(32 * 16 * 9, vgg, "features.conv3.conv") is True
    assert "(32, 16, 3, 3)" in capsys.readouterr().out
    odd = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3, bias=False))        # 5·3·9 = 135
    check = functools.partial(checks.check_conv_params, model=odd, layer="0")
    assert "not the number of its filters" in out_of(capsys, check, 7 * 3 * 9)
    assert "not its input channels" in out_of(capsys, check, 5 * 4 * 9)


def test_check_macs_tolerance_and_flops(capsys):
    conv = torch.nn.Conv2d(2, 3, 3, padding=1, bias=False)
    x = torch.zeros(1, 2, 10, 10)
    truth = 10 * 10 * 2 * 3 * 9
    assert metrics.count_macs(conv, x) == truth
    assert checks.check_macs(truth + 27, conv, x) is True            # within 0.5 %
    assert checks.check_macs(truth - 28, conv, x) is False           # just over 0.5 %
    assert "too low" in capsys.readouterr().out
    assert "FLOPs" in out_of(capsys, lambda a: checks.check_macs(a, conv, x), 2 * truth)


def test_check_coupled_accepts_any_order_and_names_only_the_readers_mistakes(capsys):
    resnet = models.build("resnet20").eval()
    assert checks.check_coupled(reversed(RESNET_GROUP), resnet, "stem.conv", EXAMPLE) is True
    assert checks.check_coupled(["layer1.0.conv1.conv"], resnet, "layer1.0.conv1.conv", EXAMPLE) is True
    capsys.readouterr()
    checks.check_coupled([*RESNET_GROUP, "layer1.0.conv1.conv"], resnet, "stem.conv", EXAMPLE)
    assert "['layer1.0.conv1.conv'] do not add into the same sum" in capsys.readouterr().out
    checks.check_coupled(RESNET_GROUP[:2], resnet, "stem.conv", EXAMPLE)
    assert "2 coupled conv(s) are missing" in capsys.readouterr().out


def test_check_operator_norm_recognises_a_missing_centring(capsys):
    uncentred = operator_norm(checks.OPERATOR_NORM_EXERCISE, center=False).tolist()
    assert "without centring" in out_of(capsys, checks.check_operator_norm_by_hand, uncentred)
    assert "lie in [0, 1]" in out_of(capsys, checks.check_operator_norm_by_hand, [1.0, 0.0, -1.0])


def test_check_cosine_distance_recognises_the_similarity(capsys):
    assert "cosine similarity" in out_of(capsys, checks.check_cosine_distance, 0.6)


@pytest.mark.parametrize(("kernel", "n", "truth"), [((3, 3), 64, 9), ((5, 5), 256, 25), ((7, 7), 32, 32),
                                                    ((7, 7), 16, 16), ((1, 1), 8, 1)])
def test_check_nystrom_exact_m_is_min_of_n_and_kernel_area(capsys, kernel, n, truth):
    check = functools.partial(checks.check_nystrom_exact_m, kernel_size=kernel, n_filters=n)
    assert check(truth) is True and capsys.readouterr().out.startswith(f"✓ m = {truth}")
    assert "not the smallest" in out_of(capsys, check, truth + 1) or truth == n
    assert "can have a larger rank" in out_of(capsys, check, truth - 1) or truth == 1


def test_check_own_mac_share_hand_case_and_front_end(capsys):
    net, x = mac_net()
    assert metrics.count_macs(net, x) == 1100
    truth = 100 * 900 / 4 / 1100
    assert checks.check_own_mac_share(round(truth, 2), net, "0", 1, x) is True
    assert "whole layer's share" in out_of(capsys, lambda a: checks.check_own_mac_share(a, net, "0", 1, x),
                                           4 * truth)
    assert "too high" in out_of(capsys, lambda a: checks.check_own_mac_share(a, net, "0", 1, x),
                                100 * (225 + 50) / 1100)          # counted conv 1's inputs too

    from pruning_lib.audio import models as audio_models

    dcase, clip = audio_models.DCASE21Net().eval(), audio_models.example_input()
    cnn_macs = metrics.count_macs(dcase, clip, exclude=("frontend",))
    share = metrics.conv_macs(dcase, clip)["features.conv2.conv"] / cnn_macs
    check = functools.partial(checks.check_own_mac_share, model=dcase, layer="features.conv2.conv",
                              n_removed=5, example_input=clip)
    assert check(100 * share * 5 / 16, exclude=("frontend",)) is True
    assert check(100 * share * 5 / 16) is False


def test_check_stop_index_recognises_the_maximum(capsys):
    assert "highest score" in out_of(capsys, lambda a: checks.check_stop_index(a, STOP_SCORES), 4)
    assert "too early" in out_of(capsys, lambda a: checks.check_stop_index(a, STOP_SCORES), 1)


def test_check_block_score_recognises_squares_and_sums(capsys):
    check = functools.partial(checks.check_block_score, vip_squared=BLOCK_VIP2)
    assert "mean of the squares" in out_of(capsys, check, 1.0)
    assert "sum of the VIPs" in out_of(capsys, check, 2 ** 0.5 + 2)
    assert checks.check_block_score(1.0, [1.0, 1.0, 1.0]) is True        # all equal: the ceiling


def test_check_shapley_sum_recognises_sign_and_scaling(capsys):
    check = functools.partial(checks.check_shapley_sum, v_all=-0.2, v_empty=-2.3, n_filters=128)
    assert "wrong sign" in out_of(capsys, check, -2.1)
    assert "scales with the number of filters" in out_of(capsys, check, 2.1 * 128)
    assert checks.check_shapley_sum(0.5, v_all=1.0, v_empty=0.5, n_filters=3) is True


def test_check_two_player_shapley_recognises_each_slip(capsys):
    assert "joins first" in out_of(capsys, checks.check_two_player_shapley, 1)
    assert "joins second" in out_of(capsys, checks.check_two_player_shapley, 3)
    assert "other filter's" in out_of(capsys, checks.check_two_player_shapley, 4)
    assert "whole team" in out_of(capsys, checks.check_two_player_shapley, 6)


def test_check_active_criteria(capsys):
    assert checks.check_active_criteria(list(checks.CRITERIA_QUIZ)[4:]) is True
    out = out_of(capsys, checks.check_active_criteria, ["l1", "hrank"])
    assert "['l1'] read only the weights" in out and "5 criteria that need data are missing" in out
    assert "not in the quiz" in out_of(capsys, checks.check_active_criteria, ["magic"])


def test_check_expected_off_recognises_the_kept_count(capsys):
    out = out_of(capsys, lambda a: checks.check_expected_off(a, n_units=1056, keep_prob=0.8), 844.8)
    assert "stay on" in out


def test_check_active_by_hand_names_each_slip(capsys):
    check = checks.check_active_by_hand
    out = out_of(capsys, check, {"mean_activation": 7 / 9, "apoz": 5 / 9, "hrank": 3})
    assert "filter 0's score" in out and "APoZ itself" in out and "largest rank" in out
    out = out_of(capsys, check, {"mean_activation": 20 / 9, "apoz": 4, "hrank": 2.5})
    assert "before the ReLU" in out and "a count of positions" in out and "whole number" in out
    out = out_of(capsys, check, {"mean_activation": 14, "apoz": 4 / 9, "hrank": 2})
    assert "a sum over the positions" in out and "(right: ['apoz', 'hrank'])" in out
    assert "stub line" in out_of(capsys, check, dict.fromkeys(checks.ACTIVE_BY_HAND_KEYS, 0))
    assert check({"mean_activation": 1.556, "apoz": 0.444, "hrank": 2.0}) is True      # rounded is fine


def test_the_active_toy_matches_the_lessons_hand_values():
    scores = checks._active_toy_scores()
    assert [round(9 * v) for v in scores["mean_activation"].tolist()[:2]] == [7, 3]
    assert [round(9 * v) for v in scores["apoz"].tolist()[:2]] == [4, 2]
    assert scores["hrank"].tolist()[:2] == [2.0, 1.0]
    state = torch.random.get_rng_state()
    checks._active_toy_scores()
    assert torch.equal(state, torch.random.get_rng_state())


def test_check_tells_apart_names_only_the_readers_names(capsys):
    out = out_of(capsys, checks.check_tells_apart, {"apoz", "hrank"})
    assert "['apoz', 'hrank'] give the two filters the same score" in out and "1 criterion" in out
    assert checks.check_tells_apart("mean_activation") is True                  # a single name is fine


@pytest.mark.parametrize(("alpha", "truth"), STILL_LAST.items())
def test_check_still_last_to_go_follows_the_rescaled_ranks(capsys, alpha, truth):
    net = rescale_net()
    weight = surgery.rescale_filter(net, "0.conv", 0, alpha)[0].conv.weight.detach()
    by_rank = {name for name in PASSIVE_NAMES
               if int((PASSIVE_CRITERIA[name](weight) < PASSIVE_CRITERIA[name](weight)[0]).sum()) == 5}
    assert by_rank == truth
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert checks.check_still_last_to_go(truth, net, "0.conv", 0, alpha) is True
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())       # the model is untouched
    check = functools.partial(checks.check_still_last_to_go, model=net, conv="0.conv", index=0, alpha=alpha)
    assert "stub None" in out_of(capsys, check, None)
    assert "random reads no weights" in out_of(capsys, check, {"random"})
