"""One device rule: work on the model's device, results back on the CPU (issue 13).

Every test runs once per device: ``cpu`` always; ``cuda`` and ``mps`` skip with a reason where
torch cannot use them (CI is CPU-only). On the CPU the tests still check what the rule promises to
callers: loaders' CPU batches are accepted, and results are CPU tensors or plain Python numbers,
equal (to ≥ 1e-5) to a run of the same model kept on the CPU.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from pruning_lib import criteria, experiments, metrics, models, repro, selection, surgery, train
from pruning_lib.criteria import ensembles

pytestmark = pytest.mark.usefixtures("single_thread")


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    return kind == "mps" and torch.backends.mps.is_available()


DEVICES = [pytest.param("cpu", id="cpu")] + [
    pytest.param(kind, id=kind, marks=pytest.mark.skipif(
        not _available(kind), reason=f"no {kind.upper()} device on this machine (CI is CPU-only)"))
    for kind in ("cuda", "mps")]
X = torch.randn(48, 1, 12, 12, generator=torch.Generator().manual_seed(0))
Y = torch.arange(48) % 10


def tiny_resnet() -> nn.Module:
    """ResNet-8 with 4/8/8 channels (coupled residual groups), BatchNorm statistics off identity."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = models.build("resnet", depth=8, widths=(4, 8, 8))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    return model.eval()


def loader(batch_size: int = 16) -> DataLoader:
    """CPU batches, as every loader of the package yields them."""
    return DataLoader(TensorDataset(X, Y), batch_size=batch_size)


def on(device: str) -> tuple[nn.Module, nn.Module]:
    """(the tiny model on the CPU, a copy on ``device``)."""
    cpu = tiny_resnet()
    return cpu, copy.deepcopy(cpu).to(device)


def assert_cpu(scores: dict[str, Tensor]) -> None:
    assert all(isinstance(s, Tensor) and s.device.type == "cpu" for s in scores.values())


# repro.device ------------------------------------------------------------------------------------

def test_device_default_and_override(monkeypatch):
    assert repro.device().type in repro.DEVICES
    monkeypatch.setenv("PRUNING_DEVICE", "cpu")
    assert repro.device() == torch.device("cpu")


@pytest.mark.parametrize(("value", "message"), [("gpu", "not a device name"),
                                                ("xpu", "not available here")])
def test_device_override_is_validated(monkeypatch, value, message):
    monkeypatch.setenv("PRUNING_DEVICE", value)
    with pytest.raises(ValueError, match=f"PRUNING_DEVICE='{value}'.*{message}"):
        repro.device()


def test_unavailable_accelerator_is_refused(monkeypatch):
    kind = next((k for k in ("cuda", "mps") if not _available(k)), None)
    if kind is None:
        pytest.skip("both CUDA and MPS are available here")
    monkeypatch.setenv("PRUNING_DEVICE", kind)
    with pytest.raises(ValueError, match="not available here; available: cpu"):
        repro.device()


# train -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
def test_evaluate_moves_batches_and_returns_numbers(device):
    cpu, model = on(device)
    got, want = train.evaluate(model, loader()), train.evaluate(cpu, loader())
    assert isinstance(got["loss"], float) and isinstance(got["correct"], int) and got["n"] == 48
    assert got["loss"] == pytest.approx(want["loss"], abs=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_fine_tune_trains_on_the_model_device(device):
    _, model = on(device)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    train_loader = DataLoader(TensorDataset(X, Y), batch_size=16, shuffle=True, generator=g)
    tuned, history = train.fine_tune(model, train_loader, loader(),
                                     train.TrainConfig(epochs=1, lr=0.01, augment=True))
    assert repro.model_device(tuned).type == device
    assert all(isinstance(r["loss"], float) for r in history)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("device", DEVICES)
def test_recalibrate_bn_on_the_model_device(device):
    cpu, model = on(device)
    got = train.recalibrate_bn(model, loader(), 32, progress=False)
    want = train.recalibrate_bn(cpu, loader(), 32, progress=False)
    assert repro.model_device(got).type == device
    torch.testing.assert_close(got.stem.bn.running_mean.cpu(), want.stem.bn.running_mean,
                               atol=1e-5, rtol=1e-4)


# criteria ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
def test_active_criterion_returns_cpu_scores(device):
    cpu, model = on(device)
    got = criteria.mean_activation(model, loader(), n_images=32)
    want = criteria.mean_activation(cpu, loader(), n_images=32)
    assert_cpu(got)
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("criterion", ["l1", "spectral", "operator_norm"])
def test_passive_criteria_return_cpu_scores(device, criterion):
    cpu, model = on(device)
    fn = criteria.PASSIVE_CRITERIA[criterion]
    got, want = criteria.score_model(model, fn), criteria.score_model(cpu, fn)
    assert_cpu(got)
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_operator_norm_svd_and_spectral_run_on_the_cpu(device):
    w = torch.randn(6, 3, 3, 3, generator=torch.Generator().manual_seed(2))
    for fn in (criteria.spectral_norm, criteria.operator_norm_svd):
        got = fn(w.to(device))
        assert got.device.type == "cpu"
        torch.testing.assert_close(got, fn(w), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_ensembles_on_the_model_device(device):
    cpu, model = on(device)
    config = ensembles.EnsembleConfig(n_masks=24, chunk=8)
    layers = ["layer1.0.conv1.conv", "layer2.0.conv1.conv"]
    got = ensembles.ensemble_scores(model, (X[:16], Y[:16]), layers=layers, config=config)
    want = ensembles.ensemble_scores(cpu, (X[:16], Y[:16]), layers=layers, config=config)
    assert_cpu(got)
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_fit_importance_on_device_tensors(device):
    g = torch.Generator().manual_seed(3)
    masks = (torch.rand(40, 5, generator=g) < 0.7).float()
    losses = masks @ torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0]).neg() + 10
    got = ensembles.fit_importance(masks.to(device), losses.to(device)).cpu()
    torch.testing.assert_close(got, ensembles.fit_importance(masks, losses), atol=1e-5, rtol=1e-5)


# selection, surgery and a sweep ------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
def test_plan_surgery_and_sweep_on_the_model_device(device):
    cpu, model = on(device)
    example = torch.zeros(1, 1, 12, 12)                  # a CPU example input is accepted
    groups = surgery.coupled_groups(model, example)
    scores = {k: v.to(device) for k, v in criteria.score_model(model, criteria.l1_norm).items()}
    plan = selection.plan_global(scores, 0.3, groups=groups)
    assert plan == selection.plan_global(criteria.score_model(cpu, criteria.l1_norm), 0.3, groups=groups)
    pruned = surgery.apply_plan(model, plan, example)
    assert repro.model_device(pruned).type == device
    assert metrics.count_macs(pruned, example) == metrics.count_macs(
        surgery.apply_plan(cpu, plan, example), example)
    record = experiments.prune_and_measure(model, criteria.score_model(model, criteria.l1_norm), 0.3,
                                           example_input=example, loader=loader(),
                                           recalibrate_loader=loader(), recalibrate_images=32,
                                           groups=groups)
    assert isinstance(record["accuracy"], float) and isinstance(record["recalibrated_loss"], float)
    hits = experiments.evaluate_images(model, loader())["hits"]
    assert hits.device.type == "cpu" and hits.shape == (48,)


# latency -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
def test_latency_reports_device_dtype_batch_threads(device):
    _, model = on(device)
    lat = metrics.measure_latency(model, torch.zeros(3, 1, 12, 12), repeats=2, warmup=1)
    assert lat.device.startswith(device) and lat.dtype == "float32" and lat.batch == 3
    for part in (device if device != "cpu" else "CPU", "float32", "batch 3", "thread(s)"):
        assert part in lat.scope


@pytest.mark.parametrize("device", DEVICES)
def test_bfloat16_latency_times_a_cast_copy(device):
    _, model = on(device)
    x = torch.zeros(2, 1, 12, 12)
    lat = metrics.compare_latency({"a": model}, x, repeats=1, warmup=0, dtype=torch.bfloat16)["a"]
    assert lat.dtype == "bfloat16" and "bfloat16" in lat.scope
    assert all(p.dtype == torch.float32 for p in model.parameters()) and x.dtype == torch.float32


def test_latency_refuses_an_integer_dtype():
    with pytest.raises(ValueError, match="floating dtype"):
        metrics.measure_latency(tiny_resnet(), torch.zeros(1, 1, 12, 12), repeats=1, dtype=torch.int8)
