"""Similarity pruning (Interspeech'22) and its Nyström version (ICASSP'23): hand cases, the authors'
rank-1 formula, a looped reference and sklearn's Nystroem as references; invariants (D ∈ [0, 2],
symmetry, duplicated filters, exactness at m ≥ kh·kw, nested landmarks, the tie rule); plans through
surgery; and bad inputs."""

from __future__ import annotations

import copy
import math
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.kernel_approximation import Nystroem
from torch import Tensor, nn

from pruning_lib import models, surgery
from pruning_lib.criteria import nystrom
from pruning_lib.criteria.nystrom import (
    approximation_error,
    choose_landmarks,
    nystrom_approximation,
)
from pruning_lib.criteria.similarity import (
    NystromConfig,
    cosine_distances,
    cosine_distances_looped,
    filter_representatives,
    greedy_pair_keep,
    nearest_neighbours,
    nystrom_compare,
    nystrom_distances,
    similarity_keep,
    similarity_plan,
    smallest_exact_m,
    whole_filter_representatives,
)

pytestmark = pytest.mark.usefixtures("single_thread")

EXAMPLE = torch.zeros(1, 1, 28, 28)
_SVD = torch.linalg.svd


def rand_weight(shape: tuple[int, ...], seed: int) -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def authors_rank1(weight: Tensor) -> np.ndarray:
    """The authors' prototype in numpy: first column of σ₁u₁v₁ᵀ of the (d, c) matrix, normalised."""
    rows = []
    for w in weight.double().numpy():
        u, _, vh = np.linalg.svd(w.reshape(w.shape[0], -1).T)    # (d, c) = U Σ Vᵀ
        first_column = np.outer(u[:, 0], vh[0])[:, 0]
        with np.errstate(invalid="ignore"):
            rows.append(first_column / np.linalg.norm(first_column))
    return np.stack(rows)


# --- hand-computed cases ---------------------------------------------------------------------------

def hand_weight() -> Tensor:
    """(4, 1, 1, 2): with one channel the representative is the filter normalised: e1, e2, (1,1)/√2, −e1."""
    return torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]]).reshape(4, 1, 1, 2)


def test_hand_case_representatives_distances_neighbours_and_keep():
    R = filter_representatives(hand_weight())
    s = 1 / math.sqrt(2)
    torch.testing.assert_close(R, torch.tensor([[1.0, 0.0], [0.0, 1.0], [s, s], [-1.0, 0.0]],
                                               dtype=torch.float64))
    a = 1 - s                                                    # cos 45° away: 0.2929
    expected = torch.tensor([[0, 1, a, 2], [1, 0, a, 1], [a, a, 0, 1 + s], [2, 1, 1 + s, 0]],
                            dtype=torch.float64)
    D = cosine_distances(R)
    torch.testing.assert_close(D, expected)
    # D[2, 0] and D[2, 1] may differ in the last bit; rounding (as greedy_pair_keep does) ties them
    nn_idx, delta = nearest_neighbours(torch.round(D, decimals=5))
    assert nn_idx.tolist() == [2, 2, 0, 1]                       # filter 2: 0 and 1 tie, 0 wins
    torch.testing.assert_close(delta, torch.tensor([a, a, a, 1.0], dtype=torch.float64), atol=1e-5, rtol=0)
    # visit 0, 1, 2, 3: keep 0 (drop 2), keep 1 (drop 2), skip 2, keep 3 (drop 1: it stays kept)
    assert greedy_pair_keep(D).tolist() == [0, 1, 3]


def test_tie_rule_on_equidistant_filters():
    D = cosine_distances(torch.eye(4, dtype=torch.float64))     # every off-diagonal distance is 1
    nn_idx, _ = nearest_neighbours(D)
    assert nn_idx.tolist() == [1, 0, 0, 0]                       # lowest other index
    # visit 0..3: keep 0 (drop 1), skip 1, keep 2 (drop 0, still kept), keep 3
    assert greedy_pair_keep(D).tolist() == [0, 2, 3]


def test_rounding_to_5_decimals_turns_near_ties_into_index_ties():
    D = torch.tensor([[0, 0.3000001, 1], [0.3000001, 0, 0.3], [1, 0.3, 0]], dtype=torch.float64)
    # unrounded: nn(1) = 2, visit 1, 2, 0 → keep 1 (drop 2), keep 0 (drop 1)
    assert greedy_pair_keep(D, decimals=None).tolist() == [0, 1]
    # rounded: all δ = 0.3 and nn(1) = 0 → keep 0 (drop 1), skip 1, keep 2 (drop 1)
    assert greedy_pair_keep(D).tolist() == [0, 2]


# --- references ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(6, 3, 3, 3), (5, 4, 2, 3), (4, 1, 3, 3), (3, 7, 1, 5), (5, 2, 4)])
def test_representatives_match_the_authors_rank1_formula(shape):
    w = rand_weight(shape, seed=sum(shape))
    torch.testing.assert_close(filter_representatives(w), torch.from_numpy(authors_rank1(w)),
                               atol=1e-10, rtol=0)


def test_representatives_do_not_depend_on_svd_sign_conventions():
    w = rand_weight((8, 4, 3, 3), seed=1)

    def flipped_svd(A, full_matrices=True):                      # the other valid sign choice
        U, S, Vh = _SVD(A, full_matrices=full_matrices)
        return -U, S, -Vh

    with mock.patch("torch.linalg.svd", flipped_svd):
        flipped = filter_representatives(w)
    torch.testing.assert_close(flipped, filter_representatives(w), atol=1e-12, rtol=0)


def test_positive_scaling_keeps_and_negation_flips_the_representative():
    w = rand_weight((5, 3, 3, 3), seed=2)
    R = filter_representatives(w)
    scale = torch.tensor([0.1, 2.0, 3.0, 7.0, 50.0]).reshape(5, 1, 1, 1)
    torch.testing.assert_close(filter_representatives(w * scale), R)
    torch.testing.assert_close(filter_representatives(-w), -R)   # so D(W, −W) = 2: opposite filters


def test_orientation_falls_back_to_the_next_channel_where_the_authors_get_nan():
    w = rand_weight((6, 3, 3, 3), seed=3)
    w[:, 0] = 0.0                                                # channel 0 carries nothing
    assert np.isnan(authors_rank1(w)).all()                      # sign(v₁[0]) = 0 → 0/0
    R = filter_representatives(w)
    assert bool(torch.isfinite(R).all())
    torch.testing.assert_close(R, filter_representatives(w[:, 1:]), atol=1e-12, rtol=0)


@pytest.mark.parametrize("reps_of", [filter_representatives, whole_filter_representatives])
@pytest.mark.parametrize("shape", [(12, 4, 3, 3), (7, 1, 3, 3), (9, 3, 1, 1)])
def test_vectorised_distances_equal_the_looped_reference(reps_of, shape):
    R = reps_of(rand_weight(shape, seed=shape[0]))
    torch.testing.assert_close(cosine_distances(R), cosine_distances_looped(R), atol=1e-12, rtol=0)


def test_shared_tiny_conv_distances_equal_the_looped_reference(tiny_conv):
    R = filter_representatives(tiny_conv.weight)
    torch.testing.assert_close(cosine_distances(R), cosine_distances_looped(R), atol=1e-12, rtol=0)


@pytest.mark.parametrize("kernel", ["linear", "cosine"])
@pytest.mark.parametrize(("reps_of", "shape", "m"), [
    (filter_representatives, (20, 4, 3, 3), 6),            # W (6, 6) has full rank
    (filter_representatives, (20, 4, 3, 3), 12),           # m > d = 9: W has rank 9
    (whole_filter_representatives, (16, 2, 3, 3), 10),     # d = 18
])
def test_nystrom_matches_sklearn_nystroem_on_its_landmarks(kernel, reps_of, shape, m):
    R = reps_of(rand_weight(shape, seed=m))
    nys = Nystroem(kernel=kernel, n_components=m, random_state=0).fit(R.numpy())
    features = nys.transform(R.numpy())                         # Φ, (n, m): ΦΦᵀ = C W⁺ Cᵀ
    ours = nystrom_approximation(R, torch.from_numpy(np.asarray(nys.component_indices_)))
    torch.testing.assert_close(ours, torch.from_numpy(features @ features.T), atol=1e-9, rtol=1e-7)


# --- invariants -----------------------------------------------------------------------------------------

weights = st.tuples(st.integers(2, 10), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3),
                    st.integers(0, 2**31 - 1))


@settings(max_examples=30)
@given(spec=weights, whole=st.booleans())
def test_distances_lie_in_0_2_are_symmetric_with_zero_diagonal(spec, whole):
    n, c, kh, kw, seed = spec
    w = rand_weight((n, c, kh, kw), seed)
    R = (whole_filter_representatives if whole else filter_representatives)(w)
    torch.testing.assert_close(torch.linalg.vector_norm(R, dim=1), torch.ones(n, dtype=torch.float64))
    D = cosine_distances(R)
    assert bool((D >= 0).all()) and bool((D <= 2).all())
    assert torch.equal(D, D.T)
    assert bool((D.diagonal() == 0).all())


@settings(max_examples=25)
@given(k=st.integers(2, 6), c=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_duplicated_filters_lose_exactly_one_member_of_each_pair(k, c, seed):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(k, c, 3, 3, generator=g)
    scale = 0.5 + torch.rand(k, 1, 1, 1, generator=g)             # positive rescaling: same r_i
    perm = torch.randperm(2 * k, generator=g)
    w = torch.cat([base, base * scale])[perm]                      # filter j and its copy, shuffled
    pairs = [sorted(((perm == j).nonzero().item(), (perm == j + k).nonzero().item())) for j in range(k)]
    # δ = 0 for the pairs: they are visited first, by index, so the lower index of each survives
    assert similarity_keep(w).tolist() == sorted(lo for lo, _ in pairs)


def test_keep_list_is_deterministic_and_ignores_the_input_dtype():
    w = rand_weight((64, 8, 3, 3), seed=4)
    first = similarity_keep(w)
    for _ in range(3):
        assert torch.equal(similarity_keep(w), first)
    assert torch.equal(similarity_keep(w.double()), first)
    assert first.dtype == torch.long and torch.equal(first, first.sort().values)


@pytest.mark.parametrize("random_landmarks", [False, True])
@pytest.mark.parametrize("m", [9, 12, 30])
def test_nystrom_is_exact_once_m_reaches_kh_kw(m, random_landmarks):
    # R is (n, d) with d = kh·kw = 9, so S = R Rᵀ has rank ≤ 9. Nyström gives S̃ = R P Rᵀ with P the
    # orthogonal projector onto the span of the landmark rows; 9 linearly independent landmarks
    # (generic for random filters) span R⁹, so P = I and S̃ = S: the error vanishes and the greedy
    # step sees the same matrix, hence the same keep-list.
    w = rand_weight((30, 8, 3, 3), seed=5)
    R = filter_representatives(w)
    gen = torch.Generator().manual_seed(m) if random_landmarks else None
    landmarks = choose_landmarks(30, m, generator=gen)
    assert torch.linalg.matrix_rank(R[landmarks]) == 9
    D, D_nys = cosine_distances(R), nystrom_distances(R, landmarks)
    assert approximation_error(D, D_nys) < 1e-8
    assert torch.equal(greedy_pair_keep(D_nys), greedy_pair_keep(D))
    config = NystromConfig(m=m, generator=torch.Generator().manual_seed(m) if random_landmarks else None)
    assert torch.equal(similarity_keep(w, nystrom=config), similarity_keep(w))


def test_nystrom_with_fewer_landmarks_than_kh_kw_is_not_exact():
    R = filter_representatives(rand_weight((30, 8, 3, 3), seed=5))
    assert approximation_error(cosine_distances(R), nystrom_distances(R, choose_landmarks(30, 4))) > 0.1


@pytest.mark.parametrize(("reps_of", "shape"), [(filter_representatives, (20, 5, 3, 3)),
                                                (whole_filter_representatives, (24, 3, 3, 3))])
def test_nested_landmark_sets_never_increase_the_error(reps_of, shape):
    R = reps_of(rand_weight(shape, seed=6))
    n = len(R)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(6))
    D = cosine_distances(R)
    errors = [approximation_error(D, nystrom_distances(R, order[:m])) for m in range(1, n + 1)]
    assert all(later <= earlier + 1e-9 for earlier, later in zip(errors, errors[1:], strict=False))
    assert errors[-1] < 1e-9 and errors[0] > 0.1


def test_rank_k_defaults_to_m_and_bounds_the_rank_of_the_approximation():
    R = whole_filter_representatives(rand_weight((15, 2, 3, 3), seed=7))     # d = 18
    L = choose_landmarks(15, 8)
    assert torch.equal(nystrom_approximation(R, L), nystrom_approximation(R, L, k=8))
    for k in (1, 3, 5):
        assert torch.linalg.matrix_rank(nystrom_approximation(R, L, k=k)) == k


def test_landmarks_first_m_or_seeded_random():
    assert choose_landmarks(10, 3).tolist() == [0, 1, 2]
    a = choose_landmarks(20, 6, generator=torch.Generator().manual_seed(3))
    b = choose_landmarks(20, 6, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(a, a.sort().values) and len(set(a.tolist())) == 6
    assert 0 <= int(a.min()) and int(a.max()) < 20


# --- plans through surgery ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vgg() -> nn.Module:
    torch.manual_seed(0)
    return models.build("vgg16_slim").eval()


def test_vgg_plan_gives_the_keep_list_widths_and_pruned_equals_masked(vgg):
    before = copy.deepcopy(vgg.state_dict())
    plan = similarity_plan(vgg)
    widths = models.conv_widths(vgg)
    assert list(plan["removed"]) == list(widths) and plan["coupled"] == []
    modules = dict(vgg.named_modules())
    for name, removed in plan["removed"].items():
        keep = similarity_keep(modules[name].weight).tolist()
        assert removed == sorted(set(range(widths[name])) - set(keep))
    pruned = surgery.apply_plan(vgg, plan, EXAMPLE)
    assert models.conv_widths(pruned) == {n: widths[n] - len(r) for n, r in plan["removed"].items()}
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), surgery.mask_plan(vgg, plan, EXAMPLE)(x))
    for key, value in vgg.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)
    assert similarity_plan(vgg, nystrom=NystromConfig(m=9)) == plan      # 3×3 convs: exact at m = 9


def test_resnet_plan_skips_coupled_and_1x1_convs():
    net = models.build("resnet20").eval()
    groups = surgery.coupled_groups(net, EXAMPLE)
    coupled = {n for g in groups if len(g) > 1 for n in g}
    plan = similarity_plan(net, groups=groups)
    assert set(plan["removed"]) == {f"layer{s}.{b}.conv1.conv" for s in (1, 2, 3) for b in range(3)}
    assert not coupled & set(plan["removed"])
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(surgery.apply_plan(net, plan, EXAMPLE)(x),
                                   surgery.mask_plan(net, plan, EXAMPLE)(x))
    with pytest.raises(ValueError, match="coupled"):
        similarity_plan(net, layers=["layer1.0.conv2.conv"], groups=groups)


def test_default_plan_skips_1x1_convs():
    net = models.build("mobilenet_v1_slim")                 # pointwise convs are 1×1: r_i = ±1
    assert list(similarity_plan(net)["removed"]) == ["stem.conv"]


def test_plan_for_selected_layers(vgg):
    plan = similarity_plan(vgg, layers=["features.conv3.conv"])
    assert list(plan["removed"]) == ["features.conv3.conv"]


def test_plan_with_one_m_per_layer_equals_one_plan_per_layer(vgg):
    layers = ["features.conv1.conv", "features.conv3.conv"]
    per_layer = similarity_plan(vgg, layers=layers, nystrom=NystromConfig(m={layers[0]: 3, layers[1]: 7}))
    one = similarity_plan(vgg, layers=[layers[0]], nystrom=NystromConfig(m=3))
    other = similarity_plan(vgg, layers=[layers[1]], nystrom=NystromConfig(m=7))
    assert per_layer["removed"] == {**one["removed"], **other["removed"]}
    assert one["removed"] != similarity_plan(vgg, layers=[layers[0]], nystrom=NystromConfig(m=7))["removed"] \
        or other["removed"] != similarity_plan(vgg, layers=[layers[1]], nystrom=NystromConfig(m=3))["removed"]


def test_plan_with_a_per_layer_m_missing_a_layer_is_a_key_error(vgg):
    with pytest.raises(KeyError, match=r"no entry for 'features\.conv3\.conv'"):
        similarity_plan(vgg, layers=["features.conv1.conv", "features.conv3.conv"],
                        nystrom=NystromConfig(m={"features.conv1.conv": 3}))


# --- bad inputs ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("m", [0, -1, 11, 2.5, True])
def test_landmark_count_out_of_range_is_a_value_error(m):
    with pytest.raises(ValueError, match=r"landmarks m must be an integer in \[1, n\] = \[1, 10\]"):
        choose_landmarks(10, m)


def test_plan_with_more_landmarks_than_filters_names_the_layer(vgg):
    with pytest.raises(ValueError, match=r"features\.conv1\.conv: number of landmarks m .* got 32"):
        similarity_plan(vgg, nystrom=NystromConfig(m=32))


@pytest.mark.parametrize("k", [0, 5, 2.0])
def test_rank_k_outside_1_m_is_a_value_error(k):
    R = filter_representatives(rand_weight((8, 2, 3, 3), seed=8))
    with pytest.raises(ValueError, match=r"rank k must be an integer in \[1, m\] = \[1, 4\]"):
        nystrom_distances(R, choose_landmarks(8, 4), k=k)
    with pytest.raises(ValueError, match="rank k"):
        similarity_keep(rand_weight((8, 2, 3, 3), seed=8), nystrom=NystromConfig(m=4, k=k))


@pytest.mark.parametrize("landmarks", [[0, 0, 1], [0, 8], [-1, 2], []])
def test_repeated_or_out_of_range_landmarks_are_a_value_error(landmarks):
    R = filter_representatives(rand_weight((8, 2, 3, 3), seed=8))
    with pytest.raises(ValueError, match=r"distinct indices in \[0, 8\)"):
        nystrom_distances(R, torch.tensor(landmarks, dtype=torch.long))


def test_layer_with_one_filter_is_a_value_error():
    w = rand_weight((1, 3, 3, 3), seed=9)
    with pytest.raises(ValueError, match="at least 2 filters, got 1"):
        similarity_keep(w)
    with pytest.raises(ValueError, match="at least 2 filters"):
        greedy_pair_keep(torch.zeros(1, 1))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_a_value_error(bad, vgg):
    w = rand_weight((4, 2, 3, 3), seed=10)
    w[2, 1, 0, 0] = bad
    for fn in (filter_representatives, whole_filter_representatives, similarity_keep):
        with pytest.raises(ValueError, match="NaN or inf"):
            fn(w)
    broken = copy.deepcopy(vgg)
    with torch.no_grad():
        broken.features.conv3.conv.weight[0, 0, 0, 0] = bad
    with pytest.raises(ValueError, match=r"features\.conv3\.conv: weight contains NaN or inf"):
        similarity_plan(broken)


@pytest.mark.parametrize("fn", [filter_representatives, whole_filter_representatives])
def test_all_zero_filter_is_a_value_error(fn):
    w = rand_weight((4, 2, 3, 3), seed=11)
    w[1] = 0.0
    with pytest.raises(ValueError, match=r"filters \[1\] are all zero"):
        fn(w)


def test_bad_representatives_and_distance_matrices_are_value_errors():
    with pytest.raises(ValueError, match="unit vectors"):
        cosine_distances(torch.ones(3, 2))
    with pytest.raises(ValueError, match="NaN or inf"):
        cosine_distances(torch.tensor([[1.0, float("nan")], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="non-empty"):
        cosine_distances_looped(torch.ones(3))
    with pytest.raises(ValueError, match="square"):
        nearest_neighbours(torch.zeros(3, 4))
    D = torch.zeros(3, 3)
    D[0, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        greedy_pair_keep(D, decimals=None)
    with pytest.raises(ValueError, match="shapes differ"):
        approximation_error(torch.zeros(3, 3), torch.zeros(2, 2))


def test_unknown_layer_is_a_key_error(vgg):
    with pytest.raises(KeyError, match=r"features\.conv99\.conv"):
        similarity_plan(vgg, layers=["features.conv99.conv"])


def test_public_functions_name_the_notebook_that_introduces_them():
    public = [filter_representatives, whole_filter_representatives, cosine_distances,
              cosine_distances_looped, nearest_neighbours, greedy_pair_keep, nystrom_distances,
              similarity_keep, similarity_plan, choose_landmarks, nystrom.truncated_pinv,
              nystrom_approximation, approximation_error]
    for fn in public:
        assert "Introduced in: notebooks/02_similarity_and_nystrom.ipynb (§" in fn.__doc__, fn.__name__


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_rows_are_a_value_error_for_nystrom_approximation(bad):
    X = rand_weight((6, 4), seed=12)
    X[4, 2] = bad                                                # a non-landmark row
    with pytest.raises(ValueError, match="NaN or inf"):
        nystrom_approximation(X, choose_landmarks(6, 2))


def test_non_integer_landmarks_are_a_value_error():
    R = filter_representatives(rand_weight((8, 2, 3, 3), seed=8))
    with pytest.raises(ValueError, match="integer indices"):
        nystrom_distances(R, torch.tensor([0.0, 1.5]))


# --- smallest_exact_m (the ICASSP'23 choice of m) ----------------------------------------------------------

@settings(max_examples=25)
@given(n=st.integers(4, 24), c=st.integers(1, 4), kernel=st.sampled_from([3, 5]),
       seed=st.integers(0, 2**31 - 1), decimals=st.sampled_from([5, None]))
def test_smallest_exact_m_is_the_first_m_whose_nystrom_keep_list_is_exact(n, c, kernel, seed, decimals):
    w = rand_weight((n, c, kernel, kernel), seed)
    result = smallest_exact_m(w, decimals=decimals)
    m = result["m"]
    exact = similarity_keep(w, decimals=decimals)
    assert (result["n"], result["d"], result["kept"]) == (n, kernel * kernel, len(exact))
    assert 1 <= m <= n
    assert torch.equal(similarity_keep(w, nystrom=NystromConfig(m=m), decimals=decimals), exact)
    for smaller in range(1, m):
        assert not torch.equal(similarity_keep(w, nystrom=NystromConfig(m=smaller), decimals=decimals), exact)
    if kernel == 3 and n >= 9:
        assert m <= 9                                         # exact reconstruction from d landmarks
    assert result["error"] >= 0.0


def test_smallest_exact_m_error_is_the_spectral_norm_at_that_m():
    w = rand_weight((20, 3, 3, 3), 7)
    result = smallest_exact_m(w)
    R = filter_representatives(w)
    approx = nystrom_distances(R, choose_landmarks(20, result["m"]))
    assert result["error"] == pytest.approx(approximation_error(cosine_distances(R), approx), abs=1e-12)
    full = smallest_exact_m(rand_weight((20, 3, 3, 3), 7))
    assert full == result                                     # deterministic


def test_smallest_exact_m_hand_case_one_landmark_suffices_for_1x1_filters():
    # 1×1 filters with one channel: every representative is ±1, so S = r rᵀ has rank 1 and m = 1
    # reconstructs D exactly (0 for equal signs, 2 for opposite signs)
    w = torch.tensor([1.0, 2.0, -1.0, 3.0]).reshape(4, 1, 1, 1)
    result = smallest_exact_m(w)
    assert (result["m"], result["n"], result["d"]) == (1, 4, 1)
    assert result["kept"] == len(similarity_keep(w)) == 3
    assert result["error"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("weight", "match"), [
    (torch.ones(1, 2, 3, 3), "at least 2 filters"),
    (torch.zeros(4, 1, 3, 3), "all zero"),
])
def test_smallest_exact_m_bad_weights_are_value_errors(weight, match):
    before = weight.clone()
    with pytest.raises(ValueError, match=match):
        smallest_exact_m(weight)
    torch.testing.assert_close(weight, before, atol=0, rtol=0)


# --- the authors' nearest-neighbour rule, argsort(D[i])[1] (authors_diagonal=True) --------------------

def test_authors_diagonal_rule_differs_from_ours_on_a_hand_made_nystrom_like_matrix():
    # a D̃-like matrix: the diagonal is not 0 (filter 0 is not a landmark), so row 0 sorted is 1, 0, 2
    D = torch.tensor([[0.5, 0.2, 0.9], [0.2, 0.0, 0.4], [0.9, 0.4, 0.1]], dtype=torch.float64)
    ours, ours_delta = nearest_neighbours(D)
    theirs, their_delta = nearest_neighbours(D, authors_diagonal=True)
    assert ours.tolist() == [1, 0, 1] and ours_delta.tolist() == [0.2, 0.2, 0.4]
    assert theirs.tolist() == [0, 0, 1] and their_delta.tolist() == [0.5, 0.2, 0.4]   # 0 is its own
    # ours: visit 0 (keep, drop 1), 1 (dropped), 2 (keep) → [0, 2]
    # theirs: visit 1 (keep, drop 0), 2 (keep, drop 1: stays kept), 0 (dropped) → [1, 2]
    assert greedy_pair_keep(D).tolist() == [0, 2]
    assert greedy_pair_keep(D, authors_diagonal=True).tolist() == [1, 2]


def test_authors_diagonal_rule_can_pick_the_second_nearest_other_filter():
    D = torch.tensor([[0.5, 0.2, 0.3], [0.2, 0.0, 0.4], [0.3, 0.4, 0.0]], dtype=torch.float64)
    assert nearest_neighbours(D)[0].tolist() == [1, 0, 0]
    assert nearest_neighbours(D, authors_diagonal=True)[0].tolist() == [2, 0, 0]


def test_authors_diagonal_rule_on_an_exact_duplicate_picks_itself_for_the_higher_index():
    D = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]], dtype=torch.float64)  # 0 ≡ 1
    # row 1 sorted (stable) is 0, 1, 2: its second entry is filter 1 itself; ours excludes it
    assert nearest_neighbours(D, authors_diagonal=True)[0].tolist() == [1, 1, 0]
    assert nearest_neighbours(D)[0].tolist() == [1, 0, 0]


@settings(max_examples=20)
@given(n=st.integers(2, 20), c=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_both_rules_agree_on_the_exact_distances(n, c, seed):
    D = cosine_distances(filter_representatives(rand_weight((n, c, 3, 3), seed)))
    if bool((torch.round(D, decimals=5) + torch.eye(n, dtype=torch.float64) == 0).any()):
        return                                                   # a filter at distance 0: rules may differ
    assert torch.equal(greedy_pair_keep(D, authors_diagonal=True), greedy_pair_keep(D))


def test_authors_diagonal_rule_on_nystrom_finds_self_neighbours_and_threads_through_the_config():
    w = rand_weight((24, 4, 3, 3), seed=3)
    R = filter_representatives(w)
    D_nys = torch.round(nystrom_distances(R, choose_landmarks(24, 2)), decimals=5)   # m = 2 < 9
    theirs, _ = nearest_neighbours(D_nys, authors_diagonal=True)
    assert bool((theirs == torch.arange(24)).any())             # some filter is its own "neighbour"
    ours, _ = nearest_neighbours(D_nys)
    assert not bool((ours == torch.arange(24)).any())
    for authors in (False, True):
        expected = greedy_pair_keep(nystrom_distances(R, choose_landmarks(24, 2)), authors_diagonal=authors)
        got = similarity_keep(w, nystrom=NystromConfig(m=2, authors_diagonal=authors))
        assert torch.equal(got, expected)
        assert nystrom_compare(w, 2, authors_diagonal=authors)["kept_nystrom"] == len(expected)
    # at m = d = 9 the Nyström matrix is exact, its diagonal ≈ 0, and the two rules agree
    assert torch.equal(similarity_keep(w, nystrom=NystromConfig(m=9, authors_diagonal=True)),
                       similarity_keep(w, nystrom=NystromConfig(m=9)))


def test_smallest_exact_m_with_the_authors_rule_is_the_first_m_that_rule_reproduces():
    found_difference = False
    for seed in range(12):
        w = rand_weight((16, 3, 3, 3), seed)
        R = filter_representatives(w)
        theirs = smallest_exact_m(w, authors_diagonal=True)
        exact = greedy_pair_keep(cosine_distances(R), authors_diagonal=True)
        lists = [greedy_pair_keep(nystrom_distances(R, choose_landmarks(16, m)), authors_diagonal=True)
                 for m in range(1, theirs["m"] + 1)]
        assert torch.equal(lists[-1], exact)
        assert not any(torch.equal(k, exact) for k in lists[:-1])
        found_difference |= theirs["m"] != smallest_exact_m(w)["m"]
    assert found_difference                                      # the rule changes m on some layer
