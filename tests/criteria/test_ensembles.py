"""Linear filter ensembles (arXiv:2001.08142, our reconstruction): masked losses checked against
physically pruned models (surgery) and a one-mask-per-pass reference; mask sampling; the ridge fit on
planted additive models; end-to-end scores (seeds, a dead filter, the hand-made pipeline); helpers."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from pruning_lib import models, surgery
from pruning_lib.criteria.ensembles import (
    EnsembleConfig,
    ensemble_scores,
    first_batch,
    fit_importance,
    masked_losses,
    masked_losses_reference,
    sample_masks,
    switch_off_sites,
)

pytestmark = pytest.mark.usefixtures("single_thread")

EXAMPLE = torch.zeros(1, 1, 28, 28)
VGG_LAYERS = ["features.conv2.conv", "features.conv5.conv", "features.conv9.conv"]   # 16 + 64 + 128


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randomised_vgg(seed: int = 0) -> nn.Module:
    """vgg16_slim in eval mode with random BN running stats and affine parameters (not the identity
    BN of a fresh model, so that a mask applied at the wrong place would show)."""
    torch.manual_seed(seed)
    model = models.build("vgg16_slim")
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
                m.weight.mul_(20.0)            # logits of order 1, so the loss depends on the masks
    return model.eval()


def tiny_resnet(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return models.ResNetCifar(depth=8).eval()


def batch(n: int = 3, size: int = 28, seed: int = 1) -> tuple[Tensor, Tensor]:
    g = gen(seed)
    return torch.randn(n, 1, size, size, generator=g), torch.randint(0, 10, (n,), generator=g)


def widths(model: nn.Module, layers: list[str]) -> list[int]:
    w = models.conv_widths(model)
    return [w[name] for name in layers]


def masks_keeping_one_per_layer(sizes: list[int], k: int, seed: int) -> Tensor:
    """Random keep-masks (q = 0.6) in which every layer keeps at least one filter (a valid plan)."""
    masks = sample_masks(sum(sizes), k, 0.6, gen(seed))
    start = 0
    for n in sizes:
        masks[:, start] = 1.0
        start += n
    return masks


def plan_from_mask(layers: list[str], sizes: list[int], mask: Tensor) -> dict:
    removed, start = {}, 0
    for name, n in zip(layers, sizes, strict=True):
        removed[name] = [i for i in range(n) if mask[start + i] == 0]
        start += n
    return {"removed": removed, "coupled": []}


def hooks_left(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules()
            if m._forward_hooks or m._forward_pre_hooks]


# --- masked ≡ pruned ---------------------------------------------------------------------------------

def test_masked_loss_equals_loss_of_physically_pruned_model():
    model = randomised_vgg()
    x, y = batch()
    sizes = widths(model, VGG_LAYERS)
    masks = masks_keeping_one_per_layer(sizes, 4, seed=3)
    losses = masked_losses(model, VGG_LAYERS, masks, x, y, chunk=3)
    assert losses.dtype == torch.float64 and losses.shape == (4,)
    for mask, loss in zip(masks, losses, strict=True):
        plan = plan_from_mask(VGG_LAYERS, sizes, mask)
        assert sum(len(v) for v in plan["removed"].values()) > 10       # a real pruning
        pruned = surgery.apply_plan(model, plan, EXAMPLE).eval()
        assert [pruned.get_submodule(n).out_channels for n in VGG_LAYERS] == \
            [n - len(plan["removed"][name]) for name, n in zip(VGG_LAYERS, sizes, strict=True)]
        with torch.no_grad():
            expected = nn.functional.cross_entropy(pruned(x), y).item()
        assert loss.item() == pytest.approx(expected, abs=1e-5)
    # the masks matter: different masks, clearly different losses
    assert (losses.max() - losses.min()).item() > 1e-3


def test_all_ones_mask_gives_the_unmasked_loss_and_masking_differs():
    model = randomised_vgg(seed=1)
    x, y = batch()
    n = sum(widths(model, VGG_LAYERS))
    responses = {}
    handle = model.features.conv5.register_forward_hook(lambda _m, _i, out: responses.update(out=out))
    try:
        with torch.no_grad():
            plain = nn.functional.cross_entropy(model(x), y).item()
    finally:
        handle.remove()
    # Switch off the conv5 filter with the largest post-ReLU response on this batch (not a fixed
    # index: which filters are dead for a random batch can depend on the CPU's conv kernels).
    strength = responses["out"].sum(dim=(0, 2, 3))                      # (64,)
    strongest = int(strength.argmax())
    assert strength[strongest].item() > 1.0                              # clearly alive
    ones_and_zeros_one = torch.ones(2, n)
    ones_and_zeros_one[1, 16 + strongest] = 0.0                          # conv2 has 16 filters
    losses = masked_losses(model, VGG_LAYERS, ones_and_zeros_one, x, y)
    assert losses[0].item() == pytest.approx(plain, abs=1e-5)
    assert abs(losses[1].item() - plain) > 1e-4                          # measured: 7.5e-4


# --- chunking, hygiene, errors -------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [1, 3, 7, 100])
def test_chunked_losses_equal_one_mask_per_pass(chunk: int):
    model = randomised_vgg()
    x, y = batch(2)
    masks = sample_masks(sum(widths(model, VGG_LAYERS)), 7, 0.7, gen(5))
    reference = masked_losses_reference(model, VGG_LAYERS, masks, x, y)
    torch.testing.assert_close(masked_losses(model, VGG_LAYERS, masks, x, y, chunk=chunk),
                               reference, atol=1e-5, rtol=0)   # batch sizes differ: other kernels


def test_reference_equals_independent_per_mask_forward():
    """The reference itself, against a plain forward with the unit outputs zeroed by hand."""
    model = randomised_vgg()
    x, y = batch(2)
    layers = ["features.conv3.conv"]
    masks = sample_masks(32, 3, 0.5, gen(9))
    got = masked_losses_reference(model, layers, masks, x, y)
    unit = model.features.conv3
    for mask, loss in zip(masks, got, strict=True):
        handle = unit.register_forward_hook(lambda _m, _i, out, mask=mask: out * mask[None, :, None, None])
        try:
            with torch.no_grad():
                expected = nn.functional.cross_entropy(model(x), y).item()
        finally:
            handle.remove()
        assert loss.item() == pytest.approx(expected, abs=1e-5)


def test_masked_losses_on_resnet_chunks_agree():
    model = tiny_resnet()
    x, y = batch(2, size=16)
    layers = ["layer1.0.conv1.conv", "layer2.0.conv2.conv", "layer3.0.shortcut.conv"]
    masks = sample_masks(sum(widths(model, layers)), 5, 0.7, gen(2))
    torch.testing.assert_close(masked_losses(model, layers, masks, x, y, chunk=2),
                               masked_losses_reference(model, layers, masks, x, y), atol=1e-5, rtol=0)


def test_no_hooks_left_mode_restored_and_state_untouched():
    model = randomised_vgg()
    model.train()                                        # BN would update its running stats in train mode
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = batch(2)
    masks = sample_masks(sum(widths(model, VGG_LAYERS)), 4, 0.7, gen(0))
    in_train_mode = masked_losses(model, VGG_LAYERS, masks, x, y, chunk=3)
    assert model.training and all(m.training for m in model.modules())
    assert hooks_left(model) == []
    after = model.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)
    # the losses were computed in eval mode: the same as from the model put in eval mode
    model.eval()
    torch.testing.assert_close(masked_losses(model, VGG_LAYERS, masks, x, y), in_train_mode,
                               atol=1e-6, rtol=0)
    assert not model.training and not any(m.training for m in model.modules())
    assert hooks_left(model) == []


def test_hooks_removed_and_mode_restored_when_forward_fails():
    model = randomised_vgg()
    model.train()
    masks = torch.ones(2, sum(widths(model, VGG_LAYERS)))
    with pytest.raises(RuntimeError):                     # 3 input channels for a 1-channel model
        masked_losses(model, VGG_LAYERS, masks, torch.zeros(2, 3, 28, 28), torch.zeros(2, dtype=torch.long))
    assert hooks_left(model) == [] and model.training


def test_bad_masks_and_layer_names():
    model = randomised_vgg()
    x, y = batch(2)
    n = sum(widths(model, VGG_LAYERS))
    for bad in (torch.ones(3, n - 1), torch.ones(3, n + 1), torch.ones(n)):
        with pytest.raises(ValueError):
            masked_losses(model, VGG_LAYERS, bad, x, y)
    for name in ("features.conv3", "features.conv3.bn", "classifier.2", "nope"):
        with pytest.raises(KeyError):
            masked_losses(model, [name], torch.ones(2, 32), x, y)
    assert hooks_left(model) == []


# --- sample_masks ------------------------------------------------------------------------------------

def test_sample_masks_shape_values_and_rate():
    masks = sample_masks(50, 2000, 0.8, gen(0))
    assert masks.shape == (2000, 50) and masks.dtype == torch.float32
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert masks.mean().item() == pytest.approx(0.8, abs=0.02)
    assert masks.mean(0).min().item() > 0.7 and masks.mean(0).max().item() < 0.9   # every unit
    assert sample_masks(5, 10, 1.0, gen(0)).eq(1).all()
    assert sample_masks(50, 2000, 0.3, gen(1)).mean().item() == pytest.approx(0.3, abs=0.02)


def test_sample_masks_deterministic_per_seed():
    torch.testing.assert_close(sample_masks(20, 30, 0.5, gen(7)), sample_masks(20, 30, 0.5, gen(7)))
    assert not torch.equal(sample_masks(20, 30, 0.5, gen(7)), sample_masks(20, 30, 0.5, gen(8)))


@pytest.mark.parametrize(("n_units", "n_masks", "q"),
                         [(5, 10, 0.0), (5, 10, 1.5), (5, 10, -0.1), (5, 0, 0.5), (0, 10, 0.5)])
def test_sample_masks_rejects_bad_arguments(n_units: int, n_masks: int, q: float):
    with pytest.raises(ValueError):
        sample_masks(n_units, n_masks, q, gen(0))


# --- fit_importance ------------------------------------------------------------------------------------

def planted(k: int = 400, n: int = 10, noise: float = 0.0, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Masks, losses = 0.3 + R β + noise (R = 1 − masks) and the planted β."""
    g = gen(seed)
    beta = torch.randn(n, generator=g, dtype=torch.float64)
    masks = sample_masks(n, k, 0.7, g)
    losses = 0.3 + (1.0 - masks.double()) @ beta + noise * torch.randn(k, generator=g, dtype=torch.float64)
    return masks, losses, beta


def test_fit_recovers_planted_additive_model_with_noise():
    masks, losses, beta = planted(noise=0.01)
    got = fit_importance(masks, losses, ridge=1e-3)
    assert got.dtype == torch.float64 and got.shape == (10,)
    assert (got - beta).abs().max().item() < 0.05
    assert torch.equal(got.argsort(), beta.argsort()) or (got - beta).abs().max() < 0.01


def test_fit_exact_without_noise_and_ridge():
    masks, losses, beta = planted(seed=1)
    torch.testing.assert_close(fit_importance(masks, losses, ridge=0.0), beta, atol=1e-8, rtol=0)
    # float32 masks or float64 losses: the fit is done in float64 either way
    torch.testing.assert_close(fit_importance(masks.double(), losses.float(), ridge=0.0), beta,
                               atol=1e-5, rtol=0)


def test_fit_matches_closed_form_ridge_on_centred_design():
    masks, losses, _ = planted(k=60, n=6, noise=0.1, seed=2)
    ridge = 2.5
    R = 1.0 - masks.double()
    X = torch.cat([torch.ones(60, 1, dtype=torch.float64), R], 1)
    # ridge on β only (intercept unpenalised): solve the full normal equations with a 0 on the intercept
    P = torch.diag(torch.tensor([0.0] + [ridge] * 6, dtype=torch.float64))
    full = torch.linalg.solve(X.T @ X + P, X.T @ losses)
    torch.testing.assert_close(fit_importance(masks, losses, ridge), full[1:], atol=1e-10, rtol=0)


@settings(max_examples=10)
@given(seed=st.integers(0, 10_000), a=st.floats(0.0, 50.0), step=st.floats(0.01, 50.0))
def test_larger_ridge_shrinks_the_coefficients(seed: int, a: float, step: float):
    masks, losses, _ = planted(k=40, n=8, noise=0.2, seed=seed)
    small = fit_importance(masks, losses, a).norm()
    large = fit_importance(masks, losses, a + step).norm()
    assert large <= small + 1e-12
    assert fit_importance(masks, losses, 1e9).abs().max() < 1e-6         # → 0 as ridge → ∞


@settings(max_examples=10)
@given(shift=st.floats(-100.0, 100.0), ridge=st.floats(0.0, 10.0))
def test_fit_invariant_to_constant_added_to_losses(shift: float, ridge: float):
    masks, losses, _ = planted(k=50, n=5, noise=0.1, seed=3)
    torch.testing.assert_close(fit_importance(masks, losses + shift, ridge),
                               fit_importance(masks, losses, ridge), atol=1e-9, rtol=0)


def test_fit_rejects_bad_shapes_and_negative_ridge():
    masks, losses, _ = planted(k=20, n=4)
    for m, loss in ((masks, losses[:-1]), (masks[0], losses), (masks, losses[:, None]),
                    (masks[None], losses)):
        with pytest.raises(ValueError):
            fit_importance(m, loss)
    with pytest.raises(ValueError):
        fit_importance(masks, losses, ridge=-0.1)


# --- ensemble_scores -------------------------------------------------------------------------------

def test_scores_one_tensor_per_layer_default_all_prunable_convs():
    model = tiny_resnet()
    cfg = EnsembleConfig(n_masks=24, keep_prob=0.8, ridge=1.0, chunk=8, seed=0)
    scores = ensemble_scores(model, batch(2, size=16), config=cfg)
    assert list(scores) == models.prunable_convs(model)
    for name, n in models.conv_widths(model).items():
        assert scores[name].shape == (n,) and scores[name].dtype == torch.float32
        assert torch.isfinite(scores[name]).all()
    assert hooks_left(model) == []


def test_scores_layers_in_given_order_deterministic_per_seed():
    model = randomised_vgg()
    b = batch(2)
    layers = ["features.conv5.conv", "features.conv2.conv"]             # not in forward order
    cfg = EnsembleConfig(n_masks=40, keep_prob=0.7, ridge=0.5, chunk=16, seed=4)
    first = ensemble_scores(model, b, layers=layers, config=cfg)
    assert list(first) == layers
    assert [v.shape[0] for v in first.values()] == [64, 16]
    again = ensemble_scores(model, b, layers=layers, config=cfg)
    assert all(torch.equal(first[k], again[k]) for k in layers)
    other = ensemble_scores(model, b, layers=layers, config=EnsembleConfig(40, 0.7, 0.5, 16, seed=5))
    assert not torch.equal(first["features.conv5.conv"], other["features.conv5.conv"])
    # chunk size is a speed knob only
    chunked = ensemble_scores(model, b, layers=layers, config=EnsembleConfig(40, 0.7, 0.5, 3, seed=4))
    assert all(torch.allclose(first[k], chunked[k], atol=1e-5) for k in layers)


def test_scores_equal_the_pipeline_done_by_hand():
    model = randomised_vgg()
    x, y = batch(2)
    layers = ["features.conv3.conv", "features.conv1.conv"]
    cfg = EnsembleConfig(n_masks=30, keep_prob=0.75, ridge=2.0, chunk=7, seed=11)
    scores = ensemble_scores(model, (x, y), layers=layers, config=cfg)
    masks = sample_masks(48, 30, 0.75, gen(11))
    beta = fit_importance(masks, masked_losses(model, layers, masks, x, y, chunk=7), 2.0).float()
    torch.testing.assert_close(scores["features.conv3.conv"], beta[:32], atol=1e-6, rtol=0)
    torch.testing.assert_close(scores["features.conv1.conv"], beta[32:], atol=1e-6, rtol=0)


def test_dead_filter_has_no_effect_and_near_zero_importance():
    """A filter with BN γ = β = 0 outputs 0 whatever the mask: the losses do not depend on its mask
    bit at all (checked exactly), so its OLS coefficient is pure sampling noise, with standard error
    σ̂·sqrt([(R_cᵀR_c)⁻¹]_ii). We require |β_dead| below 4 standard errors (a ~6e-5 false-alarm rate,
    and the draw is fixed), while the strongest live filter stands well clear of that noise level.

    ("Smallest |β|" is not a sound requirement here: in a random-init network many live filters of
    an early layer change the loss by less than the regression's noise; over 8 mask seeds the dead
    filter's z-score behaved like N(0, 1) and up to 6 of 15 live filters had smaller |β|.)"""
    model = randomised_vgg()
    dead = 5
    with torch.no_grad():
        model.features.conv2.bn.weight[dead] = 0.0
        model.features.conv2.bn.bias[dead] = 0.0
    x, y = batch(2)
    layers = ["features.conv2.conv"]
    k, cfg_seed = 160, 3
    masks = sample_masks(16, k, 0.7, gen(cfg_seed))
    losses = masked_losses(model, layers, masks, x, y, chunk=32)
    flipped = masks.clone()
    flipped[:, dead] = 1.0 - flipped[:, dead]
    assert torch.equal(masked_losses(model, layers, flipped, x, y, chunk=32), losses)

    beta = ensemble_scores(model, (x, y), layers=layers,
                           config=EnsembleConfig(n_masks=k, keep_prob=0.7, ridge=0.0, chunk=32,
                                                 seed=cfg_seed))["features.conv2.conv"].double()
    R = 1.0 - masks.double()
    Rc = R - R.mean(0)
    residual = (losses - losses.mean()) - Rc @ beta
    sigma2 = residual.pow(2).sum() / (k - 16 - 1)
    se = math.sqrt(sigma2 * torch.linalg.inv(Rc.T @ Rc)[dead, dead])
    assert abs(beta[dead].item()) < 4 * se
    live = torch.cat([beta[:dead], beta[dead + 1:]])
    assert live.abs().max().item() > 8 * se                  # the test could tell a live filter apart


# --- helpers -----------------------------------------------------------------------------------------

def test_first_batch_concatenates_and_truncates(counting_loader):
    images = torch.arange(10.0).reshape(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    labels = torch.arange(10) * 10
    loader = counting_loader([(images[i:i + 3], labels[i:i + 3]) for i in range(0, 10, 3)])
    x, y = first_batch(loader, 7)
    assert x.shape == (7, 1, 2, 2) and y.shape == (7,)
    torch.testing.assert_close(x, images[:7])
    torch.testing.assert_close(y, labels[:7])
    assert loader.batches == 3                               # 3 + 3 + 1 of the third; the fourth untouched
    x, y = first_batch(counting_loader(loader.loader), 2)    # fewer than one batch
    torch.testing.assert_close(x, images[:2])
    torch.testing.assert_close(y, labels[:2])
    exact = counting_loader(loader.loader)
    x, y = first_batch(exact, 6)                             # a whole number of batches
    torch.testing.assert_close(y, labels[:6])
    assert exact.batches == 2
    torch.testing.assert_close(x[:, 0, 0, 0] * 10, y.float())  # labels aligned with images


def test_switch_off_sites_zoo_units_mask_after_their_batchnorm():
    model = tiny_resnet()
    sites = switch_off_sites(model, models.prunable_convs(model))
    for conv, site in sites.items():
        assert site == conv.removesuffix(".conv") + ".bn"          # every zoo conv sits in a ConvBNReLU


def randomised_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine parameters (a fresh BN is nearly the identity and would hide a
    mask applied before it)."""
    g = gen(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.weight.copy_(0.8 + 0.8 * torch.rand(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
    return model.eval()


def test_switched_off_equals_removed_on_torchvision_resnet18():
    """Outside the zoo's ConvBNReLU units (issue #10, item 4): the mask goes after layer1.0.bn1, so the
    loss with filters switched off is the loss of the physically pruned model; masking the conv's own
    output (before the BatchNorm) gives a clearly different loss."""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = randomised_bn(torchvision.models.resnet18(num_classes=10, weights=None))
    x, y = batch(4, size=32, seed=3)
    x = x.expand(-1, 3, -1, -1).contiguous()
    layer, off = "layer1.0.conv1", [3, 10, 20, 41]
    assert switch_off_sites(model, [layer]) == {layer: "layer1.0.bn1"}
    mask = torch.ones(1, 64)
    mask[0, off] = 0.0
    switched_off = masked_losses(model, [layer], mask, x, y).item()
    pruned = surgery.apply_plan(model, {"removed": {layer: off}, "coupled": []}, x[:1]).eval()
    with torch.no_grad():
        removed = nn.functional.cross_entropy(pruned(x), y).item()
        handle = model.layer1[0].conv1.register_forward_hook(lambda _m, _i, out: out * mask[:, :, None, None])
        try:
            before_bn = nn.functional.cross_entropy(model(x), y).item()
        finally:
            handle.remove()
    assert switched_off == pytest.approx(removed, abs=1e-5)
    assert abs(before_bn - removed) > 1e-4                        # where the mask goes matters here


def test_switched_off_equals_removed_through_a_concatenation_without_batchnorm():
    """torchvision SqueezeNet: no BatchNorm (the conv's own output is masked), a ReLU, then a
    concatenation feeding the next Fire's squeeze conv; its classifier conv makes the output: refused."""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.squeezenet1_0(num_classes=10, weights=None).eval()
    x, y = batch(2, size=64, seed=4)
    x = x.expand(-1, 3, -1, -1).contiguous()
    layer = "features.3.expand1x1"
    assert switch_off_sites(model, [layer]) == {layer: layer}
    seen = {}
    handle = model.features[3].expand1x1.register_forward_hook(
        lambda _m, _i, out: seen.update(strength=out.clamp(min=0).sum((0, 2, 3))))  # before in-place ReLU
    try:
        with torch.no_grad():
            whole = nn.functional.cross_entropy(model(x), y).item()
    finally:
        handle.remove()
    off = seen["strength"].topk(3).indices.sort().values.tolist()   # the most active filters, not fixed ones
    assert seen["strength"][off].min().item() > 1.0                 # clearly alive on this batch
    mask = torch.ones(1, 64)
    mask[0, off] = 0.0
    pruned = surgery.apply_plan(model, {"removed": {layer: off}, "coupled": []}, x[:1]).eval()
    with torch.no_grad():
        removed = nn.functional.cross_entropy(pruned(x), y).item()
    assert masked_losses(model, [layer], mask, x, y).item() == pytest.approx(removed, abs=1e-5)
    assert abs(whole - removed) > 1e-5                               # the filters mattered
    with pytest.raises(ValueError, match="output"):
        switch_off_sites(model, ["classifier.1"])


class ConcatThenNorm(nn.Module):
    """DenseNet's pattern: two convs concatenated, then one BatchNorm over all channels."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 2, 3), nn.Conv2d(1, 2, 3)
        self.bn, self.c = nn.BatchNorm2d(4), nn.Conv2d(4, 2, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.c(torch.relu(self.bn(torch.cat([self.a(x), self.b(x)], 1)))).mean((2, 3))


def test_pointwise_conv_is_switched_off_after_the_depthwise_batchnorm():
    """MobileNet: removing a pointwise filter also removes the depthwise channel it feeds and that
    channel's BatchNorm entry, so the mask goes after the depthwise BatchNorm; masking after the
    pointwise BatchNorm (the old unit output) would leave the depthwise BatchNorm's bias behind."""
    torch.manual_seed(0)
    model = randomised_bn(models.build("mobilenet_v1_slim"), seed=2)
    with torch.no_grad():
        model.classifier[2].weight.mul_(20.0)
    layer = "blocks.2.pw.conv"
    assert switch_off_sites(model, [layer]) == {layer: "blocks.3.dw.bn"}
    x, y = batch(3, seed=5)
    off = [1, 30, 60]
    mask = torch.ones(1, 64)
    mask[0, off] = 0.0
    pruned = surgery.apply_plan(model, {"removed": {layer: off}, "coupled": []}, EXAMPLE).eval()
    with torch.no_grad():
        removed = nn.functional.cross_entropy(pruned(x), y).item()
        handle = model.blocks[2].pw.bn.register_forward_hook(lambda _m, _i, out: out * mask[:, :, None, None])
        try:
            at_pointwise_bn = nn.functional.cross_entropy(model(x), y).item()
        finally:
            handle.remove()
    assert masked_losses(model, [layer], mask, x, y).item() == pytest.approx(removed, abs=1e-5)
    assert abs(at_pointwise_bn - removed) > 1e-4


@pytest.mark.parametrize(("net", "layer", "why"), [
    (lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4), nn.ReLU(), nn.Conv2d(4, 2, 3)), "0",
     "GroupNorm"),
    (lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sigmoid(), nn.Conv2d(4, 2, 3)), "0", "Sigmoid"),
    (lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 3)), "2", "output"),
    (lambda: ConcatThenNorm(), "a", "BatchNorm2d"),
])
def test_switch_off_refuses_where_a_mask_cannot_match_removal(net, layer: str, why: str):
    model = net().eval()
    x = torch.zeros(1, 1, 12, 12)
    with pytest.raises(ValueError, match=why):
        switch_off_sites(model, [layer])
    with pytest.raises(ValueError, match=why):
        masked_losses(model, [layer], torch.ones(1, model.get_submodule(layer).out_channels), x,
                      torch.zeros(1, dtype=torch.long))
    assert hooks_left(model) == []


def test_switch_off_refuses_a_conv_that_runs_twice_and_untraceable_models():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1)
            self.fc = nn.Linear(2, 3)

        def forward(self, x: Tensor) -> Tensor:
            return self.fc(self.conv(self.conv(x)).mean((2, 3)))

    class DataDependent(Twice):
        def forward(self, x: Tensor) -> Tensor:
            h = self.conv(x)
            return self.fc(h.mean((2, 3)) if h.sum() > 0 else -h.mean((2, 3)))

    with pytest.raises(ValueError, match="runs 2 times"):
        switch_off_sites(Twice(), ["conv"])
    with pytest.raises(ValueError, match="torch.fx could not trace"):
        switch_off_sites(DataDependent(), ["conv"])


def test_estimate_records_hold_one_ensemble_estimate_per_seed():
    from pruning_lib import records
    from pruning_lib.criteria.ensembles import estimate_records
    model = randomised_vgg()
    b = batch(2)
    layers = ["features.conv2.conv", "features.conv5.conv"]
    cfg = EnsembleConfig(n_masks=24, keep_prob=0.7, ridge=0.5, chunk=8, seed=99)   # seed replaced
    rows = estimate_records(model, b, seeds=[4, 5], layers=layers, config=cfg)
    assert [(r["seed"], r["layer"]) for r in rows] == [(s, name) for s in (4, 5) for name in layers]
    assert all(r["seconds"] >= 0 for r in rows)
    for seed in (4, 5):
        direct = ensemble_scores(model, b, layers=layers, config=EnsembleConfig(24, 0.7, 0.5, 8, seed=seed))
        back = records.scores_from_records(rows, seed=seed)
        assert all(torch.equal(back[k], direct[k]) for k in layers)
