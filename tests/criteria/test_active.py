"""Active criteria (mean activation, APoZ, HRank): hand cases, a dead channel scores lowest at ReLU and
BatchNorm sites, n_images, the model is left alone, determinism and bad inputs."""

from __future__ import annotations

import copy
from collections import OrderedDict

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pruning_lib import models
from pruning_lib.criteria import ACTIVE_CRITERIA, apoz, hrank, mean_activation

pytestmark = pytest.mark.usefixtures("single_thread")

CRITERIA = list(ACTIVE_CRITERIA)


def loader(x: torch.Tensor, batch_size: int = 4) -> DataLoader:
    return DataLoader(TensorDataset(x, torch.zeros(len(x), dtype=torch.long)), batch_size=batch_size)


def random_images(n: int = 16, channels: int = 1, size: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


def copy_unit() -> nn.Sequential:
    """1×1 ConvBNReLU(2 → 3), identity BN: filter 0 copies channel 0, filter 1 channel 1, filter 2 is 0."""
    unit = models.ConvBNReLU(2, 3, kernel_size=1)
    with torch.no_grad():
        unit.conv.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])[:, :, None, None])
    unit.bn.eps = 0.0                      # running mean 0, var 1, γ 1, β 0: BN is the identity
    return nn.Sequential(OrderedDict(unit=unit)).eval()


def hand_images() -> torch.Tensor:
    """(6, 2, 4, 4): channel 0 is a positive rank-1 map p qᵀ, channel 1 a dense map with ±1 entries."""
    g = torch.Generator().manual_seed(0)
    p, q = torch.rand(6, 4, 1, generator=g) + 0.5, torch.rand(6, 1, 4, generator=g) + 0.5
    signs = torch.tensor([[1.0, -1, 1, 1], [-1, 1, 1, 1], [1, 1, -1, 1], [1, 1, 1, -1]])  # full rank
    return torch.stack([p @ q, signs.expand(6, 4, 4)], dim=1)


def dead_channel_resnet() -> nn.Module:
    """resnet20 (seeded) with filter 3 of a ReLU unit and filter 5 of a BN-only unit zeroed with their BN."""
    torch.manual_seed(0)
    net = models.build("resnet20").eval()
    with torch.no_grad():
        for unit, k in ((net.layer1[0].conv1, 3), (net.layer1[0].conv2, 5)):
            unit.conv.weight[k] = 0.0
            unit.bn.weight[k] = 0.0
            unit.bn.bias[k] = 0.0
    return net


# --- hand-computed cases --------------------------------------------------------------------------

def test_mean_activation_hand_computed():
    x = hand_images()
    scores = mean_activation(copy_unit(), loader(x), layers=["unit.conv"])["unit.conv"]
    expected = torch.stack([x[:, 0].mean(), x[:, 1].clamp(min=0).mean(), torch.tensor(0.0)])
    torch.testing.assert_close(scores, expected)


def test_apoz_hand_computed():
    # channel 0 is positive everywhere; channel 1 has 4 of 16 entries at -1 → zeros after the ReLU
    scores = apoz(copy_unit(), loader(hand_images()), layers=["unit.conv"])["unit.conv"]
    torch.testing.assert_close(scores, torch.tensor([1.0, 0.75, 0.0]))


def test_hrank_hand_computed():
    # channel 0 stays rank-1 and positive; channel 1 after the ReLU is the 0/1 matrix with a zero on
    # each row and column of distinct positions: J − P for a permutation P, rank 4; filter 2 is 0
    scores = hrank(copy_unit(), loader(hand_images()), layers=["unit.conv"])["unit.conv"]
    torch.testing.assert_close(scores, torch.tensor([1.0, 4.0, 0.0]))


# --- a dead channel scores lowest -----------------------------------------------------------------

@pytest.mark.parametrize("name", CRITERIA)
@pytest.mark.parametrize("layer, dead", [("layer1.0.conv1.conv", 3), ("layer1.0.conv2.conv", 5)])
def test_dead_channel_scores_lowest_at_relu_and_bn_sites(name, layer, dead):
    scores = ACTIVE_CRITERIA[name](dead_channel_resnet(), loader(random_images()), layers=[layer])[layer]
    assert scores.shape == (16,) and scores.dtype == torch.float32
    assert float(scores[dead]) == 0.0
    others = torch.cat([scores[:dead], scores[dead + 1:]])
    assert bool((others > 0).all())


# --- protocol: n_images, the model is left alone, determinism -------------------------------------

@pytest.mark.parametrize("name", CRITERIA)
def test_n_images_is_respected(name, counting_loader):
    x = random_images(n=20)
    counting = counting_loader(loader(x, batch_size=4))
    net = dead_channel_resnet()
    got = ACTIVE_CRITERIA[name](net, counting, n_images=10, layers=["stem.conv"])
    assert counting.batches == 3                                       # 4 + 4 + 2 images
    first = ACTIVE_CRITERIA[name](net, loader(x[:10], batch_size=10), layers=["stem.conv"])
    torch.testing.assert_close(got["stem.conv"], first["stem.conv"])


@pytest.mark.parametrize("name", CRITERIA)
def test_model_is_unchanged_no_hooks_left_and_deterministic(name):
    net = dead_channel_resnet().train()
    before = copy.deepcopy(net.state_dict())
    a = ACTIVE_CRITERIA[name](net, loader(random_images()), n_images=8)
    b = ACTIVE_CRITERIA[name](net, loader(random_images()), n_images=8)
    assert list(a) == models.prunable_convs(net)
    assert net.training
    assert all(not m._forward_hooks for m in net.modules())
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)
    for layer in a:
        torch.testing.assert_close(a[layer], b[layer], atol=0, rtol=0)


def test_registry():
    assert ACTIVE_CRITERIA == {"mean_activation": mean_activation, "apoz": apoz, "hrank": hrank}


# --- bad inputs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CRITERIA)
def test_unknown_layer_is_a_key_error(name):
    with pytest.raises(KeyError, match="layer9.conv"):
        ACTIVE_CRITERIA[name](dead_channel_resnet(), loader(random_images()), layers=["layer9.conv"])


@pytest.mark.parametrize("name", CRITERIA)
def test_empty_loader_and_bad_n_images_are_value_errors(name):
    net = dead_channel_resnet()
    with pytest.raises(ValueError, match="no images"):
        ACTIVE_CRITERIA[name](net, [], layers=["stem.conv"])
    with pytest.raises(ValueError, match="n_images must be at least 1"):
        ACTIVE_CRITERIA[name](net, loader(random_images()), n_images=0)
