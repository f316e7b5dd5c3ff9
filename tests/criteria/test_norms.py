"""Passive criteria (ℓ1, ℓ2, spectral norm, FPGM, random) and ``score_model``: hand cases, a loop reference,
invariants (permutation equivariance, positive scaling) and bad inputs."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from pruning_lib import models
from pruning_lib.criteria import PASSIVE_CRITERIA, score_model
from pruning_lib.criteria.norms import fpgm, l1_norm, l2_norm, random_scores, spectral_norm
from pruning_lib.criteria.operator_norm import operator_norm, operator_norm_equivariant

NORM_CRITERIA = {"l1": l1_norm, "l2": l2_norm, "fpgm": fpgm, "spectral": spectral_norm}


def hand_weight() -> Tensor:
    """(3, 2, 2, 2): filter 0 holds -12..-5, filter 1 holds -4..3, filter 2 holds 4..11."""
    return torch.arange(24.0).reshape(3, 2, 2, 2) - 12


# --- reference implementations: one Python loop per filter ----------------------------------------

def ref_l1(w: Tensor) -> Tensor:
    return torch.tensor([sum(abs(float(v)) for v in w[i].flatten()) for i in range(len(w))])


def ref_l2(w: Tensor) -> Tensor:
    return torch.tensor([math.sqrt(sum(float(v) ** 2 for v in w[i].flatten())) for i in range(len(w))])


def ref_fpgm(w: Tensor) -> Tensor:
    rows = [w[i].flatten().double() for i in range(len(w))]
    return torch.tensor([sum(float(torch.sqrt(((a - b) ** 2).sum())) for b in rows) for a in rows])


def ref_spectral(w: Tensor) -> Tensor:
    """Largest singular value of each filter as a (c, kh·kw) matrix, one svdvals call per filter."""
    return torch.stack([torch.linalg.svdvals(w[i].double().reshape(w.shape[1], -1))[0]
                        for i in range(len(w))])


REFERENCES = {"l1": ref_l1, "l2": ref_l2, "fpgm": ref_fpgm, "spectral": ref_spectral}


# --- hand-computed cases ---------------------------------------------------------------------------

def test_l1_hand_computed():
    # |-12..-5| sums to 68; |-4..3| = 4+3+2+1+0+1+2+3 = 16; 4..11 sums to 60
    torch.testing.assert_close(l1_norm(hand_weight()), torch.tensor([68.0, 16.0, 60.0]))


def test_l2_hand_computed():
    squares = [sum(v * v for v in range(-12, -4)), sum(v * v for v in range(-4, 4)),
               sum(v * v for v in range(4, 12))]                      # 620, 44, 492
    assert squares == [620, 44, 492]
    torch.testing.assert_close(l2_norm(hand_weight()), torch.tensor([math.sqrt(s) for s in squares]))


def test_fpgm_hand_computed():
    # consecutive filters differ by 8 in each of their 8 entries: distance sqrt(8 * 64) = 8·sqrt(8)
    d = 8 * math.sqrt(8)
    torch.testing.assert_close(fpgm(hand_weight()), torch.tensor([3 * d, 2 * d, 3 * d]))


def test_fpgm_docstring_case_and_middle_filter_scores_lowest():
    scores = fpgm(torch.tensor([[0.0], [1.0], [3.0]]))
    torch.testing.assert_close(scores, torch.tensor([4.0, 3.0, 5.0]))
    assert int(scores.argmin()) == 1


def test_spectral_norm_hand_computed():
    # filter 0 is diag(3, 4) as a (c=2, d=2) matrix → 4; filter 1 is the all-ones 2×2 matrix → 2;
    # filter 2 is rank-1 ((1, 2) ⊗ (3, 4)) → ‖(1, 2)‖·‖(3, 4)‖ = 5·sqrt(5)
    w = torch.tensor([[[3.0, 0.0], [0.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]], [[3.0, 4.0], [6.0, 8.0]]])
    torch.testing.assert_close(spectral_norm(w[:, :, None, :]), torch.tensor([4.0, 2.0, 5 * math.sqrt(5)]))
    torch.testing.assert_close(spectral_norm(w), spectral_norm(w[:, :, :, None]))   # (n, c, k) layout


def test_spectral_norm_of_a_linear_weight_is_the_row_l2_norm():
    w = torch.randn(5, 7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(spectral_norm(w), l2_norm(w))


@settings(max_examples=30)
@given(spec=st.tuples(st.integers(1, 8), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2**31 - 1)))
def test_spectral_norm_is_at_most_l2_with_equality_for_rank1_filters(spec):
    n, c, k, seed = spec
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, c, k, k, generator=g)
    assert bool((spectral_norm(w) <= l2_norm(w) * (1 + 1e-5)).all())
    rank1 = torch.randn(n, c, 1, 1, generator=g) * torch.randn(n, 1, k, k, generator=g)
    torch.testing.assert_close(spectral_norm(rank1), l2_norm(rank1), atol=1e-5, rtol=1e-4)


def test_criteria_return_float32_vector_of_n_filters():
    w = hand_weight().to(torch.float64)
    for fn in (l1_norm, l2_norm, spectral_norm, fpgm, random_scores):
        s = fn(w)
        assert s.shape == (3,)
        assert s.dtype == torch.float32


def test_passive_criteria_registry_maps_names_to_functions():
    assert PASSIVE_CRITERIA == {"l1": l1_norm, "l2": l2_norm, "fpgm": fpgm, "random": random_scores,
                                "spectral": spectral_norm, "operator_norm": operator_norm,
                                "operator_norm_eq": operator_norm_equivariant}


# --- reference implementation on random weights ----------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 7), (6, 3, 4), (4, 3, 3, 3), (1, 2, 3, 3)])
@pytest.mark.parametrize("name", list(NORM_CRITERIA))
def test_matches_loop_reference(name, shape):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape)))
    torch.testing.assert_close(NORM_CRITERIA[name](w), REFERENCES[name](w).float(), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("name", list(NORM_CRITERIA))
def test_shared_tiny_conv_fixture_matches_reference_and_permutes(name, tiny_conv):
    score = NORM_CRITERIA[name]
    w = tiny_conv.weight
    torch.testing.assert_close(score(w), REFERENCES[name](w.detach()).float(), atol=1e-4, rtol=1e-5)
    perm = torch.randperm(len(w), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(score(w[perm]), score(w)[perm])


def test_criteria_do_not_modify_the_weight():
    w = torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(1))
    before = w.clone()
    for fn in (l1_norm, l2_norm, spectral_norm, fpgm, random_scores):
        fn(w)
    torch.testing.assert_close(w, before, atol=0, rtol=0)


# --- invariants --------------------------------------------------------------------------------------

weights = st.tuples(st.integers(1, 8), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**31 - 1))


def draw_weight(spec: tuple[int, int, int, int]) -> Tensor:
    n, c, k, seed = spec
    return torch.randn(n, c, k, k, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", list(NORM_CRITERIA))
@settings(max_examples=30)
@given(spec=weights, perm_seed=st.integers(0, 2**31 - 1))
def test_permutation_equivariance(name, spec, perm_seed):
    w = draw_weight(spec)
    perm = torch.randperm(len(w), generator=torch.Generator().manual_seed(perm_seed))
    score = NORM_CRITERIA[name]
    torch.testing.assert_close(score(w[perm]), score(w)[perm], atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("name", list(NORM_CRITERIA))
@settings(max_examples=30)
@given(spec=weights, a=st.floats(0.01, 100.0))
def test_positive_scaling_is_linear_and_keeps_the_ranking(name, spec, a):
    w = draw_weight(spec)
    score = NORM_CRITERIA[name]
    base, scaled = score(w), score(a * w)
    torch.testing.assert_close(scaled, a * base, atol=1e-3 * a, rtol=1e-4)
    # the ranking is unchanged wherever scores are not (numerically) tied
    order = torch.sort(base, stable=True).indices
    sorted_scaled = scaled[order]
    assert bool((sorted_scaled[1:] >= sorted_scaled[:-1] - 1e-3 * a).all())


@settings(max_examples=20)
@given(n=st.integers(1, 6), c=st.integers(1, 3), seed=st.integers(0, 2**31 - 1))
def test_fpgm_of_identical_filters_is_zero(n, c, seed):
    one = torch.randn(1, c, 3, 3, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(fpgm(one.repeat(n, 1, 1, 1)), torch.zeros(n))


# --- random scores -----------------------------------------------------------------------------------

def test_random_scores_shape_range_and_seeded_reproducibility():
    w = torch.zeros(50, 3, 3, 3)
    a = random_scores(w, generator=torch.Generator().manual_seed(7))
    b = random_scores(w, generator=torch.Generator().manual_seed(7))
    c = random_scores(w, generator=torch.Generator().manual_seed(8))
    assert a.shape == (50,)
    assert bool((a >= 0).all()) and bool((a < 1).all())
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.equal(a, c)


def test_random_scores_ignore_weight_values():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    torch.testing.assert_close(random_scores(torch.zeros(5, 2), generator=g1),
                               random_scores(torch.randn(5, 2), generator=g2), atol=0, rtol=0)


# --- bad inputs ----------------------------------------------------------------------------------------

ALL_CRITERIA = [l1_norm, l2_norm, spectral_norm, fpgm, random_scores]


@pytest.mark.parametrize("fn", ALL_CRITERIA)
def test_module_instead_of_weight_is_a_type_error(fn):
    conv = nn.Conv2d(2, 3, 3)
    before = copy.deepcopy(conv.state_dict())
    with pytest.raises(TypeError, match="conv.weight"):
        fn(conv)
    for key, value in conv.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)


@pytest.mark.parametrize("fn", ALL_CRITERIA)
@pytest.mark.parametrize("shape", [(5,), (2, 3, 3, 3, 3)])
def test_wrong_number_of_dimensions_is_a_value_error(fn, shape):
    with pytest.raises(ValueError, match=f"{len(shape)}-D"):
        fn(torch.ones(shape))


@pytest.mark.parametrize("fn", ALL_CRITERIA)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weight_is_a_value_error(fn, bad):
    w = torch.ones(3, 2, 2, 2)
    w[1, 0, 1, 1] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        fn(w)


@pytest.mark.parametrize("fn", ALL_CRITERIA)
@pytest.mark.parametrize("shape", [(0, 3, 3, 3), (3, 0, 3, 3)])
def test_no_filters_or_empty_filters_is_a_value_error(fn, shape):
    with pytest.raises(ValueError, match="no filters"):
        fn(torch.ones(shape))


# --- score_model -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vgg() -> nn.Module:
    torch.manual_seed(0)
    return models.build("vgg16_slim").eval()


def test_score_model_covers_every_prunable_conv_in_forward_order(vgg):
    before = copy.deepcopy(vgg.state_dict())
    scores = score_model(vgg, l1_norm)
    assert list(scores) == [f"features.conv{i}.conv" for i in range(1, 14)]
    modules = dict(vgg.named_modules())
    for name, s in scores.items():
        torch.testing.assert_close(s, l1_norm(modules[name].weight), atol=0, rtol=0)
        assert s.shape == (modules[name].out_channels,)
        assert not s.requires_grad
    assert vgg.state_dict().keys() == before.keys()
    for key, value in vgg.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)


def test_score_model_selected_layers(vgg):
    scores = score_model(vgg, l2_norm, layers=["features.conv3.conv", "features.conv1.conv"])
    assert list(scores) == ["features.conv3.conv", "features.conv1.conv"]
    torch.testing.assert_close(scores["features.conv1.conv"], l2_norm(vgg.features.conv1.conv.weight))


def test_score_model_unknown_layer_is_a_key_error(vgg):
    with pytest.raises(KeyError, match="features.conv99.conv"):
        score_model(vgg, l1_norm, layers=["features.conv1.conv", "features.conv99.conv"])


def test_score_model_skips_depthwise_convs():
    net = models.build("mobilenet_v1_slim")
    scores = score_model(net, l1_norm)
    assert "blocks.0.dw.conv" not in scores
    assert list(scores) == ["stem.conv"] + [f"blocks.{i}.pw.conv" for i in range(8)]
