"""Published numbers the lessons compare with, each with its source.

Transcribed from the papers and the authors' code.

Nothing here is computed; tests check the structural numbers (parameter counts, MAC shares) against
this package's own models, so a wrong transcription or a wrong model layout fails a test.

Introduced in: notebooks/06_audio_pruning.ipynb (§The published table).
"""

from __future__ import annotations

INTERSPEECH22_SOURCE = (
    "Singh & Plumbley, Interspeech 2022 (arXiv:2203.15751), official repository "
    "passive-filter-pruning-Interspeech22: README table and 'Scripts to generate Figures' "
    "(commit 3ba93bf). DCASE21_Net on TAU Urban Acoustic Scenes 2020 Mobile (10 classes), "
    "input 40 mel bands x 500 frames; accuracies are probably best-epoch-on-test "
    "(the scripts validate on the test arrays).")

# Kept filters of DCASE21_Net after similarity pruning (official index files).
INTERSPEECH22_KEPT = {"C1": 11, "C2": 11, "C3": 22}

# One row per configuration. C3's 36,256 parameters is as published (both figure scripts), but it is
# 100 fewer than the reference layout gives for 16/16/22 filters (36,356; every other row matches
# the layout exactly): most likely a typo upstream. tests/test_audio_models.py marks it.
# Accuracies in %. "mac_label" is the reduction printed in the figure script (own-layer-only
# counting); "no_ft" the accuracy without fine-tuning (AI4S_compression_accuracy.py). For C2 and C3
# the two figure scripts swap 46.54 and 46.67; the README/compression-script order is used.
INTERSPEECH22_DCASE21: list[dict] = [
    {"config": "none", "params": 46246, "similarity": 48.58, "released": 48.58, "l1": None,
     "mac_label": 0.0, "no_ft": 48.58},
    {"config": "C1", "params": 42056, "similarity": 48.06, "released": 48.31, "l1": 47.98,
     "mac_label": 1.8, "no_ft": 34.53},
    {"config": "C2", "params": 34461, "similarity": 46.54, "released": 47.61, "l1": 46.12,
     "mac_label": 27.35, "no_ft": 27.16},
    {"config": "C3", "params": 36256, "similarity": 46.67, "released": 47.78, "l1": 45.52,
     "mac_label": 2.2, "no_ft": 18.29},
    {"config": "C1+C2", "params": 31496, "similarity": 46.41, "released": 46.93, "l1": 44.86,
     "mac_label": 29.06, "no_ft": 24.09},
    {"config": "C2+C3", "params": 27021, "similarity": 44.96, "released": 45.35, "l1": 43.76,
     "mac_label": 29.54, "no_ft": 15.02},
    {"config": "C1+C2+C3", "params": 24056, "similarity": 44.32, "released": 45.01, "l1": 42.98,
     "mac_label": 31.24, "no_ft": 16.24},
]

# Nyström: smallest m reproducing the exact keep-list, per DCASE21_Net layer (figure labels), and
# similarity-pruning kept counts of VGGish_Net (ICASSP 2023 repository, VGGish.zip, COSINE_SIM).
ICASSP23_SOURCE = ("Singh & Plumbley, ICASSP 2023 (arXiv:2210.17416), official repository "
                   "Efficient_similarity_Pruning_Algo (commit ec42a1a).")
ICASSP23_DCASE21_M = {"C1": 12, "C2": 6, "C3": 21}
ICASSP23_VGGISH_KEPT = {"C1": (51, 64), "C2": (101, 128), "C3": (215, 256), "C4": (204, 256),
                        "C5": (404, 512), "C6": (402, 512)}

# The Interspeech'22 configurations: which of the three convs each row prunes.
LAYER_CONFIGS: dict[str, tuple[str, ...]] = {
    "C1": ("C1",), "C2": ("C2",), "C3": ("C3",), "C1+C2": ("C1", "C2"),
    "C2+C3": ("C2", "C3"), "C1+C2+C3": ("C1", "C2", "C3"),
}

# Headline claims of the other papers the course teaches (benchmarks/reproduction.py checks them).
# Numbers as printed in each source; reductions and drops in %, points of accuracy, speed-ups as ×.

OPERATOR_NORM_SOURCE = (
    "Singh & Plumbley, 'Efficient CNNs via Passive Filter Pruning' (arXiv:2304.02319; IEEE/ACM TASLP 33, "
    "2025), abstract; official repository Efficient_CNNs_passive_filter_pruning (commit d31cb0b). "
    "VGGish and DCASE21_Net (acoustic scenes), VGG-16 and ResNet-50 (CIFAR-10 / image classification).")
OPERATOR_NORM_CLAIMS = {
    "active_speedup": 4.5,           # "at least 4.5 times faster" importance computation than active methods
    "macs_reduction": 40.0,          # TASLP abstract: computations reduced "by at least 40%" ...
    "params_reduction": 50.0,        # ... and parameters "by at least 50%", with similar performance
}

ENSEMBLES_SOURCE = ("Sándor, Pável & Csató, 'Pruning CNN's with linear filter ensembles' (arXiv:2001.08142), "
                    "abstract: ResNet on CIFAR-10, compared with filter-norm pruning (no official code).")
ENSEMBLES_RESNET_CIFAR10 = {"params_reduction": 60.0, "flops_reduction": 64.0, "max_drop": 0.6}

SNPFI_SOURCE = ("Tang, Wei & Li, 'Structured Network Pruning by Measuring Filter-wise Interactions' "
                "(arXiv:2307.00758), abstract: AlexNet, MobileNetV1, ResNet-50 on MNIST, CIFAR-10, ImageNet.")
SNPFI_MACS_REDUCTION = 60.0           # "nearly 60% of computation is reduced" while accuracy remains

INTERSPEECH22_ABSTRACT = {"config": "C2", "macs_reduction": 27.0, "params_reduction": 25.0, "max_drop": 1.0}
"""Interspeech'22 abstract: "27% fewer computations, 25% fewer parameters, < 1% drop in accuracy"; the
C2 row of ``INTERSPEECH22_DCASE21`` (34,461 parameters, 48.58 → 47.61 with the released model)."""

# ICASSP'23 Plot_generation.py: seconds per VGGish_Net layer, (Nyström, full similarity).
ICASSP23_VGGISH_SECONDS = {"C1": (0.0047, 0.15), "C2": (0.13, 0.80), "C3": (0.40, 2.70), "C4": (1.23, 3.51),
                           "C5": (2.55, 11.65), "C6": (7.40, 16.0)}
ICASSP23_SPEEDUP = 2.97               # 34.81 s / 11.72 s over the six layers ("3 times faster")

JSTSP20_SOURCE = (
    "Jordao, Lie & Schwartz, 'Discriminative Layer Pruning for Convolutional Neural Networks', IEEE JSTSP "
    "14(4):828-837, 2020 (doi:10.1109/JSTSP.2020.2975987); official repository arturjordao/DepthWisePruning "
    "(commit 6eb3b1a): README table (accuracy drop) and released model JSONs models/CIFAR10 (FLOPs and "
    "parameters, counted against the unpruned Keras ResNet v1 with 1x1 projection shortcuts, 3x32x32 input).")
# One row per released cut: the blocks kept of 3·(depth − 2)/6; reductions in %; drop in points (README).
JSTSP20_CUTS: list[dict] = [
    {"model": "ResNet56", "depth": 56, "blocks_kept": 19, "flops_reduction": 30.02, "params_reduction": 69.0,
     "drop": 0.98},
    {"model": "ResNet110", "depth": 110, "blocks_kept": 37, "flops_reduction": 31.7, "params_reduction": 72.5,
     "drop": None},
    {"model": "ResNet20", "depth": 20, "blocks_kept": 8, "flops_reduction": 11.6, "params_reduction": 27.1,
     "drop": None},
]
