"""Operator-norm score (Singh & Plumbley): the fast Gram form, the batched-SVD definition, the
permutation-equivariant variant and the looped reference: hand cases, reference comparisons (fast form =
SVD form = looped reference, including n < d, 1×1 kernels, mean-dominated layers and near-degenerate
spectra), invariants (SVD and eigenvector signs, negation, centring), the documented loss of
permutation-equivariance of the original, and bad inputs."""

from __future__ import annotations

import importlib
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from pruning_lib import models
from pruning_lib.criteria import PASSIVE_CRITERIA, score_model
from pruning_lib.criteria.operator_norm import (
    operator_norm,
    operator_norm_equivariant,
    operator_norm_reference,
    operator_norm_svd,
)

pytestmark = pytest.mark.usefixtures("single_thread")

ALL_VERSIONS = [operator_norm, operator_norm_svd, operator_norm_equivariant, operator_norm_reference]
ORIGINAL = [operator_norm, operator_norm_svd, operator_norm_reference]   # the authors' score, 3 ways
_SVD = torch.linalg.svd
# the module, not the function of the same name that pruning_lib.criteria exports
operator_norm_module = importlib.import_module("pruning_lib.criteria.operator_norm")
_TOP_EIGENVECTORS = operator_norm_module._top_eigenvectors


def rank1_weight() -> Tensor:
    """(3, 2, 1, 2): every channel slice is rank-1, a_c b_cᵀ, with Σ_i a_c[i] = 0 (already centred).

    channel 0: a = (-2, 1, 1), b = (3, 4), ‖b‖ = 5;  channel 1: a = (1, 2, -3), b = (0, 2), ‖b‖ = 2.
    """
    a0, b0 = torch.tensor([-2.0, 1.0, 1.0]), torch.tensor([3.0, 4.0])
    a1, b1 = torch.tensor([1.0, 2.0, -3.0]), torch.tensor([0.0, 2.0])
    return torch.stack([torch.outer(a0, b0), torch.outer(a1, b1)], dim=1)[:, :, None, :]


# --- loop references ------------------------------------------------------------------------------

def ref_equivariant(w: Tensor, center: bool = True) -> Tensor:
    """Σ_c ⟨A_c[i], v_c⟩², one numpy SVD per channel, normalised by the maximum."""
    W = w.double().reshape(w.shape[0], w.shape[1], -1).numpy()     # (n, c, d)
    energy = np.zeros(W.shape[0])
    for j in range(W.shape[1]):
        A = W[:, j] - (W[:, j].mean(axis=0) if center else 0.0)    # (n, d)
        v = np.linalg.svd(A, full_matrices=False)[2][0]             # (d,)
        energy += (A @ v) ** 2
    return torch.from_numpy(energy / energy.max()).float()


def well_posed(w: Tensor, center: bool = True) -> bool:
    """True when every channel has a clear top singular direction and u_c[0] is not ~0.

    Otherwise v_c (and, for the original, the orientation) is numerically arbitrary, and a property
    that holds mathematically can fail in float32 for reasons unrelated to the code.
    """
    W = w.double().reshape(w.shape[0], w.shape[1], -1).numpy()
    for j in range(W.shape[1]):
        A = W[:, j] - (W[:, j].mean(axis=0) if center else 0.0)
        U, S, _ = np.linalg.svd(A, full_matrices=False)
        gap = S[0] - (S[1] if len(S) > 1 else 0.0)
        if gap < 1e-2 * S[0] or abs(U[0, 0]) < 1e-2:
            return False
    return True


def flipped_svd(signs: Tensor):
    """torch.linalg.svd with the k-th singular pair of channel c multiplied by signs[c, k] (still an SVD)."""
    def svd(A: Tensor, full_matrices: bool = True):
        U, S, Vh = _SVD(A, full_matrices=full_matrices)
        s = signs[: U.shape[0], : S.shape[-1]]                      # (c, k)
        return U * s[:, None, :], S, Vh * s[:, :, None]
    return svd


def flipped_eigenvectors(signs: Tensor):
    """operator_norm's top-eigenvector helper with channel c's vector multiplied by signs[c] (still valid)."""
    def top_eigenvectors(G: Tensor) -> Tensor:
        return _TOP_EIGENVECTORS(G) * signs[: G.shape[0], None]     # (c, d)
    return top_eigenvectors


def well_posed_weight(shape: tuple[int, ...], center: bool, seed: int) -> Tensor:
    """The first well-posed standard-normal weight of ``shape`` drawn with seeds ``seed``, ``seed + 1``, …"""
    for s in range(seed, seed + 200):
        w = torch.randn(shape, generator=torch.Generator().manual_seed(s))
        if well_posed(w, center):
            return w
    raise AssertionError(f"no well-posed weight of shape {shape} in 200 seeds")


def with_spectral_gap(n: int, c: int, d: int, seed: int) -> Tensor:
    """(n, c, d) weight whose centred channels have σ_2/σ_1 ≈ 0.1: a rank-1 part plus small noise.

    Filter 0 gets a large coefficient, so that the orientation sign(u_c[0]) is far from ambiguous.
    """
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, c, 1, generator=g), torch.randn(1, c, d, generator=g)
    a[0] = 3.0
    return 3 * a * b + 0.1 * torch.randn(n, c, d, generator=g) + torch.randn(1, c, d, generator=g)


def assert_same_ranking(scores: Tensor, expected: Tensor, margin: float = 1e-4) -> None:
    """Every pair of filters whose expected scores differ by more than ``margin`` is ordered alike."""
    apart = (expected[:, None] - expected[None, :]) > margin             # (n, n): i clearly above j
    assert bool((scores[:, None] > scores[None, :])[apart].all())


# --- hand-computed cases --------------------------------------------------------------------------

@pytest.mark.parametrize("center", [True, False])
def test_operator_norm_hand_computed_rank1_channels(center):
    # r_c = sign(a_c[0])·b_c/‖b_c‖, so t_i = Σ_c sign(a_c[0])·a_c[i]·‖b_c‖:
    # t = -(-2, 1, 1)·5 + (1, 2, -3)·2 = (12, -1, -11);  t² = (144, 1, 121)
    expected = torch.tensor([144.0, 1.0, 121.0]) / 144
    for fn in ORIGINAL:
        torch.testing.assert_close(fn(rank1_weight(), center=center), expected)


def test_equivariant_variant_hand_computed_rank1_channels():
    # Σ_c (a_c[i]·‖b_c‖)² = (4, 1, 1)·25 + (1, 4, 9)·4 = (104, 41, 61)
    torch.testing.assert_close(operator_norm_equivariant(rank1_weight()),
                               torch.tensor([104.0, 41.0, 61.0]) / 104)


def test_original_ranking_changes_when_filters_are_reordered_by_hand():
    """Documents §1.6.2: orientation by filter 0 makes the original score order-dependent.

    Put filter 1 first: channel 0's orientation flips (a[0] is now +1), channel 1's does not, so
    t' = (1, -2, 1)·5 + (2, 1, -3)·2 = (9, -8, -1): the filter that scored lowest now scores highest.
    """
    w, perm = rank1_weight(), torch.tensor([1, 0, 2])
    torch.testing.assert_close(operator_norm(w[perm]), torch.tensor([81.0, 64.0, 1.0]) / 81)
    torch.testing.assert_close(operator_norm_svd(w[perm]), torch.tensor([81.0, 64.0, 1.0]) / 81)
    assert int(operator_norm(w).argmin()) == 1 and int(operator_norm(w[perm]).argmax()) == 0
    torch.testing.assert_close(operator_norm_equivariant(w[perm]), operator_norm_equivariant(w)[perm])


def test_original_is_not_permutation_equivariant_on_a_seeded_random_layer():
    w = torch.randn(8, 4, 3, 3, generator=torch.Generator().manual_seed(0))
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    before, after = operator_norm(w), operator_norm(w[perm])
    assert well_posed(w) and well_posed(w[perm])
    # not even the same multiset of scores, let alone the permuted vector
    assert not torch.allclose(after.sort().values, before.sort().values, atol=1e-2)
    assert not torch.equal(after.argsort(), before[perm].argsort())


def test_regression_stored_scores_for_a_seeded_layer():
    w = torch.randn(6, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    stored = torch.tensor([0.513745, 1.000000, 0.378195, 0.272119, 0.125030, 0.026791])
    stored_uncentred = torch.tensor([0.134567, 0.061339, 1.000000, 0.671445, 0.158603, 0.002866])
    for fn in (operator_norm, operator_norm_svd):
        torch.testing.assert_close(fn(w), stored, atol=1e-5, rtol=0)
        torch.testing.assert_close(fn(w, center=False), stored_uncentred, atol=1e-5, rtol=0)


def test_linear_weight_has_one_position_per_channel():
    # (3, 2): d = 1. Channel 0 centred: (-2, 0, 2); channel 1 is constant, so it contributes 0.
    w = torch.tensor([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]])
    for fn in ALL_VERSIONS:
        torch.testing.assert_close(fn(w), torch.tensor([1.0, 0.0, 1.0]))


@pytest.mark.parametrize("fn", ALL_VERSIONS)
def test_returns_float32_scores_in_unit_interval_and_keeps_the_weight(fn):
    w = torch.randn(7, 3, 3, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    before = w.clone()
    s = fn(w)
    assert s.shape == (7,) and s.dtype == torch.float32
    assert bool((s >= 0).all()) and float(s.max()) == 1.0
    torch.testing.assert_close(w, before, atol=0, rtol=0)


def test_single_filter_without_centring_scores_one():
    w = torch.randn(1, 3, 3, 3, generator=torch.Generator().manual_seed(3))
    for fn in ALL_VERSIONS:
        torch.testing.assert_close(fn(w, center=False), torch.ones(1))


def test_registry_and_score_model():
    assert PASSIVE_CRITERIA["operator_norm"] is operator_norm
    assert PASSIVE_CRITERIA["operator_norm_eq"] is operator_norm_equivariant
    torch.manual_seed(0)
    net = models.build("vgg16_slim")
    scores = score_model(net, operator_norm)
    assert len(scores) == 13
    torch.testing.assert_close(scores["features.conv5.conv"],
                               operator_norm_reference(net.features.conv5.conv.weight), atol=1e-5, rtol=0)


# --- comparison with the looped references on random weights --------------------------------------

SHAPES = [(5, 2), (6, 3, 4), (4, 3, 3, 3), (16, 8, 3, 3), (3, 5, 1, 1), (2, 4, 3, 3), (10, 2, 5, 5)]


@pytest.mark.parametrize("fn", [operator_norm, operator_norm_svd])
@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_operator_norm_matches_looped_reference(fn, shape, center):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape)))
    assert well_posed(w, center)
    torch.testing.assert_close(fn(w, center), operator_norm_reference(w, center), atol=1e-5, rtol=0)


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_equivariant_variant_matches_looped_reference(shape, center):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape)))
    torch.testing.assert_close(operator_norm_equivariant(w, center), ref_equivariant(w, center),
                               atol=1e-5, rtol=0)


# --- the fast form (Gram matrices, no SVD) equals the SVD form ------------------------------------

FAST_SHAPES = [(4, 6, 3, 3), (4, 3, 3, 3), (2, 5, 3, 3), (32, 16, 1, 1), (9, 4, 1), (64, 32, 3, 3),
               (16, 3, 7, 7), (12, 5, 2, 4), (20, 7, 5)]


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("shape", FAST_SHAPES)
def test_fast_form_equals_svd_form_and_looped_reference(shape, center):
    """n < d (4 filters, 9 positions), d = 1 (1×1 convs, Conv1d with k = 1), Conv1d, 2×4 and 7×7."""
    w = well_posed_weight(shape, center, seed=sum(shape))
    fast, svd = operator_norm(w, center), operator_norm_svd(w, center)
    torch.testing.assert_close(fast, svd, atol=1e-5, rtol=0)
    torch.testing.assert_close(fast, operator_norm_reference(w, center), atol=1e-5, rtol=0)
    assert_same_ranking(fast, svd)


@pytest.mark.parametrize("shape", [(64, 32, 9), (8, 16, 9), (4, 8, 25), (48, 24, 1)])
def test_fast_form_equals_svd_form_with_a_clear_spectral_gap(shape):
    w = with_spectral_gap(*shape, seed=sum(shape))
    assert well_posed(w)
    fast, svd = operator_norm(w), operator_norm_svd(w)
    torch.testing.assert_close(fast, svd, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(fast, operator_norm_reference(w), atol=1e-6, rtol=1e-5)
    assert_same_ranking(fast, svd)          # not argsort equality: near-ties may swap in float32
    torch.testing.assert_close(operator_norm_equivariant(w), ref_equivariant(w), atol=1e-6, rtol=1e-5)


def test_fast_form_on_a_wide_random_layer_with_small_spectral_gaps():
    """256 filters over 9 positions: nearly isotropic channels (σ_2/σ_1 up to 0.997), the hard case."""
    w = torch.randn(256, 64, 3, 3, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(operator_norm(w), operator_norm_reference(w), atol=2e-6, rtol=0)
    torch.testing.assert_close(operator_norm_equivariant(w), ref_equivariant(w), atol=2e-6, rtol=0)


@pytest.mark.parametrize("share", [0.9, 0.3, 1e-3])
def test_fast_form_when_the_mean_dominates_a_channel(share):
    """Below half of a channel's energy in its centred part, the Gram is formed from centred slices."""
    g = torch.Generator().manual_seed(6)
    w, a = torch.randn(32, 8, 9, generator=g), torch.randn(1, 8, 9, generator=g)
    centred = (w - w.mean(0, keepdim=True)).square().sum((0, 2))               # (c,)
    w = w + a * ((1 / share - 1) * centred / (32 * a.square().sum((0, 2)))).sqrt()[None, :, None]
    spy = mock.patch.object(operator_norm_module, "_centred_slices",
                            side_effect=operator_norm_module._centred_slices)
    with spy as centring:
        fast = operator_norm(w)
    assert centring.called == (share < operator_norm_module._MIN_CENTRED_SHARE)
    torch.testing.assert_close(fast, operator_norm_reference(w), atol=1e-5, rtol=0)
    torch.testing.assert_close(operator_norm_equivariant(w), ref_equivariant(w), atol=2e-5, rtol=0)


def test_constant_and_zero_channels_contribute_nothing():
    w = torch.randn(6, 4, 3, 3, generator=torch.Generator().manual_seed(7))
    w[:, 1] = 0.0                                                # an all-zero input channel
    w[:, 2] = torch.randn(3, 3, generator=torch.Generator().manual_seed(8))   # identical in all filters
    for fn in (operator_norm, operator_norm_svd, operator_norm_equivariant):
        torch.testing.assert_close(fn(w), fn(w[:, [0, 3]]), atol=1e-5, rtol=0)


def test_top_eigenvectors_match_eigh_and_handle_degenerate_matrices():
    A = torch.randn(50, 20, 9, generator=torch.Generator().manual_seed(9))
    G = A.mT @ A                                                 # (50, 9, 9)
    q = torch.linalg.eigh(G.double()).eigenvectors[:, :, -1].float()   # (50, 9)
    v = _TOP_EIGENVECTORS(G)
    torch.testing.assert_close((v * q).sum(1).abs(), torch.ones(50), atol=1e-5, rtol=0)
    iso = _TOP_EIGENVECTORS(torch.eye(3).repeat(2, 1, 1))        # every unit vector is a top one
    torch.testing.assert_close(torch.linalg.vector_norm(iso, dim=1), torch.ones(2))
    torch.testing.assert_close(_TOP_EIGENVECTORS(torch.zeros(2, 3, 3)), torch.zeros(2, 3))
    one_by_one = _TOP_EIGENVECTORS(torch.tensor([[[4.0]], [[0.0]]]))  # (2, 1, 1): d = 1
    torch.testing.assert_close(one_by_one, torch.tensor([[1.0], [0.0]]))


shapes = st.tuples(st.integers(2, 12), st.integers(1, 6), st.integers(1, 4), st.integers(1, 4),
                   st.integers(0, 2**31 - 1), st.booleans())


@settings(max_examples=50)
@given(spec=shapes)
def test_fast_form_equals_svd_form_on_random_shapes(spec):
    n, c, kh, kw, seed, center = spec
    w = torch.randn(n, c, kh, kw, generator=torch.Generator().manual_seed(seed))
    assume(well_posed(w, center))
    torch.testing.assert_close(operator_norm(w, center), operator_norm_svd(w, center), atol=1e-5, rtol=0)
    torch.testing.assert_close(operator_norm(w, center), operator_norm_reference(w, center),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(operator_norm_equivariant(w, center), ref_equivariant(w, center),
                               atol=1e-5, rtol=0)


# --- invariants -----------------------------------------------------------------------------------

layers = st.tuples(st.integers(2, 8), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2**31 - 1))


def draw(spec: tuple[int, int, int, int]) -> Tensor:
    n, c, k, seed = spec
    return torch.randn(n, c, k, k, generator=torch.Generator().manual_seed(seed))


@settings(max_examples=25)
@given(spec=layers, sign_seed=st.integers(0, 2**31 - 1))
def test_svd_sign_convention_does_not_change_scores(spec, sign_seed):
    w = draw(spec)
    signs = torch.randint(0, 2, (spec[1], 9), generator=torch.Generator().manual_seed(sign_seed)) * 2 - 1.0
    expected = operator_norm_svd(w)
    with mock.patch.object(torch.linalg, "svd", side_effect=flipped_svd(signs)) as svd:
        flipped = operator_norm_svd(w)
    assert svd.called
    torch.testing.assert_close(flipped, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("fn", [operator_norm, operator_norm_equivariant])
@settings(max_examples=25)
@given(spec=layers, sign_seed=st.integers(0, 2**31 - 1))
def test_eigenvector_sign_does_not_change_scores(fn, spec, sign_seed):
    """The fast forms never call an SVD; the sign of each top eigenvector v_c is just as arbitrary."""
    w = draw(spec)
    signs = torch.randint(0, 2, (spec[1],), generator=torch.Generator().manual_seed(sign_seed)) * 2 - 1.0
    expected = fn(w)
    with mock.patch.object(operator_norm_module, "_top_eigenvectors",
                           side_effect=flipped_eigenvectors(signs)) as top:
        flipped = fn(w)
    assert top.called
    torch.testing.assert_close(flipped, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("fn", ALL_VERSIONS)
@settings(max_examples=20)
@given(spec=layers)
def test_negating_the_weight_keeps_scores(fn, spec):
    w = draw(spec)
    assume(well_posed(w))
    torch.testing.assert_close(fn(-w), fn(w), atol=1e-4, rtol=0)


@pytest.mark.parametrize("fn", [operator_norm, operator_norm_svd, operator_norm_equivariant])
@settings(max_examples=25)
@given(spec=layers, shift_seed=st.integers(0, 2**31 - 1))
def test_centred_score_ignores_a_common_vector_added_to_every_filter(fn, spec, shift_seed):
    w = draw(spec)
    assume(well_posed(w))
    shift = 3 * torch.randn(1, *w.shape[1:], generator=torch.Generator().manual_seed(shift_seed))
    torch.testing.assert_close(fn(w + shift), fn(w), atol=1e-4, rtol=0)


@settings(max_examples=25)
@given(spec=layers, perm_seed=st.integers(0, 2**31 - 1))
def test_equivariant_variant_is_permutation_equivariant(spec, perm_seed):
    w = draw(spec)
    assume(well_posed(w))
    perm = torch.randperm(len(w), generator=torch.Generator().manual_seed(perm_seed))
    torch.testing.assert_close(operator_norm_equivariant(w[perm]), operator_norm_equivariant(w)[perm],
                               atol=1e-4, rtol=0)


@settings(max_examples=20)
@given(spec=st.tuples(st.integers(2, 8), st.just(1), st.integers(1, 3), st.integers(0, 2**31 - 1)))
def test_variant_equals_original_for_a_single_input_channel(spec):
    w = draw(spec)
    torch.testing.assert_close(operator_norm_equivariant(w), operator_norm(w), atol=1e-5, rtol=0)


@pytest.mark.parametrize("fn", [operator_norm, operator_norm_svd, operator_norm_equivariant])
@settings(max_examples=20)
@given(spec=layers, a=st.floats(0.01, 100.0))
def test_positive_scaling_keeps_the_normalised_scores(fn, spec, a):
    w = draw(spec)
    assume(well_posed(w))
    torch.testing.assert_close(fn(a * w), fn(w), atol=1e-4, rtol=0)


# --- bad inputs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", ALL_VERSIONS)
def test_module_instead_of_weight_is_a_type_error(fn):
    with pytest.raises(TypeError, match="conv.weight"):
        fn(nn.Conv2d(2, 3, 3))


@pytest.mark.parametrize("fn", ALL_VERSIONS)
@pytest.mark.parametrize("shape", [(5,), (2, 3, 3, 3, 3)])
def test_wrong_number_of_dimensions_is_a_value_error(fn, shape):
    with pytest.raises(ValueError, match=rf"expected .*got {len(shape)}-D"):
        fn(torch.ones(shape))


@pytest.mark.parametrize("fn", ALL_VERSIONS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weight_is_a_value_error(fn, bad):
    w = torch.randn(3, 2, 2, 2)
    w[1, 0, 1, 1] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        fn(w)


@pytest.mark.parametrize("fn", ALL_VERSIONS)
@pytest.mark.parametrize("shape", [(0, 3, 3, 3), (3, 0, 3, 3)])
def test_no_filters_is_a_value_error(fn, shape):
    with pytest.raises(ValueError, match="no filters"):
        fn(torch.ones(shape))


@pytest.mark.parametrize("fn", ALL_VERSIONS)
def test_single_filter_with_centring_is_a_value_error(fn):
    with pytest.raises(ValueError, match="at least 2 filters.*center=False"):
        fn(torch.randn(1, 3, 3, 3))


@pytest.mark.parametrize("fn", ALL_VERSIONS)
@pytest.mark.parametrize("center", [True, False])
def test_all_zero_weight_is_a_value_error(fn, center):
    with pytest.raises(ValueError, match="all-zero weight"):
        fn(torch.zeros(4, 3, 3, 3), center=center)


@pytest.mark.parametrize("fn", ALL_VERSIONS)
def test_identical_filters_with_centring_is_a_value_error(fn):
    w = torch.randn(1, 3, 3, 3, generator=torch.Generator().manual_seed(4)).repeat(5, 1, 1, 1)
    with pytest.raises(ValueError, match="all filters are identical"):
        fn(w)
    torch.testing.assert_close(fn(w, center=False), torch.ones(5), atol=1e-5, rtol=0)
