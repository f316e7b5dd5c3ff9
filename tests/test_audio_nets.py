"""Tests for pruning_lib/audio_models.py: the log-mel front end, the two acoustic CNNs, and
surgery through the whole network (front end included) on random waveforms. No FSDD needed."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from pruning_lib import metrics, models, selection, surgery
from pruning_lib.audio import models as audio_models
from pruning_lib.criteria import l1_norm, score_model

from support import bn_off_identity

pytestmark = pytest.mark.usefixtures("single_thread")

NAMES = audio_models.AUDIO_ARCHITECTURES
EXAMPLE = audio_models.example_input()                                  # (1, 8000) zeros
WAVES = 0.1 * torch.randn(4, 8000, generator=torch.Generator().manual_seed(123))


@torch.no_grad()
def randomised(name: str, seed: int = 0) -> nn.Module:
    """An audio model in eval mode whose BatchNorms are far from identity."""
    torch.manual_seed(seed)
    model = models.build(name)
    return bn_off_identity(model, seed, var_span=1.0)


@functools.cache
def pruned_and_masked(name: str) -> dict:
    """Half of every layer's filters removed by l1 norm (computed once per model)."""
    model = randomised(name)
    groups = surgery.coupled_groups(model, EXAMPLE)
    plan = selection.plan_uniform(score_model(model, l1_norm), 0.5, groups=groups)
    return {"model": model, "plan": plan, "groups": groups,
            "pruned": surgery.apply_plan(model, plan, EXAMPLE),
            "masked": surgery.mask_plan(model, plan, EXAMPLE)}


# LogMel -----------------------------------------------------------------------------------------

def test_logmel_shape_for_both_input_layouts():
    frontend = audio_models.LogMel()
    out = frontend(WAVES)
    assert out.shape == (4, 1, 40, 126)                # 1 + 8000 // 64 = 126 frames
    torch.testing.assert_close(frontend(WAVES[:, None, :]), out, atol=0, rtol=0)
    assert audio_models.LogMel(n_mels=64, hop_length=80)(WAVES).shape == (4, 1, 64, 101)


def test_logmel_is_a_parameter_free_module_standardised_per_clip():
    frontend = audio_models.LogMel()
    assert isinstance(frontend, nn.Module) and list(frontend.parameters()) == []
    out = frontend(WAVES)
    torch.testing.assert_close(out.mean(dim=(2, 3)), torch.zeros(4, 1), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=(2, 3)), torch.ones(4, 1), atol=1e-4, rtol=0)


def test_logmel_is_gain_invariant_and_batch_independent():
    frontend = audio_models.LogMel()
    out = frontend(WAVES)
    torch.testing.assert_close(frontend(3.0 * WAVES), out, atol=1e-4, rtol=0)
    # quiet clip next to a loud one: AmplitudeToDB's top_db floor must be per clip
    mixed = torch.stack([WAVES[0] * 1e-3, WAVES[1] * 10])
    torch.testing.assert_close(frontend(mixed)[0], frontend(mixed[:1])[0], atol=1e-4, rtol=0)


@pytest.mark.parametrize("shape", [(8000,), (2, 2, 8000), (2, 1, 28, 28)])
def test_logmel_rejects_other_shapes(shape):
    with pytest.raises(ValueError, match=r"waveforms \(B, T\) or \(B, 1, T\)"):
        audio_models.LogMel()(torch.zeros(shape))


# The models -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_models_map_waveforms_to_ten_logits(name):
    model = models.build(name).eval()
    with torch.no_grad():
        out = model(WAVES)
        assert out.shape == (4, 10) and bool(torch.isfinite(out).all())
        torch.testing.assert_close(model(WAVES[:, None, :]), out, atol=0, rtol=0)
    assert model.arch_spec == {"name": name, "kwargs": {}}
    assert name in models.architectures()


@pytest.mark.parametrize("name", NAMES)
def test_every_conv_sits_in_a_conv_bn_relu_unit(name):
    model = models.build(name)
    modules = dict(model.named_modules())
    for conv in models.prunable_convs(model):
        unit, attr = conv.rsplit(".", 1)
        assert attr == "conv" and isinstance(modules[unit], models.ConvBNReLU)
        assert modules[unit].conv.bias is None
    assert [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)] == \
        models.prunable_convs(model)


def test_dcase21_net_layout_and_parameter_count():
    model = models.build("dcase21_net")
    assert models.conv_widths(model) == {"features.conv1.conv": 16, "features.conv2.conv": 16,
                                         "features.conv3.conv": 32}
    assert {m.kernel_size for m in model.modules() if isinstance(m, nn.Conv2d)} == {(7, 7)}
    # convs (no bias): 1·16·49 + 16·16·49 + 16·32·49 = 784 + 12,544 + 25,088 = 38,416
    # BN γ, β:         2 · (16 + 16 + 32)                                      =    128
    # dense:           64·100 + 100 + 100·10 + 10                              =  7,510
    # total 46,054 = the reference's 46,118 trainable parameters minus its 16 + 16 + 32 conv biases
    assert metrics.count_params(model) == 38_416 + 128 + 7_510 == 46_118 - 64 == 46_054


def test_dcase21_net_macs_closed_form():
    # log-mel 40 x 126; "same" 7x7 convs; MaxPool 5 → 8 x 25; the mel filterbank is a matmul
    convs = 40 * 126 * 49 * (1 * 16 + 16 * 16) + 8 * 25 * 49 * 16 * 32
    dense, mel = 64 * 100 + 100 * 10, 126 * 129 * 40
    assert metrics.count_macs(models.build("dcase21_net"), EXAMPLE) == convs + dense + mel == 72_848_280


def test_vggish_slim_layout_and_parameter_count():
    model = models.build("vggish_slim")
    widths = list(models.conv_widths(model).values())
    assert widths == [64 // 4, 128 // 4, 256 // 4, 256 // 4, 512 // 4, 512 // 4]
    convs = 9 * (1 * 16 + 16 * 32 + 32 * 64 + 64 * 64 + 64 * 128 + 128 * 128)    # 281,232
    bn = 2 * sum(widths)                                                         # 864
    dense = 128 * 128 + 128 + 128 * 10 + 10                                      # 17,802
    assert metrics.count_params(model) == convs + bn + dense == 299_898


# Surgery through the front end ------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_pruned_equals_masked_on_random_waveforms(name):
    r = pruned_and_masked(name)
    with torch.no_grad():
        out_pruned, out_masked, out_full = r["pruned"](WAVES), r["masked"](WAVES), r["model"](WAVES)
    assert out_pruned.shape == (4, 10)
    torch.testing.assert_close(out_pruned, out_masked, atol=1e-5, rtol=0)
    assert float((out_pruned - out_full).abs().max()) > 1e-3      # pruning changed the function
    assert all(len(g) == 1 for g in r["groups"])                   # plain chains: nothing coupled


@pytest.mark.parametrize("name", NAMES)
def test_pruning_halves_the_widths_and_the_head_follows(name):
    r = pruned_and_masked(name)
    full, pruned = models.conv_widths(r["model"]), models.conv_widths(r["pruned"])
    assert pruned == {k: v // 2 for k, v in full.items()}
    first_dense = r["pruned"].classifier[1]
    last_conv = list(pruned.values())[-1]
    assert first_dense.in_features == last_conv * (2 if name == "dcase21_net" else 1)
    assert metrics.count_macs(r["pruned"], EXAMPLE) < metrics.count_macs(r["model"], EXAMPLE)


def test_save_and_load_pruned_audio_model(tmp_path):
    r = pruned_and_masked("dcase21_net")
    path = surgery.save_pruned(r["pruned"], r["plan"], tmp_path / "dcase_pruned.pt")
    loaded = surgery.load_pruned(path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(WAVES), r["pruned"](WAVES), atol=1e-5, rtol=0)


# keras_style_params: parameter counts as the authors' Keras models report them ---------------------

PAPER_LAYERS = {"C1": "features.conv1.conv", "C2": "features.conv2.conv", "C3": "features.conv3.conv"}


def keras_dcase21_params(a: int, b: int, c: int) -> int:
    """The Keras DCASE21_Net (Baseline_code.py) with a, b, c filters: conv weights + bias, BatchNorm
    γ, β, mean, variance; Flatten of 2×1×c → Dense 100 → Dense 10."""
    def conv_bn(c_in: int, c_out: int) -> int:
        return c_out * c_in * 49 + c_out + 4 * c_out
    return conv_bn(1, a) + conv_bn(a, b) + conv_bn(b, c) + (2 * c * 100 + 100) + (100 * 10 + 10)


def test_keras_style_params_hand_cases():
    unit = models.ConvBNReLU(2, 3, 3)
    # Keras: conv 3·2·9 + 3 bias, BN 4·3 → 69; ours: 54 + γ, β 6 → 60, plus 3 per channel
    assert metrics.count_params(unit) == 60
    assert audio_models.keras_style_params(unit) == 69
    assert audio_models.keras_style_params(nn.Linear(4, 5)) == 25   # no BatchNorm: plain count
    dcase = models.build("dcase21_net")
    assert audio_models.keras_style_params(dcase) == 46_246 == keras_dcase21_params(16, 16, 32)


@pytest.mark.parametrize("widths", [(16, 16, 32), (11, 11, 22), (1, 16, 5), (16, 3, 32), (7, 9, 1)])
def test_keras_style_params_of_pruned_dcase21_net_matches_the_keras_layout(widths):
    model = models.build("dcase21_net").eval()
    keep = dict(zip(PAPER_LAYERS.values(), widths, strict=True))
    plan = selection.plan_keep_counts(score_model(model, l1_norm), keep)
    pruned = surgery.apply_plan(model, plan, EXAMPLE)
    assert models.conv_widths(pruned) == keep
    assert audio_models.keras_style_params(pruned) == keras_dcase21_params(*widths)


def published_rows() -> list:
    from pruning_lib.lab import published

    rows = []
    for row in published.INTERSPEECH22_DCASE21:
        # C3 alone (16, 16, 22 filters) is 36,356 in the Keras layout of Baseline_code.py, but the
        # authors' figure scripts (AI4S_comparison_accuracy.py, AI4S_compression_accuracy.py) list
        # 36,256; C2+C3 and C1+C2+C3, which also prune C3, match exactly. Probably a typo upstream.
        marks = (pytest.mark.xfail(strict=True, reason="published 36,256 vs 36,356 from the layout "
                                   "(see comment)") if row["config"] == "C3" else ())
        rows.append(pytest.param(row, id=row["config"], marks=marks))
    return rows


@pytest.mark.parametrize("row", published_rows())
def test_keras_style_params_equal_the_published_interspeech22_table(row):
    from pruning_lib.lab import published

    model = models.build("dcase21_net").eval()
    configs = () if row["config"] == "none" else published.LAYER_CONFIGS[row["config"]]
    convs = [PAPER_LAYERS[c] for c in configs]
    keep = {PAPER_LAYERS[c]: k for c, k in published.INTERSPEECH22_KEPT.items()}
    full = selection.plan_keep_counts(score_model(model, l1_norm), keep)
    plan = selection.restrict_plan(full, convs)
    pruned = surgery.apply_plan(model, plan, audio_models.example_input())
    assert audio_models.keras_style_params(pruned) == row["params"]
