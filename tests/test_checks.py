"""Exercise checkers: True for a right answer, False (with a reason, never an exception) otherwise."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from pruning_lib import metrics, models
from pruning_lib.criteria import l1_norm
from pruning_lib.lab import checks

pytestmark = pytest.mark.usefixtures("single_thread")

EXAMPLE = torch.zeros(1, 1, 28, 28)


def linf(weight: Tensor) -> Tensor:
    return weight.abs().flatten(1).amax(dim=1)


def raises(weight: Tensor) -> Tensor:
    raise RuntimeError("not implemented yet")


# --- check_linf_criterion ------------------------------------------------------------------------

def test_linf_checker_accepts_a_correct_implementation(capsys):
    assert checks.check_linf_criterion(linf) is True
    assert capsys.readouterr().out.startswith("✓")


@pytest.mark.parametrize(("fn", "reason"), [
    (l1_norm, "expected [3.0, 0.5]"),
    (raises, "raised RuntimeError: not implemented yet"),
    (lambda w: w.abs().amax(), "shape (2,)"),                     # one number, not one per filter
    (lambda w: w.flatten(1).amax(dim=1), "expected [3.0, 0.5]"),  # forgot the absolute value
])
def test_linf_checker_rejects_wrong_answers_without_raising(capsys, fn, reason):
    assert checks.check_linf_criterion(fn) is False
    out = capsys.readouterr().out
    assert out.startswith("✗") and reason in out


# --- check_conv_params ------------------------------------------------------------------------------

def test_check_conv_params(capsys):
    vgg = models.build("vgg16_slim")
    assert checks.check_conv_params(32 * 16 * 9, vgg, "features.conv3.conv") is True
    assert "4,608 parameters" in capsys.readouterr().out
    assert checks.check_conv_params(32 * 9, vgg, "features.conv3.conv") is False
    assert "(32, 16, 3, 3)" in capsys.readouterr().out


def test_check_conv_params_counts_the_bias():
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3))
    assert checks.check_conv_params(3 * 2 * 9 + 3, net, "0") is True
    assert checks.check_conv_params(3 * 2 * 9, net, "0") is False


# --- check_macs ---------------------------------------------------------------------------------------

def test_check_macs_tolerance():
    conv = torch.nn.Conv2d(2, 3, 3, padding=1, bias=False)
    x = torch.zeros(1, 2, 10, 10)
    truth = 10 * 10 * 2 * 3 * 9                                    # 5,400
    assert metrics.count_macs(conv, x) == truth
    assert checks.check_macs(truth, conv, x) is True
    assert checks.check_macs(truth + 27, conv, x) is True          # within 0.5 %
    assert checks.check_macs(truth - 28, conv, x) is False         # just over 0.5 %
    assert checks.check_macs(2 * truth, conv, x) is False          # FLOPs instead of MACs


# --- check_coupled ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def resnet():
    return models.build("resnet20").eval()


def test_check_coupled(resnet, capsys):
    group = ["stem.conv", "layer1.0.conv2.conv", "layer1.1.conv2.conv", "layer1.2.conv2.conv"]
    assert checks.check_coupled(group, resnet, "layer1.1.conv2.conv", EXAMPLE) is True
    assert checks.check_coupled(reversed(group), resnet, "stem.conv", EXAMPLE) is True
    capsys.readouterr()
    assert checks.check_coupled(group[:2], resnet, "stem.conv", EXAMPLE) is False
    assert "missing ['layer1.1.conv2.conv', 'layer1.2.conv2.conv']" in capsys.readouterr().out
    assert checks.check_coupled(group + ["layer1.0.conv1.conv"], resnet, "stem.conv", EXAMPLE) is False
    assert "not coupled ['layer1.0.conv1.conv']" in capsys.readouterr().out
    assert checks.check_coupled(["layer1.0.conv1.conv"], resnet, "layer1.0.conv1.conv", EXAMPLE) is True


def test_check_spectral_norm_true_for_a_loop_false_for_l2():
    loop = lambda w: torch.stack([torch.linalg.svdvals(f.flatten(1))[0] for f in w])  # noqa: E731
    assert checks.check_spectral_norm(loop) is True
    assert checks.check_spectral_norm(lambda w: w.flatten(1).norm(dim=1)) is False


def test_check_operator_norm_by_hand():
    assert checks.check_operator_norm_by_hand([1.0, 0.0, 1.0]) is True     # worked out in the lesson
    assert checks.check_operator_norm_by_hand([1.0, 0.5, 0.0]) is False
    assert checks.check_operator_norm_by_hand([1.0]) is False


# --- lesson 02 and 06: Nyström landmarks, MAC shares ----------------------------------------------

@pytest.mark.parametrize(("kernel", "n", "truth"), [((3, 3), 64, 9), ((5, 5), 256, 25), ((7, 7), 32, 32),
                                                    ((7, 7), 16, 16), ((1, 1), 8, 1)])
def test_check_nystrom_exact_m_is_min_of_n_and_kernel_area(capsys, kernel, n, truth):
    assert checks.check_nystrom_exact_m(truth, kernel_size=kernel, n_filters=n) is True
    assert capsys.readouterr().out.startswith(f"✓ m = {truth}")
    assert checks.check_nystrom_exact_m(kernel[0] * kernel[1] + 1, kernel_size=kernel, n_filters=n) is False
    assert "min(n, kh·kw)" in capsys.readouterr().out


def test_check_own_mac_share_hand_case(capsys):
    # conv a: 4 filters on 1 channel, 3x3, on 5x5 "same": 25·4·9 = 900 MACs; conv b: 25·2·4 = 200
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1, bias=False),
                              torch.nn.Conv2d(4, 2, 1, bias=False))
    x = torch.zeros(1, 1, 5, 5)
    assert metrics.count_macs(net, x) == 1100
    truth = 100 * 900 * 1 / 4 / 1100                 # one of four filters of conv 0: 20.45%
    assert checks.check_own_mac_share(truth, net, "0", 1, x) is True
    assert checks.check_own_mac_share(round(truth, 2), net, "0", 1, x) is True
    assert checks.check_own_mac_share(100 * (225 + 50) / 1100, net, "0", 1, x) is False   # counted conv b too
    out = capsys.readouterr().out
    assert out.count("✓") == 2 and "expected 20.45%" in out


def test_check_own_mac_share_leaves_the_excluded_front_end_out():
    from pruning_lib.audio import models as audio_models

    net, clip = audio_models.DCASE21Net().eval(), audio_models.example_input()
    cnn_macs = metrics.count_macs(net, clip, exclude=("frontend",))
    share = metrics.conv_macs(net, clip)["features.conv2.conv"] / cnn_macs
    assert checks.check_own_mac_share(100 * share * 5 / 16, net, "features.conv2.conv", 5, clip,
                                      exclude=("frontend",)) is True
    assert checks.check_own_mac_share(100 * share * 5 / 16, net, "features.conv2.conv", 5, clip) is False


# --- lesson 05: the layer-pruning stop rule and the VIP ceiling ------------------------------------------

def test_check_stop_index(capsys):
    scores = [0.90, 0.93, 0.95, 0.95, 0.97, 0.92]
    assert checks.check_stop_index(2, scores) is True          # 0.95 → 0.95 is not a rise
    assert checks.check_stop_index(4, scores) is False         # the largest score is not the rule
    out = capsys.readouterr().out
    assert out.startswith("✓ index 2") and "expected 2, you said 4" in out


def test_check_max_mean_vip(capsys):
    assert checks.check_max_mean_vip(1.0) is True
    assert checks.check_max_mean_vip(64) is False              # p is the sum of squares, not the mean
    assert "Σ_j VIP_j² = p" in capsys.readouterr().out


def test_check_active_criteria(capsys):
    assert checks.check_active_criteria(["mean_activation", "apoz", "hrank", "ensemble", "snpfi",
                                         "pls_layer"]) is True
    assert checks.check_active_criteria(["mean_activation", "hrank"]) is False
    too_many = ["l1", "mean_activation", "apoz", "hrank", "ensemble", "snpfi", "pls_layer"]
    assert checks.check_active_criteria(too_many) is False
    assert checks.check_active_criteria(["magic"]) is False
    out = capsys.readouterr().out
    assert "missing ['apoz', 'ensemble', 'pls_layer', 'snpfi']" in out and "not active ['l1']" in out
    assert "not in the quiz" in out


def test_check_expected_off(capsys):
    assert checks.check_expected_off(211.2, n_units=1056, keep_prob=0.8) is True
    assert checks.check_expected_off(844.8, n_units=1056, keep_prob=0.8) is False   # the number kept
    assert "211.2" in capsys.readouterr().out


def test_check_two_player_shapley(capsys):
    assert checks.check_two_player_shapley(2) is True
    assert checks.check_two_player_shapley(1) is False          # only the order (1, 2)
    assert checks.check_two_player_shapley(3) is False          # φ_2: ½[(3 − 0) + (6 − 1)] = 4, not it either
    assert "expected 2" in capsys.readouterr().out
