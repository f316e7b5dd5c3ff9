"""Published numbers (``pruning_lib.published``): internal consistency of the transcription.

The structural numbers are checked against this package's models elsewhere: parameter counts in
tests/test_audio_models.py (``keras_style_params``), MAC reductions in tests/test_metrics.py."""

from __future__ import annotations

from pruning_lib.lab import published

DCASE21_WIDTHS = {"C1": 16, "C2": 16, "C3": 32}                  # DCASE21_Net's three convs
VGGISH_WIDTHS = {"C1": 64, "C2": 128, "C3": 256, "C4": 256, "C5": 512, "C6": 512}


def test_layer_configs_are_the_table_rows_without_the_baseline():
    configs = [row["config"] for row in published.INTERSPEECH22_DCASE21]
    assert configs[0] == "none" and len(set(configs)) == len(configs)
    assert list(published.LAYER_CONFIGS) == configs[1:]
    for name, layers in published.LAYER_CONFIGS.items():
        assert "+".join(layers) == name                           # "C1+C2" prunes C1 and C2
        assert set(layers) <= set(published.INTERSPEECH22_KEPT)


def test_kept_counts_are_fewer_than_the_layer_widths():
    assert set(published.INTERSPEECH22_KEPT) == set(DCASE21_WIDTHS)
    for layer, kept in published.INTERSPEECH22_KEPT.items():
        assert 1 <= kept < DCASE21_WIDTHS[layer], layer
    assert set(published.ICASSP23_VGGISH_KEPT) == set(VGGISH_WIDTHS)
    for layer, (kept, total) in published.ICASSP23_VGGISH_KEPT.items():
        assert total == VGGISH_WIDTHS[layer] and 1 <= kept < total, layer
    assert set(published.ICASSP23_DCASE21_M) == set(DCASE21_WIDTHS)
    for layer, m in published.ICASSP23_DCASE21_M.items():
        assert 1 <= m <= DCASE21_WIDTHS[layer], layer             # m landmarks among n filters


def test_table_rows_are_complete_and_plausible():
    keys = {"config", "params", "similarity", "released", "l1", "mac_label", "no_ft"}
    baseline, *pruned = published.INTERSPEECH22_DCASE21
    assert baseline["params"] == 46_246 and baseline["mac_label"] == 0.0
    assert baseline["similarity"] == baseline["released"] == baseline["no_ft"] == 48.58
    for row in published.INTERSPEECH22_DCASE21:
        assert set(row) == keys, row["config"]
        for key in ("similarity", "released", "no_ft") + (("l1",) if row is not baseline else ()):
            assert 0 < row[key] <= 100, (row["config"], key)
    for row in pruned:
        assert row["params"] < baseline["params"], row["config"]
        assert 0 < row["mac_label"] < 100, row["config"]
        assert row["no_ft"] < row["similarity"], row["config"]  # fine-tuning recovers accuracy
    # pruning more layers never costs fewer parameters or MACs than a subset of them
    rows = {row["config"]: row for row in pruned}
    for name, layers in published.LAYER_CONFIGS.items():
        for sub, sub_layers in published.LAYER_CONFIGS.items():
            if set(sub_layers) < set(layers):
                assert rows[name]["params"] < rows[sub]["params"], (name, sub)
                assert rows[name]["mac_label"] > rows[sub]["mac_label"], (name, sub)


def test_own_layer_mac_labels_add_up_over_layers():
    # the figure labels count MACs in the pruned layers only, so a combination is the sum of its
    # single-layer labels, up to their printing: C1 and C3 have one decimal, and C1's 1.8 is 0.09
    # above the 1.71 computed in tests/test_metrics.py, so C1+C2+C3 = 31.24 vs 1.8 + 27.35 + 2.2
    labels = {row["config"]: row["mac_label"] for row in published.INTERSPEECH22_DCASE21}
    for name, layers in published.LAYER_CONFIGS.items():
        assert abs(labels[name] - sum(labels[c] for c in layers)) <= 0.15, name


def test_sources_name_the_papers():
    assert "arXiv:2203.15751" in published.INTERSPEECH22_SOURCE
    assert "arXiv:2210.17416" in published.ICASSP23_SOURCE


def test_other_papers_sources_name_their_papers():
    assert "arXiv:2304.02319" in published.OPERATOR_NORM_SOURCE
    assert "arXiv:2001.08142" in published.ENSEMBLES_SOURCE
    assert "arXiv:2307.00758" in published.SNPFI_SOURCE
    assert "JSTSP" in published.JSTSP20_SOURCE and "DepthWisePruning" in published.JSTSP20_SOURCE


def test_other_papers_claims_are_plausible():
    assert published.OPERATOR_NORM_CLAIMS["active_speedup"] > 1
    claims = published.OPERATOR_NORM_CLAIMS
    for share in (*published.ENSEMBLES_RESNET_CIFAR10.values(), published.SNPFI_MACS_REDUCTION,
                  claims["macs_reduction"], claims["params_reduction"]):
        assert 0 < share < 100
    assert published.INTERSPEECH22_ABSTRACT["config"] in published.LAYER_CONFIGS
    nystrom_s = sum(t for t, _ in published.ICASSP23_VGGISH_SECONDS.values())
    full_s = sum(t for _, t in published.ICASSP23_VGGISH_SECONDS.values())
    assert set(published.ICASSP23_VGGISH_SECONDS) == set(VGGISH_WIDTHS)
    assert abs(full_s / nystrom_s - published.ICASSP23_SPEEDUP) < 0.01        # 34.81 / 11.72


def test_jstsp_cuts_keep_fewer_blocks_than_the_network():
    for cut in published.JSTSP20_CUTS:
        blocks = 3 * (cut["depth"] - 2) // 6
        assert 1 <= cut["blocks_kept"] < blocks, cut["model"]
        assert 0 < cut["flops_reduction"] < cut["params_reduction"] < 100, cut["model"]  # wide blocks go


def test_jstsp_cuts_match_this_packages_resnet_layout():
    import torch

    from pruning_lib import depth, metrics, models
    from pruning_lib.audio.models import keras_style_params  # Keras counts BN statistics and conv biases

    x = torch.zeros(1, 3, 32, 32)
    for cut in published.JSTSP20_CUTS:
        net = models.ResNetCifar(depth=cut["depth"], in_channels=3).eval()
        block = models.residual_blocks(net, 1)[cut["blocks_kept"] - 1]
        cut_net = depth.truncate(net, block)
        flops = 100 * (1 - metrics.count_macs(cut_net, x) / metrics.count_macs(net, x))
        params = 100 * (1 - keras_style_params(cut_net) / keras_style_params(net))
        assert abs(flops - cut["flops_reduction"]) < 0.05, cut
        assert abs(params - cut["params_reduction"]) < 0.05, cut
