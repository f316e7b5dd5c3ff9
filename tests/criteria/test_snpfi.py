"""SNPFI (arXiv:2307.00758, our reconstruction): nested permutation masks; Shapley values against
additive and hand-solved games, the subset formula and the per-order efficiency axiom; the saturation
rule for the kept count; coalition values and layer games on a tiny ResNet; the KL recovery."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from pruning_lib import models, surgery
from pruning_lib.criteria.ensembles import masked_losses
from pruning_lib.criteria.snpfi import (
    SNPFIConfig,
    coalition_values,
    exact_shapley,
    keep_count,
    layer_game,
    permutation_masks,
    recover,
    shapley_from_values,
    snpfi_scores,
)

pytestmark = pytest.mark.usefixtures("single_thread")

EXAMPLE = torch.zeros(1, 1, 16, 16)
LAYER = "layer1.0.conv1.conv"          # 16 filters, not coupled to a residual add
LAYER2 = "layer2.0.conv1.conv"         # 32 filters


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny_resnet(seed: int = 0) -> nn.Module:
    """ResNetCifar(8) in eval mode with random BN statistics and a scaled classifier (logits of order
    1, so the true-class log-probability clearly depends on which filters are kept)."""
    torch.manual_seed(seed)
    model = models.ResNetCifar(depth=8)
    g = gen(seed + 100)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.weight.copy_(0.8 + 0.8 * torch.rand(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
            elif isinstance(m, nn.Linear):
                m.weight.mul_(10.0)
    return model.eval()


def batch(n: int = 3, seed: int = 1) -> tuple[Tensor, Tensor]:
    g = gen(seed)
    return torch.randn(n, 1, 16, 16, generator=g), torch.randint(0, 10, (n,), generator=g)


def random_orders(t: int, n: int, seed: int) -> Tensor:
    g = gen(seed)
    return torch.stack([torch.randperm(n, generator=g) for _ in range(t)])


def state_copy(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(model: nn.Module, before: dict[str, Tensor]) -> None:
    after = model.state_dict()
    assert after.keys() == before.keys()
    for k, v in before.items():
        assert torch.equal(after[k], v), k


def table_game(table: Tensor) -> callable:
    """The game whose value of the coalition with bitmask b = Σ_i mask_i 2^i is ``table[b]``."""
    def value(masks: Tensor) -> Tensor:
        n = masks.shape[1]
        index = (masks.round().long() * (2 ** torch.arange(n))).sum(1)
        return table[index].double()
    return value


def subset_shapley(value: callable, n: int) -> Tensor:
    """φ_i = Σ_{S ∌ i} |S|! (n − |S| − 1)! / n! · (v(S ∪ {i}) − v(S)), by enumerating subsets."""
    phi = torch.zeros(n, dtype=torch.float64)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for subset in itertools.combinations(others, size):
                without = torch.zeros(1, n, dtype=torch.float64)
                without[0, list(subset)] = 1.0
                with_i = without.clone()
                with_i[0, i] = 1.0
                phi[i] += weight * (value(with_i) - value(without)).item()
    return phi


# 1. permutation_masks --------------------------------------------------------------------------

def test_permutation_masks_docstring_example():
    expected = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    assert torch.equal(permutation_masks(torch.tensor([[2, 0, 1]]))[0], expected)


@settings(max_examples=25)
@given(n=st.integers(1, 9), t=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_permutation_masks_are_nested_and_add_the_ordered_filter(n: int, t: int, seed: int):
    perms = random_orders(t, n, seed)
    masks = permutation_masks(perms)
    assert masks.shape == (t, n + 1, n)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(masks.sum(2), torch.arange(n + 1, dtype=masks.dtype).expand(t, n + 1))
    assert bool((masks[:, :-1] <= masks[:, 1:]).all())                    # nested
    for i in range(t):
        for k in range(1, n + 1):
            added = (masks[i, k] - masks[i, k - 1]).nonzero().flatten().tolist()
            assert added == [int(perms[i, k - 1])]


# 2. Shapley values -----------------------------------------------------------------------------

@settings(max_examples=15)
@given(n=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_exact_shapley_of_an_additive_game_is_its_weights(n: int, seed: int):
    w = torch.randn(n, generator=gen(seed), dtype=torch.float64)
    phi = exact_shapley(lambda masks: masks @ w + 3.0, n)                 # a constant does not matter
    assert phi.shape == (n,)
    torch.testing.assert_close(phi, w, rtol=0, atol=1e-12)


def test_exact_shapley_of_the_majority_game_is_one_third_each():
    phi = exact_shapley(lambda masks: (masks.sum(1) >= 2).double(), 3)
    torch.testing.assert_close(phi, torch.full((3,), 1 / 3, dtype=torch.float64), rtol=0, atol=1e-12)


def test_exact_shapley_of_a_game_with_a_dummy_and_two_symmetric_players():
    # v = 1 only when players 0 and 1 are both present (glove game); player 2 is a dummy.
    phi = exact_shapley(lambda masks: (masks[:, 0] * masks[:, 1]).double(), 3)
    torch.testing.assert_close(phi, torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64),
                               rtol=0, atol=1e-12)
    # an asymmetric hand game: v({0}) = 1, v({1}) = 2, v({0, 1}) = 6, player 2 a dummy
    # φ_0 = (1 + (6 − 2)) / 2 = 2.5, φ_1 = (2 + (6 − 1)) / 2 = 3.5
    table = torch.tensor([0.0, 1.0, 2.0, 6.0, 0.0, 1.0, 2.0, 6.0])
    phi = exact_shapley(table_game(table), 3)
    torch.testing.assert_close(phi, torch.tensor([2.5, 3.5, 0.0], dtype=torch.float64),
                               rtol=0, atol=1e-12)


@settings(max_examples=10)
@given(n=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_exact_shapley_matches_the_subset_formula(n: int, seed: int):
    value = table_game(torch.randn(2 ** n, generator=gen(seed), dtype=torch.float64))
    torch.testing.assert_close(exact_shapley(value, n), subset_shapley(value, n), rtol=0, atol=1e-10)


@settings(max_examples=20)
@given(n=st.integers(1, 7), seed=st.integers(0, 10_000))
def test_efficiency_holds_for_every_single_sampled_order(n: int, seed: int):
    table = torch.randn(2 ** n, generator=gen(seed), dtype=torch.float64)   # not additive
    value = table_game(table)
    for perm in random_orders(4, n, seed + 1):
        perms = perm[None]
        values = value(permutation_masks(perms).reshape(-1, n)).view(1, n + 1)
        phi = shapley_from_values(perms, values)
        assert phi.shape == (n,)
        assert phi.sum().item() == pytest.approx((table[-1] - table[0]).item(), abs=1e-10)
        # each player's value in a single order is its own marginal contribution
        for k in range(n):
            assert phi[int(perm[k])].item() == pytest.approx((values[0, k + 1] - values[0, k]).item())


def test_monte_carlo_estimate_approaches_exact_shapley():
    n = 5
    value = table_game(torch.rand(2 ** n, generator=gen(7), dtype=torch.float64))
    perms = random_orders(3000, n, seed=8)
    values = value(permutation_masks(perms).reshape(-1, n)).view(len(perms), n + 1)
    estimate = shapley_from_values(perms, values)
    exact = exact_shapley(value, n)
    torch.testing.assert_close(estimate, exact, rtol=0, atol=0.05)
    # a handful of orders is visibly less accurate than 3000 (the estimate does converge)
    few = shapley_from_values(perms[:3], values[:3])
    assert (few - exact).abs().max() > (estimate - exact).abs().max()


def test_exact_shapley_refuses_more_than_eight_players():
    with pytest.raises(ValueError, match="n ≤ 8"):
        exact_shapley(lambda masks: masks.sum(1).double(), 9)


# 3. keep_count ---------------------------------------------------------------------------------

def test_keep_count_docstring_examples():
    assert keep_count(torch.tensor([0.0, 5.0, 9.0, 9.5, 10.0]), 0.9) == 2
    assert keep_count(torch.tensor([0.0, 1.0, 2.0]), 1.0) == 2


@settings(max_examples=40)
@given(steps=st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=8),
       shares=st.tuples(st.floats(0.01, 1.0), st.floats(0.01, 1.0)))
def test_keep_count_is_monotone_in_share(steps: list[float], shares: tuple[float, float]):
    curve = torch.tensor([0.0, *itertools.accumulate(steps)], dtype=torch.float64)
    if curve[-1] < curve[0]:                      # the rule is about gains; see the negative case below
        curve = -curve
    low, high = sorted(shares)
    m_low, m_high = keep_count(curve, low), keep_count(curve, high)
    n = len(curve) - 1
    assert 1 <= m_low <= m_high <= n
    # m is the smallest count that reaches the share
    gain = curve - curve[0]
    assert gain[m_high] >= high * gain[-1]
    assert all(gain[m] < high * gain[-1] for m in range(1, m_high))


def test_keep_count_returns_n_when_the_gain_comes_only_at_the_end():
    assert keep_count(torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0]), 0.5) == 4
    assert keep_count(torch.tensor([2.0, 1.0, 1.5, 3.0]), 0.95) == 3


def test_keep_count_of_a_flat_curve_is_one():
    assert keep_count(torch.full((6,), -1.25), 0.95) == 1


@pytest.mark.parametrize("share", [0.0, -0.1, 1.5])
def test_keep_count_rejects_shares_outside_zero_one(share: float):
    with pytest.raises(ValueError, match="share"):
        keep_count(torch.tensor([0.0, 1.0, 2.0]), share)


# 4. coalition values ---------------------------------------------------------------------------

def test_coalition_values_are_minus_masked_losses_and_full_mask_is_mean_log_prob():
    model = tiny_resnet()
    x, y = batch()
    masks = (torch.rand(5, 16, generator=gen(3)) < 0.5).float()
    masks[0] = 1.0
    values = coalition_values(model, LAYER, masks, (x, y), chunk=2)
    torch.testing.assert_close(values, -masked_losses(model, [LAYER], masks, x, y, chunk=5),
                               rtol=0, atol=1e-5)            # other chunks, other batch sizes, other kernels
    with torch.no_grad():
        logits = model(x)
    log_prob = logits - logits.exp().sum(1, keepdim=True).log()            # log_softmax by hand
    expected = log_prob[torch.arange(len(y)), y].mean().item()
    assert values[0].item() == pytest.approx(expected, abs=1e-5)
    assert values[0].item() < 0
    assert (values.max() - values.min()).item() > 1e-3                     # the masks matter


# 5. layer_game ---------------------------------------------------------------------------------

def test_layer_game_shapes_endpoints_efficiency_and_purity():
    model = tiny_resnet()
    before = state_copy(model)
    data = batch()
    config = SNPFIConfig(n_permutations=3, share=0.9, chunk=17, seed=0)
    game = layer_game(model, LAYER, data, config=config)
    n = 16
    assert game["phi"].shape == (n,)
    assert game["utilisation"].shape == (n + 1,)
    ends = coalition_values(model, LAYER, torch.stack([torch.zeros(n), torch.ones(n)]), data)
    assert game["v_none"] == pytest.approx(ends[0].item(), abs=1e-5)     # chunk 17 vs the default
    assert game["v_all"] == pytest.approx(ends[1].item(), abs=1e-5)
    assert game["utilisation"][0].item() == pytest.approx(game["v_none"], abs=1e-9)
    assert game["utilisation"][-1].item() == pytest.approx(game["v_all"], abs=1e-9)
    assert game["phi"].sum().item() == pytest.approx(game["v_all"] - game["v_none"], abs=1e-5)
    assert isinstance(game["keep"], int) and 1 <= game["keep"] <= n
    assert game["keep"] == keep_count(game["utilisation"], config.share)
    assert_same_state(model, before)
    assert not model.training
    assert not any(m._forward_hooks for m in model.modules())

    again = layer_game(model, LAYER, data, config=config)
    assert torch.equal(again["phi"], game["phi"])
    assert torch.equal(again["utilisation"], game["utilisation"])
    other = layer_game(model, LAYER, data, config=SNPFIConfig(n_permutations=3, chunk=17, seed=1))
    assert not torch.allclose(other["phi"], game["phi"])
    assert other["phi"].sum().item() == pytest.approx(game["v_all"] - game["v_none"], abs=1e-5)


# 6. snpfi_scores -------------------------------------------------------------------------------

def test_snpfi_scores_one_game_per_layer_in_order():
    model = tiny_resnet()
    data = batch(n=2)
    config = SNPFIConfig(n_permutations=2, chunk=33, seed=4)
    layers = [LAYER2, LAYER]                                               # not forward order
    scores, games = snpfi_scores(model, data, layers=iter(layers), config=config)
    assert list(scores) == layers
    assert list(games) == layers
    assert [len(scores[name]) for name in layers] == [32, 16]
    for name in layers:
        assert torch.equal(scores[name], games[name]["phi"])
        assert torch.equal(scores[name], layer_game(model, name, data, config=config)["phi"])


# 7. recover ------------------------------------------------------------------------------------

def mean_kl(teacher: nn.Module, student: nn.Module, loader: list[tuple[Tensor, Tensor]]) -> float:
    with torch.no_grad():
        kls = [nn.functional.kl_div(nn.functional.log_softmax(student(x), 1),
                                    nn.functional.log_softmax(teacher(x), 1),
                                    log_target=True, reduction="batchmean").item() for x, _ in loader]
    return sum(kls) / len(kls)


def bn_buffers(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()
            if "running" in k or "num_batches_tracked" in k}


def test_recover_distils_a_new_model_and_leaves_its_inputs_alone():
    teacher = tiny_resnet(seed=3)
    # a heavy pruning of the three stages' first convs: the residual paths keep the outputs close, so
    # it takes this much for a clear gap to close
    plan = {"removed": {LAYER: list(range(12)), LAYER2: list(range(26)),
                        "layer3.0.conv1.conv": list(range(56))}, "coupled": []}
    pruned = surgery.apply_plan(teacher, plan, EXAMPLE).eval()
    loader = [batch(n=4, seed=s) for s in (10, 11)]
    teacher_before, pruned_before = state_copy(teacher), state_copy(pruned)
    kl_before = mean_kl(teacher, pruned, loader)
    assert kl_before > 0.03                                                # the pruning did change things
    unchanged = recover(pruned, teacher, loader, steps=0)
    assert unchanged is not pruned
    assert_same_state(unchanged, pruned_before)

    student = recover(pruned, teacher, loader, steps=20, lr=1e-2)

    assert student is not pruned
    assert type(student) is type(pruned)
    assert not student.training
    assert {k: v.shape for k, v in student.state_dict().items()} == \
        {k: v.shape for k, v in pruned.state_dict().items()}
    assert_same_state(pruned, pruned_before)
    assert_same_state(teacher, teacher_before)
    assert all(p.grad is None for p in teacher.parameters())
    kl_after = mean_kl(teacher, student, loader)
    assert kl_after < 0.5 * kl_before, (kl_before, kl_after)
    # BatchNorm statistics were not re-estimated (eval mode kept); the weights did move
    after, before = bn_buffers(student), bn_buffers(pruned)
    assert after.keys() == before.keys() and len(after) > 0
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert any(not torch.equal(a, b) for a, b in zip(student.parameters(), pruned.parameters(), strict=True))


@pytest.mark.parametrize("curve", [[0.0, -1.0, -3.0], [0.0, -3.0, -2.0], [1.0, 1.0, 1.0]])
@pytest.mark.parametrize("share", [0.1, 0.5, 1.0])
def test_keep_count_without_a_positive_gain_keeps_one_filter(curve, share):
    assert keep_count(torch.tensor(curve), share) == 1


def test_games_survive_a_json_round_trip_bit_for_bit():
    import json

    from pruning_lib.criteria.snpfi import games_from_records, games_to_records
    model = tiny_resnet()
    phi, games = snpfi_scores(model, batch(), layers=[LAYER], config=SNPFIConfig(n_permutations=2, seed=0))
    rows = json.loads(json.dumps(games_to_records(games, seconds=1.5)))
    assert rows[0]["seconds"] == 1.5 and rows[0]["layer"] == LAYER
    phi_back, games_back = games_from_records(rows)
    assert torch.equal(phi_back[LAYER], phi[LAYER])
    for key in ("phi", "utilisation"):
        assert games_back[LAYER][key].dtype == games[LAYER][key].dtype
        assert torch.equal(games_back[LAYER][key], games[LAYER][key])
    assert {k: games_back[LAYER][k] for k in ("keep", "v_all", "v_none")} == \
        {k: games[LAYER][k] for k in ("keep", "v_all", "v_none")}


def test_game_records_are_snpfi_scores_with_times():
    from pruning_lib.criteria.snpfi import game_records, games_from_records
    model, data = tiny_resnet(), batch()
    config = SNPFIConfig(n_permutations=2, seed=3)
    layers = [LAYER, "layer1.0.conv2.conv"]
    phi, games = snpfi_scores(model, data, layers=layers, config=config)
    rows = game_records(model, data, layers=layers, config=config)
    assert [r["layer"] for r in rows] == layers and all(r["seconds"] >= 0 for r in rows)
    phi_back, games_back = games_from_records(rows)
    for layer in layers:
        assert torch.equal(phi_back[layer], phi[layer])
        assert torch.equal(games_back[layer]["utilisation"], games[layer]["utilisation"])
        assert games_back[layer]["keep"] == games[layer]["keep"]
