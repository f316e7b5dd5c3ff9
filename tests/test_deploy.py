"""pruning_lib/deploy.py (lesson 08): latency across ratios and widths, ONNX export and onnxruntime timing,
and the two lesson-08 plots. Timings are never asserted, only their fields and what they are attached to."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from pruning_lib import criteria, deploy, models, selection, surgery  # noqa: E402
from pruning_lib.lab import plots  # noqa: E402

pytestmark = [pytest.mark.usefixtures("single_thread"),
              pytest.mark.filterwarnings("ignore:Unwrapped parameters detected")]

EXAMPLE = torch.zeros(1, 1, 12, 12)
X = torch.randn(3, 1, 12, 12, generator=torch.Generator().manual_seed(0))
needs_onnx = pytest.mark.skipif(deploy.missing_onnx() is not None,
                                reason="the [deploy] extra is not installed")


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return models.build("resnet", depth=8, widths=(16, 16, 24)).eval()


@pytest.fixture(scope="module")
def rows(resnet) -> list[dict]:
    scores = criteria.score_model(resnet, criteria.l1_norm)
    return deploy.latency_table(resnet, scores, [0.3], EXAMPLE, batches=(1, 4), round_tos=(None, 8),
                                groups=surgery.coupled_groups(resnet, EXAMPLE), repeats=1, warmup=0)


def test_latency_table_records(rows, resnet):
    assert [(r["ratio"], r["round_to"], r["batch"]) for r in rows] == [
        (ratio, k, b) for b in (1, 4) for ratio, k in ((0.0, None), (0.3, None), (0.3, 8))]
    for r in rows:
        assert r["device"] == "cpu" and r["dtype"] == "float32" and r["threads"] >= 1 and r["repeats"] == 1
        assert r["latency_ms"] > 0 and r["speedup"] > 0
    base = [r for r in rows if r["ratio"] == 0.0]
    assert all(r["macs_ratio"] == 1.0 and r["speedup"] == 1.0 for r in base)
    pruned = [r for r in rows if r["ratio"] > 0]
    assert all(r["macs_ratio"] < 1.0 for r in pruned)
    rounded = next(r for r in pruned if r["round_to"] == 8)
    plain = next(r for r in pruned if r["round_to"] is None)
    assert rounded["macs"] <= plain["macs"]                 # rounding only removes more (16, 24 ≥ 8)


def test_latency_table_leaves_the_model_alone(resnet):
    before = {k: v.clone() for k, v in resnet.state_dict().items()}
    deploy.latency_table(resnet, criteria.score_model(resnet, criteria.l1_norm), [0.5], EXAMPLE, batches=(2,),
                         round_tos=(8,), groups=surgery.coupled_groups(resnet, EXAMPLE), repeats=1, warmup=0)
    assert all(torch.equal(v, before[k]) for k, v in resnet.state_dict().items())


def test_plot_latency_vs_macs_has_one_panel_per_batch(rows):
    grid = plots.plot_latency_vs_macs(rows)
    assert len(grid.axes.flat) == 2
    plt.close("all")


def test_plot_coupled_groups_draws_one_bar_per_conv(resnet):
    widths = models.conv_widths(resnet)
    groups = surgery.coupled_groups(resnet, EXAMPLE)
    figure = plots.plot_coupled_groups(widths, groups)
    bars = figure.axes[0].patches
    assert [b.get_height() for b in bars] == list(widths.values())
    colour = {name: bar.get_facecolor() for name, bar in zip(widths, bars, strict=True)}
    multi = next(g for g in groups if len(g) > 1)
    assert len({colour[name] for name in multi}) == 1
    plt.close("all")


def test_missing_onnx_names_the_extra(monkeypatch):
    monkeypatch.setattr(deploy.importlib.util, "find_spec", lambda name: None)
    assert "pip install -e '.[deploy]'" in deploy.missing_onnx()


@needs_onnx
def test_onnx_export_matches_pytorch_and_is_timed(resnet, tmp_path):
    plan = selection.plan_uniform(criteria.score_model(resnet, criteria.l1_norm), 0.5,
                                  groups=surgery.coupled_groups(resnet, EXAMPLE), round_to=8)
    pruned = surgery.apply_plan(resnet, plan, EXAMPLE)
    path = deploy.export_onnx(pruned, EXAMPLE, tmp_path / "sub" / "p.onnx")
    assert path.is_file() and not pruned.training
    with torch.no_grad():
        torch.testing.assert_close(deploy.onnx_run(path, X), pruned(X), atol=1e-4, rtol=1e-4)  # dynamic batch
    lat = deploy.onnx_latency(path, X, repeats=2, warmup=0, threads=1)
    assert (lat.batch, lat.threads, lat.repeats, lat.device) == (3, 1, 2, "cpu (onnxruntime)")
    assert "onnxruntime" in lat.scope and "batch 3" in lat.scope
