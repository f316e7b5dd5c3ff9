"""Tests for pruning_lib/audio_train.py: the command line on a tiny synthetic FSDD-shaped folder
(constant-valued clips written by the test; nothing derived from FSDD), one short epoch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import torch

from pruning_lib import models, train
from pruning_lib.audio import data as audio_data
from pruning_lib.audio import fsdd
from pruning_lib.audio import train as audio_train

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def tiny_fsdd(monkeypatch, tmp_path):
    """Two speakers x 10 digits x takes 0, 5 (80 samples each), found through PRUNING_FSDD_DIR."""
    folder = tmp_path / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for speaker in ("amy", "bob"):
        for digit in range(10):
            for take in (0, 5):
                samples = rng.integers(-3000, 3000, 80, dtype=np.int16)
                soundfile.write(str(folder / f"{digit}_{speaker}_{take}.wav"), samples, 8000,
                                subtype="PCM_16")
    monkeypatch.setenv("PRUNING_FSDD_DIR", str(folder.parent))
    monkeypatch.setattr(fsdd, "SHARED_FSDD_DIR", tmp_path / "no-shared")
    return folder


def test_main_writes_a_loadable_checkpoint_and_a_consistent_card(tiny_fsdd, tmp_path):
    argv = ["--model", "dcase21_net", "--epochs", "1", "--threads", "1", "--out", str(tmp_path / "ck")]
    card = audio_train.main(argv)
    weights, card_path = tmp_path / "ck" / "dcase21_net.pt", tmp_path / "ck" / "dcase21_net.json"
    assert json.loads(card_path.read_text()) == json.loads(json.dumps(card))
    assert set(card) >= {"name", "arch", "params", "data", "recipe", "test_accuracy_full",
                         "history", "train_seconds", "machine", "command", "sha256", "test_split"}
    assert card["name"] == "dcase21_net" and card["arch"] == {"name": "dcase21_net", "kwargs": {}}
    assert card["sha256"] == models.sha256(weights) and card["params"] == 46_054
    assert card["data"]["split"] == card["test_split"] == "official"
    assert (card["data"]["train_clips"], card["data"]["test_clips"]) == (20, 20)
    assert card["data"]["source"] == str(tiny_fsdd) and card["data"]["commit"] == fsdd.FSDD_COMMIT
    assert card["recipe"]["augment"] == audio_train.AUGMENTATION and card["recipe"]["epochs"] == 1
    assert card["command"].endswith(" ".join(argv)) and card["machine"]["threads"] == 1
    model = models.build("dcase21_net")
    model.load_state_dict(torch.load(weights, weights_only=True))       # strict: every key matches
    test = audio_data.fsdd_loaders().test
    assert train.evaluate(model.eval(), test) == {k: v for k, v in card["test_accuracy_full"].items()
                                                  if k != "split"}


def test_speaker_split_run_is_named_and_carded_by_its_split(tiny_fsdd, tmp_path):
    argv = ["--model", "vggish_slim", "--epochs", "1", "--split", "speaker:bob", "--no-augment",
            "--out", str(tmp_path)]
    card = audio_train.main(argv)
    assert card["name"] == "vggish_slim_speaker-bob"
    assert (tmp_path / "vggish_slim_speaker-bob.pt").is_file()
    assert card["test_split"] == card["test_accuracy_full"]["split"] == "speaker:bob"
    assert (card["data"]["train_clips"], card["data"]["test_clips"]) == (20, 20)
    assert card["test_accuracy_full"]["n"] == 20 and card["recipe"]["augment"] is False


def test_default_epochs_and_checkpoint_names():
    assert audio_train.checkpoint_name("dcase21_net", "official") == "dcase21_net"
    assert audio_train.checkpoint_name("dcase21_net", "speaker:theo") == "dcase21_net_speaker-theo"
    assert set(audio_train.DEFAULT_EPOCHS) == set(audio_train.audio_models.AUDIO_ARCHITECTURES)
