"""Tests of pruning_lib.depth: PLS + VIP layer scores, the stop rule, truncation, the linear
probe head and identity-block removal (A. Jordao, F. Lie, W. R. Schwartz, "Discriminative Layer
Pruning for Convolutional Neural Networks", IEEE JSTSP 14(4), 2020; authors' code:
github.com/arturjordao/DepthWisePruning).

Tiny random ResNets (depth 8 or 20) on 1×16×16 inputs; BatchNorm statistics are randomised so that
eval-mode BN is not the identity and a wrong copy, a missing layer or a post-ReLU feature shows.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from pruning_lib import depth, metrics, models
from pruning_lib.criteria import pls

from support import bn_off_identity

pytestmark = pytest.mark.usefixtures("single_thread")
SIDE = 16                                   # 16 → 8 → 4 maps: divisible by the 4, 2, 1 grids


# Helpers -----------------------------------------------------------------------------------------

def _randomise_bn(model: nn.Module, seed: int) -> nn.Module:
    """``model`` with BatchNorms far from identity, in its own train/eval mode."""
    was_training = model.training
    return bn_off_identity(model, seed, var_span=1.0).train(was_training)


def _resnet(depth: int = 20, *, seed: int = 0, num_classes: int = 10) -> models.ResNetCifar:
    """A random ``ResNetCifar`` in eval mode with random BN affine parameters and statistics."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = models.ResNetCifar(depth=depth, num_classes=num_classes)
    return _randomise_bn(model, seed + 1).eval()


Batches = list[tuple[torch.Tensor, torch.Tensor]]


def _batches(n: int, batch: int, *, seed: int = 0, num_classes: int = 10) -> Batches:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, SIDE, SIDE, generator=g)
    y = torch.randint(0, num_classes, (n,), generator=g)
    return [(x[i:i + batch], y[i:i + batch]) for i in range(0, n, batch)]


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_state_equal(model: nn.Module, snapshot: dict[str, torch.Tensor]) -> None:
    state = model.state_dict()
    assert state.keys() == snapshot.keys()
    for k, v in snapshot.items():
        assert torch.equal(state[k], v), k


def _modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def _unit(u: nn.Module, x: torch.Tensor, relu: bool) -> torch.Tensor:
    """A ConvBNReLU unit by hand: functional conv, eval-mode batch norm, optional ReLU."""
    y = F.conv2d(x, u.conv.weight, None, u.conv.stride, u.conv.padding)
    y = F.batch_norm(y, u.bn.running_mean, u.bn.running_var, u.bn.weight, u.bn.bias, False, 0.0, u.bn.eps)
    return y.clamp_min(0) if relu else y


def _pool(x: torch.Tensor, g: int) -> torch.Tensor:
    """Average over g × g equal tiles (the maps here divide evenly), flattened channel-major."""
    b, c, h, w = x.shape
    return x.reshape(b, c, g, h // g, g, w // g).mean((3, 5)).flatten(1)


def _pooled_head_input(model: models.ResNetCifar, x: torch.Tensor) -> torch.Tensor:
    return torch.flatten(model.pool(model.layer3(model.layer2(model.layer1(model.stem(x))))), 1)


def _random_problem(n: int, p: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, p, generator=g, dtype=torch.float64)
    labels = (torch.arange(n) % k)[torch.randperm(n, generator=g)]        # every class present
    return X, labels


# 1. residual_blocks ------------------------------------------------------------------------------

@pytest.mark.parametrize(("depth", "stage", "expected"), [
    (8, 1, ["layer1.0", "layer2.0", "layer3.0"]),
    (8, 3, ["layer3.0"]),
    (20, 3, ["layer3.0", "layer3.1", "layer3.2"]),
    (20, 2, ["layer2.0", "layer2.1", "layer2.2", "layer3.0", "layer3.1", "layer3.2"]),
])
def test_residual_blocks_hand_cases(depth, stage, expected):
    assert models.residual_blocks(models.ResNetCifar(depth), start_stage=stage) == expected


@pytest.mark.parametrize("depth", [8, 20, 56])
@pytest.mark.parametrize("stage", [1, 2, 3])
def test_residual_blocks_are_the_basic_blocks_in_module_order(depth, stage):
    model = models.ResNetCifar(depth)
    expected = [name for name, m in model.named_modules()
                if isinstance(m, models.BasicBlock) and int(name[len("layer")]) >= stage]
    names = models.residual_blocks(model, start_stage=stage)
    assert names == expected
    assert len(names) == (4 - stage) * (depth - 2) // 6
    assert models.residual_blocks(model) == models.residual_blocks(model, start_stage=3)   # the default


def test_residual_blocks_rejects_other_models_and_stages():
    with pytest.raises(TypeError, match="ResNetCifar"):
        models.residual_blocks(models.build("vgg16_slim"))
    for stage in (0, 4):
        with pytest.raises(ValueError, match="start_stage"):
            models.residual_blocks(models.ResNetCifar(8), start_stage=stage)


# 2. block_features -------------------------------------------------------------------------------

def test_block_features_equal_hand_computed_pre_relu_sums():
    model = _resnet(20)
    loader = _batches(8, 4)
    blocks = models.residual_blocks(model, start_stage=1)
    feats, labels = pls.block_features(model, loader, blocks)
    assert list(feats) == blocks
    assert labels.dtype == torch.int64
    torch.testing.assert_close(labels, torch.cat([y for _, y in loader]), rtol=0, atol=0)

    modules = dict(model.named_modules())
    inputs: dict[str, list[torch.Tensor]] = {b: [] for b in blocks}
    handles = [modules[b].register_forward_pre_hook(lambda _m, inp, b=b: inputs[b].append(inp[0]))
               for b in blocks]
    with torch.no_grad():
        for x, _ in loader:
            model(x)
    for h in handles:
        h.remove()

    channels = {1: 16, 2: 32, 3: 64}
    for b in blocks:
        stage = int(b[len("layer")])
        g = {1: 4, 2: 2, 3: 1}[stage]
        block, x = modules[b], torch.cat(inputs[b])
        with torch.no_grad():
            shortcut = x if isinstance(block.shortcut, nn.Identity) else _unit(block.shortcut, x, False)
            pre_relu = _unit(block.conv2, _unit(block.conv1, x, True), False) + shortcut
        expected = _pool(pre_relu, g).double()
        assert feats[b].shape == (8, channels[stage] * g * g)
        assert feats[b].dtype == torch.float64
        torch.testing.assert_close(feats[b], expected, rtol=1e-5, atol=1e-5)
        assert (feats[b] < 0).any(), f"{b}: no negative feature, so not the pre-ReLU sum"


def test_block_features_n_images_truncates_and_stops_reading(counting_loader):
    model = _resnet(8)
    batches = _batches(12, 4)
    full, all_labels = pls.block_features(model, batches, ["layer1.0", "layer3.0"])
    loader = counting_loader(batches)
    feats, labels = pls.block_features(model, loader, ["layer1.0", "layer3.0"], n_images=5)
    assert loader.batches == 2                                  # 4 + 1 images: the third is never read
    assert labels.shape == (5,)
    torch.testing.assert_close(labels, all_labels[:5], rtol=0, atol=0)
    for b in ("layer1.0", "layer3.0"):
        assert feats[b].shape[0] == 5
        torch.testing.assert_close(feats[b], full[b][:5])
    # n_images above the dataset size: everything
    more, more_labels = pls.block_features(model, batches, ["layer3.0"], n_images=100)
    assert more["layer3.0"].shape[0] == 12 and len(more_labels) == 12


@pytest.mark.parametrize("n_images", [-1, 0])
def test_block_features_and_fit_head_reject_non_positive_n_images(n_images):
    net = _resnet(8)
    with pytest.raises(ValueError, match="n_images must be a positive number"):
        pls.block_features(net, _batches(8, 4), ["layer1.0"], n_images=n_images)
    with pytest.raises(ValueError, match="n_images must be a positive number"):
        depth.fit_head(depth.truncate(net, "layer1.0"), _batches(8, 4), n_images=n_images)


def test_fit_head_without_ridge_on_a_dead_channel_says_what_to_do():
    net = depth.truncate(_resnet(8), "layer1.0")
    zeros = [(torch.zeros(4, 1, 16, 16), torch.arange(4))]        # every pooled feature is the same
    with pytest.raises(ValueError, match="use ridge > 0"):
        depth.fit_head(net, zeros, ridge=0.0)


def _hooks_left(model: nn.Module) -> int:
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


@pytest.mark.parametrize("training", [True, False])
def test_block_features_removes_hooks_restores_mode_and_keeps_weights(training):
    model = _resnet(8).train(training)
    before, modes = _snapshot(model), _modes(model)
    pls.block_features(model, _batches(4, 2), models.residual_blocks(model, 1))
    assert _hooks_left(model) == 0
    assert _modes(model) == modes
    _assert_state_equal(model, before)     # eval mode inside: BN running statistics untouched


def test_block_features_cleans_up_when_the_loader_fails():
    model = _resnet(8).train()

    def broken():
        yield _batches(2, 2)[0]
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        pls.block_features(model, broken(), ["layer2.0"])
    assert _hooks_left(model) == 0
    assert all(_modes(model))


def test_block_features_rejects_unknown_blocks_and_other_models():
    model = _resnet(8)
    for bad in (["layer4.0"], ["layer1.0", "layer1.1"], ["layer1.0.conv1"]):
        with pytest.raises(KeyError, match="not residual blocks"):
            pls.block_features(model, _batches(2, 2), bad)
        assert _hooks_left(model) == 0
    with pytest.raises(TypeError, match="ResNetCifar"):
        pls.block_features(models.build("vgg16_slim"), _batches(2, 2), ["features.conv1"])


# 3. PLS and VIP ----------------------------------------------------------------------------------

@settings(max_examples=20)
@given(n=st.integers(20, 60), p=st.integers(2, 12), data=st.data(), k=st.integers(2, 4),
       seed=st.integers(0, 10_000))
def test_vip_vectorised_equals_looped_reference_and_squares_sum_to_p(n, p, data, k, seed):
    h = data.draw(st.integers(1, min(4, p)), label="h")
    X, labels = _random_problem(n, p, k, seed)
    fit = pls.pls_fit(X, pls.one_hot(labels), h)
    v = pls.vip_from_pls(fit)
    assert v.shape == (p,) and v.dtype == torch.float64
    torch.testing.assert_close(v, pls.vip_reference(fit), rtol=0, atol=1e-10)
    assert float((v ** 2).sum()) == pytest.approx(p, rel=1e-10)
    assert float(v.mean()) <= 1 + 1e-12
    torch.testing.assert_close(pls.vip(X, labels, h), v, rtol=0, atol=1e-12)


def test_vip_with_one_component_and_two_classes_is_the_normalised_correlation():
    # h = 1, binary labels: the standardised one-hot columns are ±y_s, so w ∝ X_sᵀ y_s and
    # VIP_j = sqrt(p) · |corr(x_j, y)| / ‖corr(X, y)‖.
    X, labels = _random_problem(40, 5, 2, seed=3)
    X[:, 1] += 2 * labels                             # give one feature a real correlation
    corr = np.array([np.corrcoef(X[:, j].numpy(), labels.numpy())[0, 1] for j in range(5)])
    expected = np.sqrt(5) * np.abs(corr) / np.linalg.norm(corr)
    np.testing.assert_allclose(pls.vip(X, labels, n_components=1).numpy(), expected, rtol=1e-6)


def test_planted_label_feature_gets_the_top_vip():
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(60) % 3
    X = torch.randn(60, 8, generator=g, dtype=torch.float64)
    X[:, 5] = labels + 0.1 * torch.randn(60, generator=g, dtype=torch.float64)
    s = pls.vip(X, labels, n_components=2)
    assert int(s.argmax()) == 5
    assert s[5] > 1 > s[torch.arange(8) != 5].max()


def test_vip_is_invariant_to_feature_scale_and_equivariant_to_feature_order():
    X, labels = _random_problem(50, 6, 3, seed=7)
    X[:, 2] += labels
    base = pls.vip(X, labels, n_components=3)
    scaled = X.clone()
    scaled[:, 2] *= 1000.0
    scaled[:, 4] *= 1e-3
    torch.testing.assert_close(pls.vip(scaled, labels, n_components=3), base, rtol=1e-6, atol=1e-6)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    torch.testing.assert_close(pls.vip(X[:, perm], labels, n_components=3), base[perm],
                               rtol=1e-6, atol=1e-6)


def test_pls_fit_rejects_bad_shapes_and_component_counts_and_leaves_inputs_alone():
    X, labels = _random_problem(10, 4, 2, seed=0)
    Y = pls.one_hot(labels)
    X0, Y0 = X.clone(), Y.clone()
    for h in (0, 5, -1):                              # min(N, p) = 4
        with pytest.raises(ValueError, match="n_components"):
            pls.pls_fit(X, Y, h)
    with pytest.raises(ValueError, match=r"n_components must be in \[1, min\(N, p\)\] = \[1, 3\]"):
        pls.pls_fit(X[:3], Y[:3], 4)                   # fewer samples than components
    with pytest.raises(ValueError, match="same N"):
        pls.pls_fit(X, Y[:9])
    with pytest.raises(ValueError, match="same N"):
        pls.pls_fit(X[:, 0], Y)
    with pytest.raises(ValueError):                   # one sample (scikit-learn's own check)
        pls.pls_fit(X[:1], Y[:1], 1)
    pls.vip(X, labels, 2)
    assert torch.equal(X, X0) and torch.equal(Y, Y0)
    assert pls.pls_fit(X, Y, 4).n_components == 4      # the boundary min(N, p) is allowed


def test_one_hot_hand_case():
    torch.testing.assert_close(pls.one_hot(torch.tensor([2, 0])),
                               torch.tensor([[0, 0, 1], [1, 0, 0]], dtype=torch.float64))
    assert pls.one_hot(torch.tensor([0, 1]), num_classes=4).shape == (2, 4)


# 4. layer_scores ---------------------------------------------------------------------------------

def test_layer_scores_are_mean_vips_in_input_order():
    X1, labels = _random_problem(30, 6, 3, seed=1)
    X2, _ = _random_problem(30, 9, 3, seed=2)
    X2[:, 0] += labels
    features = {"layer3.1": X2, "layer1.0": X1}       # deliberately not sorted
    scores = pls.layer_scores(features, labels, n_components=2)
    assert list(scores) == ["layer3.1", "layer1.0"]
    for b, X in features.items():
        assert scores[b] == pytest.approx(float(pls.vip(X, labels, 2).mean()), abs=1e-12)
        assert 0 < scores[b] <= 1


def test_layer_scores_on_real_block_features():
    model = _resnet(8)
    loader = _batches(24, 8, num_classes=3)
    feats, labels = pls.block_features(model, loader, models.residual_blocks(model, 1))
    scores = pls.layer_scores(feats, labels, n_components=2)
    assert list(scores) == ["layer1.0", "layer2.0", "layer3.0"]
    assert all(0 < s <= 1 for s in scores.values())


# 5. stop_index -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("scores", "expected"), [
    ([0.5, 0.7, 0.6, 0.9], 1), ([0.5, 0.6, 0.7], 2), ([0.5, 0.5], 0), ([0.3], 0),
    ([0.9, 0.8, 0.7], 0), ([0.1, 0.2, 0.2, 0.3], 1), ((1.0, 2.0, 3.0, 0.0), 2),
])
def test_stop_index_hand_cases(scores, expected):
    assert pls.stop_index(scores) == expected


@given(st.lists(st.one_of(st.integers(0, 4).map(float), st.floats(-10, 10)), min_size=1, max_size=20))
def test_stop_index_is_the_end_of_the_first_strictly_rising_run(scores):
    i = pls.stop_index(scores)
    assert 0 <= i < len(scores)
    assert all(scores[j] < scores[j + 1] for j in range(i))
    assert i == len(scores) - 1 or scores[i + 1] <= scores[i]


def test_stop_index_rejects_no_scores():
    with pytest.raises(ValueError, match="at least one"):
        pls.stop_index([])


# 6. truncate -------------------------------------------------------------------------------------

def test_truncated_trunk_reproduces_every_block_output_and_copies_weights():
    model = _resnet(20)
    blocks = models.residual_blocks(model, 1)
    modules = dict(model.named_modules())
    outputs: dict[str, torch.Tensor] = {}
    handles = [modules[b].register_forward_hook(lambda _m, _i, out, b=b: outputs.__setitem__(b, out))
               for b in blocks]
    x = _batches(3, 3)[0][0]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    for b in blocks:
        net = depth.truncate(model, b)
        assert isinstance(net, depth.TruncatedResNet)
        assert not net.training
        assert len(net.trunk) == blocks.index(b) + 1
        with torch.no_grad():
            trunk_out = net.trunk(net.stem(x))
            torch.testing.assert_close(trunk_out, outputs[b], rtol=0, atol=0)
            torch.testing.assert_close(net(x), net.fc(trunk_out.mean((2, 3))), rtol=1e-5, atol=1e-5)
        assert net.fc.in_features == outputs[b].shape[1] and net.fc.out_features == 10


def test_truncating_after_the_last_block_with_the_old_head_is_the_original_network():
    model = _resnet(8)
    net = depth.truncate(model, "layer3.0")
    net.fc.load_state_dict(model.fc.state_dict())
    x = _batches(2, 2)[0][0]
    with torch.no_grad():
        torch.testing.assert_close(net(x), model(x), rtol=1e-5, atol=1e-5)


def test_truncate_cost_grows_with_the_cut_depth():
    model = _resnet(20)
    example = torch.zeros(1, 1, SIDE, SIDE)
    nets = [depth.truncate(model, b) for b in models.residual_blocks(model, 1)]
    params = [metrics.count_params(n) for n in nets]
    macs = [metrics.count_macs(n, example) for n in nets]
    assert all(a < b for a, b in zip(params, params[1:], strict=False))
    assert all(a < b for a, b in zip(macs, macs[1:], strict=False))
    assert params[-1] == metrics.count_params(model)      # cut after the last block: same layers
    assert macs[-1] == metrics.count_macs(model, example)
    assert params[-2] < metrics.count_params(model) and macs[-2] < metrics.count_macs(model, example)


def test_truncate_leaves_the_input_model_alone_and_shares_no_storage():
    model = _resnet(8).train()
    before, rng = _snapshot(model), torch.random.get_rng_state()
    net = depth.truncate(model, "layer2.0")
    assert torch.equal(torch.random.get_rng_state(), rng)        # the head seed does not leak
    assert net.training and all(_modes(net))
    original = {t.data_ptr() for t in list(model.parameters()) + list(model.buffers())}
    assert not original & {t.data_ptr() for t in list(net.parameters()) + list(net.buffers())}
    with torch.no_grad():
        for t in list(net.parameters()) + list(net.buffers()):
            t.fill_(7)
    _assert_state_equal(model, before)
    assert all(_modes(model))


def test_truncate_head_is_seeded():
    model = _resnet(8)
    a, b = depth.truncate(model, "layer2.0", seed=3), depth.truncate(model, "layer2.0", seed=3)
    c = depth.truncate(model, "layer2.0", seed=4)
    assert torch.equal(a.fc.weight, b.fc.weight) and torch.equal(a.fc.bias, b.fc.bias)
    assert not torch.equal(a.fc.weight, c.fc.weight)
    torch.testing.assert_close(a.trunk[0].conv1.conv.weight, c.trunk[0].conv1.conv.weight)


def test_truncate_rejects_unknown_blocks_and_other_models():
    model = _resnet(8)
    before = _snapshot(model)
    for bad in ("layer1.1", "layer4.0", "fc", "layer1.0.conv1"):
        with pytest.raises(KeyError, match="unknown block"):
            depth.truncate(model, bad)
    _assert_state_equal(model, before)
    with pytest.raises(TypeError, match="ResNetCifar"):
        depth.truncate(models.build("vgg16_slim"), "features.conv1")


# 7. fit_head -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def probe_problem():
    """A random ResNet-8 with 3 classes and 120 images whose labels are argmax of a linear map of
    the pooled head inputs (so a linear probe can fit them)."""
    model = _resnet(8, num_classes=3, seed=5)
    with torch.no_grad():
        model.layer3[-1].conv2.bn.bias.fill_(0.5)             # no dead (all-zero) head input
    g = torch.Generator().manual_seed(6)
    x = torch.randn(120, 1, SIDE, SIDE, generator=g)
    with torch.no_grad():
        feats = _pooled_head_input(model, x).double()
    z = (feats - feats.mean(0)) / feats.std(0)
    labels = (z @ torch.randn(feats.shape[1], 3, generator=g, dtype=torch.float64)).argmax(1)
    loader = [(x[i:i + 30], labels[i:i + 30]) for i in range(0, 120, 30)]
    return model, x, feats, labels, loader


def _accuracy(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == labels).double().mean())


def test_fit_head_fits_a_linearly_generated_labelling(probe_problem):
    model, x, _, labels, loader = probe_problem
    assert min(torch.bincount(labels, minlength=3)) >= 20      # the problem uses every class
    fitted = depth.fit_head(model, loader, ridge=1e-6)
    assert _accuracy(fitted, x, labels) >= 0.9
    assert _accuracy(model, x, labels) < 0.6                  # the random head does not


def test_fit_head_without_ridge_is_least_squares(probe_problem):
    model, _, feats, labels, loader = probe_problem
    A = torch.cat([feats, torch.ones(len(feats), 1, dtype=torch.float64)], 1)
    assert torch.linalg.cond(A) < 1e4         # well enough conditioned for float32 weights to agree
    coef = torch.linalg.lstsq(A, pls.one_hot(labels, 3)).solution    # (C + 1, 3)
    fitted = depth.fit_head(model, loader, ridge=0.0)
    torch.testing.assert_close(fitted.fc.weight.double(), coef[:-1].T, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fitted.fc.bias.double(), coef[-1], rtol=1e-4, atol=1e-4)


def test_fit_head_with_ridge_matches_the_stacked_least_squares_form(probe_problem):
    # min ‖A c − Y‖² + λN‖W‖²  ==  min ‖[A; sqrt(λN)·[I 0]] c − [Y; 0]‖²   (bias not penalised)
    model, _, feats, labels, loader = probe_problem
    ridge, n, c = 0.05, len(feats), feats.shape[1]
    A = np.hstack([feats.numpy(), np.ones((n, 1))])
    penalty = np.hstack([np.sqrt(ridge * n) * np.eye(c), np.zeros((c, 1))])
    Y = np.vstack([pls.one_hot(labels, 3).numpy(), np.zeros((c, 3))])
    coef = np.linalg.lstsq(np.vstack([A, penalty]), Y, rcond=None)[0]
    fitted = depth.fit_head(model, loader, ridge=ridge)
    np.testing.assert_allclose(fitted.fc.weight.detach().double().numpy(), coef[:-1].T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fitted.fc.bias.detach().double().numpy(), coef[-1], rtol=1e-4, atol=1e-5)


def test_fit_head_n_images_uses_the_first_images_only(probe_problem, counting_loader):
    model, _, _, _, loader = probe_problem
    counted = counting_loader(loader)
    on_first = depth.fit_head(model, counted, n_images=45, ridge=0.01)
    assert counted.batches == 2
    first_45 = [loader[0], (loader[1][0][:15], loader[1][1][:15])]
    reference = depth.fit_head(model, first_45, ridge=0.01)
    torch.testing.assert_close(on_first.fc.weight, reference.fc.weight)
    torch.testing.assert_close(on_first.fc.bias, reference.fc.bias)


def test_fit_head_changes_only_the_head_of_a_copy(probe_problem):
    model, _, _, _, loader = probe_problem
    model.train()
    try:
        before, modes = _snapshot(model), _modes(model)
        fitted = depth.fit_head(model, loader)
        _assert_state_equal(model, before)                     # also: BN statistics not updated
        assert _modes(model) == modes and _modes(fitted) == modes
        assert _hooks_left(model) == 0 and _hooks_left(fitted) == 0
        after = fitted.state_dict()
        assert after.keys() == before.keys()
        for k, v in before.items():
            assert torch.equal(after[k], v) == (not k.startswith("fc.")), k
    finally:
        model.eval()


def test_fit_head_on_a_truncated_network(probe_problem):
    model, x, _, labels, loader = probe_problem
    net = depth.truncate(model, "layer2.0")
    fitted = depth.fit_head(net, loader)
    assert isinstance(fitted, depth.TruncatedResNet)
    with torch.no_grad():
        f = net.trunk(net.stem(x)).mean((2, 3)).double()
    A = torch.cat([f, torch.ones(len(f), 1, dtype=torch.float64)], 1)
    Y = pls.one_hot(labels, 3)
    lam = 1e-3 * len(f) * torch.eye(A.shape[1], dtype=torch.float64)
    lam[-1, -1] = 0
    coef = torch.linalg.solve(A.T @ A + lam, A.T @ Y)
    torch.testing.assert_close(fitted.fc.weight.double(), coef[:-1].T, rtol=1e-4, atol=1e-4)


# 8. remove_blocks --------------------------------------------------------------------------------

def test_removing_identity_blocks_equals_the_hand_composed_forward():
    model = _resnet(20)
    x = _batches(2, 2)[0][0]
    new = depth.remove_blocks(model, ["layer1.1"])
    assert isinstance(new.layer1[1], nn.Identity)
    with torch.no_grad():
        h = model.layer1[2](model.layer1[0](model.stem(x)))
        expected = model.fc(torch.flatten(model.pool(model.layer3(model.layer2(h))), 1))
        torch.testing.assert_close(new(x), expected, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(new(x), model(x), atol=1e-3)      # the block did something

    two = depth.remove_blocks(model, ["layer1.0", "layer3.2"])
    with torch.no_grad():
        h = model.layer2(model.layer1[2](model.layer1[1](model.stem(x))))
        h = model.layer3[1](model.layer3[0](h))
        torch.testing.assert_close(two(x), model.fc(torch.flatten(model.pool(h), 1)), rtol=1e-5, atol=1e-5)
    block_params = metrics.count_params(model.layer1[0]) + metrics.count_params(model.layer3[2])
    assert metrics.count_params(two) == metrics.count_params(model) - block_params
    assert isinstance(model.layer1[1], models.BasicBlock)      # the input keeps its blocks


def test_remove_blocks_rejects_projection_blocks_and_unknown_names():
    model = _resnet(20)
    before = _snapshot(model)
    for bad in (["layer2.0"], ["layer1.1", "layer3.0"]):
        with pytest.raises(ValueError, match="projection shortcut"):
            depth.remove_blocks(model, bad)
    for bad in (["layer4.0"], ["layer1.1", "layer1.3"], ["layer1.1.conv1"]):
        with pytest.raises(KeyError, match="unknown blocks"):
            depth.remove_blocks(model, bad)
    with pytest.raises(TypeError, match="ResNetCifar"):
        depth.remove_blocks(models.build("vgg16_slim"), [])
    _assert_state_equal(model, before)
    assert all(isinstance(m, models.BasicBlock) for m in model.layer1)
