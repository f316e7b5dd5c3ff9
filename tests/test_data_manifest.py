"""data/README.md lists a sha256 for every shipped data file; check each one and the model cards."""

from __future__ import annotations

import json
import re

import pytest

from pruning_lib import models, repro

ROW = re.compile(r"^\| `(?P<file>[^`]+)` \| [^|]+ \| `(?P<sha>[0-9a-f]{64})` \|$")


def manifest() -> dict[str, str]:
    text = (repro.DATA_DIR / "README.md").read_text()
    return {m["file"]: m["sha"] for line in text.splitlines() if (m := ROW.match(line))}


def test_manifest_lists_the_subset_and_every_pretrained_checkpoint():
    names = set(manifest())
    assert "fashion_mnist_subset.npz" in names
    assert {f"checkpoints/{n}.pt" for n in models.PRETRAINED + models.AUDIO_PRETRAINED} <= names


@pytest.mark.parametrize("name", sorted(manifest()))
def test_manifest_sha256_matches_the_file(name):
    assert models.sha256(repro.DATA_DIR / name) == manifest()[name]


@pytest.mark.parametrize("name", models.PRETRAINED + models.AUDIO_PRETRAINED)
def test_model_card_sha256_matches_the_manifest(name):
    card = json.loads((repro.CHECKPOINT_DIR / f"{name}.json").read_text())
    assert card["sha256"] == manifest()[f"checkpoints/{name}.pt"]
