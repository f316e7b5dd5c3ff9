"""The Torch-Pruning adapter: group members and their sides, coupled convs, masking and removal."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from pruning_lib import models, tp_adapter

pytestmark = pytest.mark.usefixtures("single_thread")

EXAMPLE = torch.zeros(1, 1, 28, 28)


def traced(name: str, **kwargs: object) -> tuple[nn.Module, object]:
    torch.manual_seed(0)
    model = models.build(name, **kwargs).eval()
    with torch.no_grad():                      # non-trivial BN affine params, so zeroing is visible
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(0.1, 0.5)
    return model, tp_adapter.dependency_graph(model, EXAMPLE)


def members(graph: object, model: nn.Module, conv: str) -> set[tuple[str, str]]:
    return {(m["name"], m["side"]) for m in tp_adapter.group_members(graph, model, conv)}


def snapshot(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_state_equals(model: nn.Module, expected: dict[str, Tensor]) -> None:
    state = model.state_dict()
    assert list(state) == list(expected)
    for key, value in state.items():
        torch.testing.assert_close(value, expected[key], atol=0, rtol=0, msg=key)


# --- dependency_graph ------------------------------------------------------------------------------

def test_dependency_graph_restores_every_modules_mode():
    model = models.build("resnet", depth=8).train()
    model.layer1[0].conv1.bn.eval()                       # a frozen BN inside a training model
    modes = {name: m.training for name, m in model.named_modules()}
    tp_adapter.dependency_graph(model, EXAMPLE)           # Torch-Pruning calls model.eval() inside
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert not model.layer1[0].conv1.bn.training and model.layer1[0].conv2.bn.training


# --- group_members --------------------------------------------------------------------------------

def test_resnet_residual_group_members_and_sides():
    model, graph = traced("resnet", depth=20)
    got = members(graph, model, "layer1.0.conv2.conv")
    assert ("stem.conv", "out") in got
    assert ("layer1.1.conv1.conv", "in") in got
    producers = {"stem", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2"}
    consumers = {"layer1.0.conv1.conv", "layer1.1.conv1.conv", "layer1.2.conv1.conv",
                 "layer2.0.conv1.conv", "layer2.0.shortcut.conv"}
    expected = ({(f"{p}.conv", "out") for p in producers} | {(f"{p}.bn", "out") for p in producers}
                | {(c, "in") for c in consumers})
    assert got == expected


def test_group_members_report_module_types():
    model, graph = traced("vgg16_slim")
    got = tp_adapter.group_members(graph, model, "features.conv13.conv")
    assert sorted((m["name"], m["type"], m["side"]) for m in got) == [
        ("classifier.2", "Linear", "in"),
        ("features.conv13.bn", "BatchNorm2d", "out"),
        ("features.conv13.conv", "Conv2d", "out"),
    ]


def test_mobilenet_pointwise_group_includes_next_depthwise_conv():
    model, graph = traced("mobilenet_v1_slim")
    got = members(graph, model, "blocks.0.pw.conv")
    assert ("blocks.1.dw.conv", "out") in got
    assert ("blocks.1.pw.conv", "in") in got
    assert got == {("blocks.0.pw.conv", "out"), ("blocks.0.pw.bn", "out"), ("blocks.1.dw.conv", "out"),
                   ("blocks.1.dw.bn", "out"), ("blocks.1.pw.conv", "in")}


def test_coupled_out_convs():
    model, graph = traced("resnet", depth=20)
    convs = models.prunable_convs(model)
    assert tp_adapter.coupled_out_convs(graph, model, "layer1.1.conv2.conv", convs) == [
        "stem.conv", "layer1.0.conv2.conv", "layer1.1.conv2.conv", "layer1.2.conv2.conv"]
    assert tp_adapter.coupled_out_convs(graph, model, "layer2.1.conv1.conv", convs) == [
        "layer2.1.conv1.conv"]
    # only candidates are reported
    assert tp_adapter.coupled_out_convs(graph, model, "stem.conv", ["layer1.2.conv2.conv"]) == [
        "layer1.2.conv2.conv"]


# --- zero_out_channels ---------------------------------------------------------------------------------

def test_zero_out_channels_on_a_chain_zeroes_exactly_conv_and_bn_rows():
    model, graph = traced("vgg16_slim")
    expected = snapshot(model)
    for key in ("features.conv3.conv.weight", "features.conv3.bn.weight", "features.conv3.bn.bias"):
        expected[key][[1, 4]] = 0.0
    tp_adapter.zero_out_channels(graph, model.features.conv3.conv, [1, 4])
    assert_state_equals(model, expected)          # conv4's input columns and BN buffers untouched


def test_zero_out_channels_on_a_residual_group_zeroes_every_producer():
    model, graph = traced("resnet", depth=20)
    expected = snapshot(model)
    for unit in ("stem", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2"):
        for key in (f"{unit}.conv.weight", f"{unit}.bn.weight", f"{unit}.bn.bias"):
            expected[key][[2]] = 0.0
    tp_adapter.zero_out_channels(graph, model.layer1[1].conv2.conv, [2])
    assert_state_equals(model, expected)


def test_zero_out_channels_follows_into_the_depthwise_conv():
    model, graph = traced("mobilenet_v1_slim")
    expected = snapshot(model)
    for key in ("blocks.0.pw.conv.weight", "blocks.0.pw.bn.weight", "blocks.0.pw.bn.bias",
                "blocks.1.dw.conv.weight", "blocks.1.dw.bn.weight", "blocks.1.dw.bn.bias"):
        expected[key][[0, 3, 31]] = 0.0
    tp_adapter.zero_out_channels(graph, model.blocks[0].pw.conv, [0, 3, 31])
    assert_state_equals(model, expected)


def test_zeroed_channel_outputs_are_exactly_zero():
    model, graph = traced("vgg16_slim")
    tp_adapter.zero_out_channels(graph, model.features.conv1.conv, [0, 5])
    with torch.no_grad():
        out = model.features.conv1(torch.randn(2, 1, 28, 28))
    assert bool((out[:, [0, 5]] == 0).all())
    assert bool((out[:, [1, 2]] != 0).any())


# --- prune_out_channels -----------------------------------------------------------------------------

def test_prune_out_channels_shrinks_the_group():
    model, graph = traced("vgg16_slim")
    kept = [i for i in range(32) if i not in (0, 7, 9)]
    reference = copy.deepcopy(model.features)
    tp_adapter.prune_out_channels(graph, model.features.conv3.conv, [0, 7, 9])
    assert model.features.conv3.conv.weight.shape == (29, 16, 3, 3)
    assert model.features.conv3.bn.num_features == 29
    assert model.features.conv4.conv.weight.shape == (32, 29, 3, 3)
    torch.testing.assert_close(model.features.conv3.conv.weight, reference.conv3.conv.weight[kept])
    torch.testing.assert_close(model.features.conv4.conv.weight, reference.conv4.conv.weight[:, kept])


def test_prune_out_channels_refuses_to_empty_a_layer():
    model, graph = traced("vgg16_slim")
    with pytest.raises(ValueError, match="would empty a layer"):
        tp_adapter.prune_out_channels(graph, model.features.conv1.conv, list(range(16)))
    assert model.features.conv1.conv.out_channels == 16
