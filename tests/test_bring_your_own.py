"""Bring your own model (issue 13): save and reload pruned torchvision networks, no pickled code.

A pruned-model file names the UNPRUNED architecture by an allow-listed constructor path and plain
keyword arguments; ``load_pruned`` rebuilds it, replays the plan and loads the weights, reading the
file with ``weights_only=True``. Untrained networks (``weights=None``, ``num_classes=10``),
BatchNorm statistics far from identity, 32x32 inputs.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torchvision.models as tvm
from torch import nn

from pruning_lib import criteria, models, selection, surgery

from support import bn_off_identity

pytestmark = [pytest.mark.usefixtures("single_thread"),
              pytest.mark.filterwarnings("ignore:Unwrapped parameters detected")]

EXAMPLE = torch.zeros(1, 3, 32, 32)
X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(7))
NETWORKS = ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "densenet121"]


def off_identity(model: nn.Module) -> nn.Module:
    """Give every BatchNorm seeded statistics far from identity, so that a wrong channel shows."""
    return bn_off_identity(model, seed=1)


@functools.cache
def pruned(name: str) -> tuple[nn.Module, dict]:
    """(the pruned network, its plan): 30% of the filters of every coupled group, by ℓ1."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = off_identity(models.build_from(f"torchvision.models.{name}", num_classes=10, weights=None))
    groups = surgery.coupled_groups(model, EXAMPLE)
    plan = selection.plan_uniform(criteria.score_model(model, criteria.l1_norm), 0.3, groups=groups)
    return surgery.apply_plan(model, plan, EXAMPLE), plan


@pytest.mark.parametrize("name", NETWORKS)
def test_torchvision_round_trip(name, tmp_path):
    net, plan = pruned(name)
    path = surgery.save_pruned(net, plan, tmp_path / f"{name}.pt")
    blob = torch.load(path, weights_only=True)
    assert blob["arch"] == {"constructor": f"torchvision.models.{name}",
                            "kwargs": {"num_classes": 10, "weights": None}}
    loaded = surgery.load_pruned(path)
    assert not loaded.training and models.conv_widths(loaded) == models.conv_widths(net)
    with torch.no_grad():
        torch.testing.assert_close(loaded(X), net(X), atol=1e-5, rtol=1e-5)


def test_a_model_built_directly_is_saved_with_constructor_arguments(tmp_path):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = off_identity(tvm.resnet18(num_classes=10))
    plan = selection.plan_uniform(criteria.score_model(model, criteria.l1_norm), 0.25,
                                  groups=surgery.coupled_groups(model, EXAMPLE), round_to=8)
    net = surgery.apply_plan(model, plan, EXAMPLE)
    with pytest.raises(ValueError, match="no arch_spec"):
        surgery.save_pruned(net, plan, tmp_path / "r.pt")
    path = surgery.save_pruned(net, plan, tmp_path / "r.pt", constructor="torchvision.models.resnet18",
                               constructor_kwargs={"num_classes": 10})
    with torch.no_grad():
        torch.testing.assert_close(surgery.load_pruned(path)(X), net(X), atol=1e-5, rtol=1e-5)


def tamper(path, **arch) -> None:
    blob = torch.load(path, weights_only=True)
    blob["arch"] = arch
    torch.save(blob, path)


@pytest.mark.parametrize("constructor", ["os.system", "builtins.eval", "torch.load",
                                         "pruning_lib.repro.cache_dir", "torchvision.models.resnet18; rm"])
def test_a_tampered_constructor_path_is_refused(tmp_path, constructor):
    net, plan = pruned("resnet18")
    path = surgery.save_pruned(net, plan, tmp_path / "t.pt")
    tamper(path, constructor=constructor, kwargs={"command": "echo hacked"})
    with pytest.raises(ValueError, match="refusing constructor"):
        surgery.load_pruned(path)


def test_kwargs_asking_for_downloaded_weights_are_refused(tmp_path):
    net, plan = pruned("resnet18")
    path = surgery.save_pruned(net, plan, tmp_path / "w.pt")
    tamper(path, constructor="torchvision.models.resnet18", kwargs={"num_classes": 10,
                                                                    "weights": "IMAGENET1K_V1"})
    with pytest.raises(ValueError, match="would download weights"):
        surgery.load_pruned(path)


def test_constructor_kwargs_must_be_plain_data():
    with pytest.raises(TypeError, match="plain data"):
        models.build_from("torchvision.models.resnet18", norm_layer=nn.BatchNorm2d)


def test_a_registered_name_is_allowed(monkeypatch, tmp_path):
    monkeypatch.setitem(models._BUILDERS, "tiny_net", lambda **kw: models.ResNetCifar(depth=8, **kw))
    model = off_identity(models.build_from("tiny_net", widths=[4, 8, 8]))
    example = torch.zeros(1, 1, 12, 12)
    plan = selection.plan_uniform(criteria.score_model(model, criteria.l1_norm), 0.5,
                                  groups=surgery.coupled_groups(model, example))
    net = surgery.apply_plan(model, plan, example)
    loaded = surgery.load_pruned(surgery.save_pruned(net, plan, tmp_path / "n.pt"))
    x = torch.randn(2, 1, 12, 12, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x), atol=1e-5, rtol=1e-5)
