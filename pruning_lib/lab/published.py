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
