"""activations: where each conv is observed, how many images are used, and that the model is left alone."""

from __future__ import annotations

import copy
from collections import OrderedDict

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from pruning_lib import activations, models
from pruning_lib.activations import activation_site, channel_mean, iter_images, record_activations

pytestmark = pytest.mark.usefixtures("single_thread")


def one_unit_model(seed: int = 0) -> nn.Sequential:
    """A single ConvBNReLU(2 → 3, 3×3) unit, so the model's output is the unit's ReLU output."""
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict(unit=models.ConvBNReLU(2, 3)))


def loader(n: int = 20, batch_size: int = 8, size: int = 6, channels: int = 2) -> DataLoader:
    x = torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(1))
    return DataLoader(TensorDataset(x, torch.zeros(n, dtype=torch.long)), batch_size=batch_size)


def no_hooks_left(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


# --- activation_site ------------------------------------------------------------------------------

def test_sites_of_zoo_units_are_relu_or_bn():
    resnet = models.build("resnet20")
    assert activation_site(resnet, "stem.conv") == "stem.relu"
    assert activation_site(resnet, "layer1.0.conv1.conv") == "layer1.0.conv1.relu"
    assert activation_site(resnet, "layer1.0.conv2.conv") == "layer1.0.conv2.bn"      # before the add
    assert activation_site(resnet, "layer2.0.shortcut.conv") == "layer2.0.shortcut.bn"
    vgg = models.build("vgg16_slim")
    assert activation_site(vgg, "features.conv13.conv") == "features.conv13.relu"


def test_sites_outside_the_zoo_follow_the_next_sibling():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2),
                        nn.Conv2d(2, 2, 1))
    assert activation_site(net, "0") == "1"
    assert activation_site(net, "2") == "3"
    assert activation_site(net, "4") == "4"          # nothing after it: the conv's own output


def test_unknown_site_is_a_key_error():
    with pytest.raises(KeyError, match="features.conv99.conv"):
        activation_site(models.build("vgg16_slim"), "features.conv99.conv")


# --- iter_images ----------------------------------------------------------------------------------

def test_iter_images_cuts_the_last_batch_and_draws_no_more(counting_loader):
    counting = counting_loader(loader(n=40, batch_size=8))
    sizes = [len(x) for x in iter_images(counting, 20)]
    assert sizes == [8, 8, 4]
    assert counting.batches == 3


# --- record_activations ---------------------------------------------------------------------------

def test_record_matches_a_direct_computation_on_the_first_n_images():
    model, data = one_unit_model().eval(), loader(n=20, batch_size=8)
    got = record_activations(model, data, ["unit.conv"], n_images=13)
    x = torch.cat([x for x, _ in data])[:13]
    with torch.no_grad():
        expected = channel_mean(model(x)).mean(dim=0)
    torch.testing.assert_close(got["unit.conv"], expected)


def test_custom_statistic_and_fewer_images_than_asked():
    model, data = one_unit_model().eval(), loader(n=20, batch_size=8)
    got = record_activations(model, data, ["unit.conv"], n_images=1000,
                             statistic=lambda a: (a > 0).float().mean(dim=(2, 3)))
    x = torch.cat([x for x, _ in data])
    with torch.no_grad():
        expected = (model(x) > 0).float().mean(dim=(0, 2, 3))
    torch.testing.assert_close(got["unit.conv"], expected)


def test_n_images_is_respected(counting_loader):
    counting = counting_loader(loader(n=40, batch_size=8))
    record_activations(one_unit_model(), counting, ["unit.conv"], n_images=17)
    assert counting.batches == 3


def test_model_is_unchanged_and_no_hooks_are_left():
    model = models.build("resnet20").train()
    before = copy.deepcopy(model.state_dict())
    record_activations(model, loader(n=8, channels=1), models.prunable_convs(model), n_images=8)
    assert model.training and all(m.training for m in model.modules())
    assert no_hooks_left(model)
    for key, value in model.state_dict().items():          # eval mode: BN statistics untouched
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)


def test_hooks_are_removed_and_mode_restored_after_an_error():
    model = one_unit_model().train()

    def broken(act: Tensor) -> Tensor:
        raise RuntimeError("statistic failed")

    with pytest.raises(RuntimeError, match="statistic failed"):
        record_activations(model, loader(), ["unit.conv"], statistic=broken)
    assert model.training and no_hooks_left(model)


def test_deterministic():
    model, data = models.build("vgg16_slim"), loader(n=16, size=8, channels=1)
    a = record_activations(model, data, models.prunable_convs(model), n_images=16)
    b = record_activations(model, data, models.prunable_convs(model), n_images=16)
    assert list(a) == models.prunable_convs(model)
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=0, rtol=0)


# --- bad inputs -----------------------------------------------------------------------------------

def test_n_images_below_one_is_a_value_error():
    with pytest.raises(ValueError, match="n_images must be at least 1"):
        record_activations(one_unit_model(), loader(), ["unit.conv"], n_images=0)


def test_empty_loader_is_a_value_error():
    with pytest.raises(ValueError, match="no images"):
        record_activations(one_unit_model(), [], ["unit.conv"])


class ReluTwice(nn.Module):
    """A conv whose site (its next sibling, a ReLU) runs twice per forward pass; ``spare`` never runs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.relu, self.spare = nn.Conv2d(2, 2, 1), nn.ReLU(), nn.Conv2d(2, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.relu(self.conv(x)))


@pytest.mark.parametrize("layer, count", [("conv", 40), ("spare", 0)])
def test_site_that_does_not_run_once_per_image_is_a_value_error(layer, count):
    model = ReluTwice()
    with pytest.raises(ValueError, match=f"see 20 images.*: {count}"):
        record_activations(model, loader(), [layer], n_images=20)
    assert no_hooks_left(model)


# --- batchnorm_statistics: what BatchNorm expects next to what it gets -------------------------------------

def _bn_net() -> nn.Sequential:
    """1x1 conv: channel 0 = 2·x, channel 1 = 1 − x; then a BatchNorm with running stats 0 / 1."""
    conv = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([2.0, -1.0]).reshape(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, 1.0]))
    return nn.Sequential(conv, nn.BatchNorm2d(2))


def test_batchnorm_statistics_hand_computed_and_model_untouched():
    from pruning_lib import train

    # pixels {1, 3, 5, 7, 0, 0, 0, 4} in two batches: mean 2.5, unbiased variance 50/7
    batches = [(torch.tensor([1.0, 3.0, 5.0, 7.0]).reshape(2, 1, 1, 2), torch.zeros(2)),
               (torch.tensor([0.0, 0.0, 0.0, 4.0]).reshape(2, 1, 1, 2), torch.zeros(2))]
    model = _bn_net().train()
    rows = activations.batchnorm_statistics(model, batches, n_images=10)
    assert [(r["layer"], r["channel"]) for r in rows] == [("1", 0), ("1", 1)]
    assert [r["mean"] for r in rows] == pytest.approx([5.0, -1.5], abs=1e-9)
    assert [r["var"] for r in rows] == pytest.approx([4 * 50 / 7, 50 / 7], abs=1e-9)
    assert [(r["running_mean"], r["running_var"]) for r in rows] == [(0.0, 1.0), (0.0, 1.0)]
    assert model.training and not model[0]._forward_pre_hooks and int(model[1].num_batches_tracked) == 0
    # recalibrated on the same images in one batch, the expectation matches what the layer gets
    one_batch = [(torch.cat([x for x, _ in batches]), torch.zeros(4))]
    recalibrated = train.recalibrate_bn(model, one_batch, progress=False)
    fixed = activations.batchnorm_statistics(recalibrated, one_batch)
    for r in fixed:
        assert r["running_mean"] == pytest.approx(r["mean"], abs=1e-5)
        assert r["running_var"] == pytest.approx(r["var"], rel=1e-5)


def test_batchnorm_statistics_bad_inputs():
    with pytest.raises(ValueError, match="n_images"):
        activations.batchnorm_statistics(_bn_net(), [], n_images=0)
    with pytest.raises(ValueError, match="no images"):
        activations.batchnorm_statistics(_bn_net(), [])
    with pytest.raises(ValueError, match="no BatchNorm"):
        activations.batchnorm_statistics(nn.Sequential(nn.Conv2d(1, 2, 1)), [])
