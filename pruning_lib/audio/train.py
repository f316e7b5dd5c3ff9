"""Train an acoustic CNN on FSDD and write a checkpoint plus a model card (as ``train.main`` does).

::

    python -m pruning_lib.audio.train --model dcase21_net --threads 2

The recipe is ``train.train`` (SGD Nesterov, one-cycle schedule); the waveform augmentation
(time shift, gain) happens in the training loader, not in ``TrainConfig.augment`` (which shifts
and flips images). The card records the split: with ``--split official`` the test accuracy is on
the official 300-clip test set; with ``--split speaker:theo`` it is on the 500 clips of the held-out
speaker (the official test set then overlaps the training set, so it is not reported).

Introduced in: the audio notebook (§The models).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from pruning_lib import metrics, models, repro
from pruning_lib.audio import data as audio_data
from pruning_lib.audio import fsdd
from pruning_lib.audio import models as audio_models
from pruning_lib.train import TrainConfig, evaluate, train

AUGMENTATION = "random_shift_gain: time shift ±800 samples (100 ms), gain ±3 dB, per clip"
# Default epochs. Short 3-epoch runs (lr 0.05, batch 64) reached 99.7% (vggish_slim) and 78%
# (dcase21_net, slower: small, heavy dropout); an epoch takes 12-15 s on one CPU thread, so
# both full runs stay far below the 30 minutes on a 2-core CPU.
DEFAULT_EPOCHS = {"dcase21_net": 40, "vggish_slim": 15}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train an acoustic CNN on FSDD and write a checkpoint "
                                            "with its model card.")
    p.add_argument("--model", required=True, choices=audio_models.AUDIO_ARCHITECTURES)
    p.add_argument("--epochs", type=int, default=None, help="default: DEFAULT_EPOCHS[model]")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--split", default="official", help="'official' or 'speaker:<name>'")
    p.add_argument("--fast", action="store_true", help="100 training clips per digit (timing runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    p.add_argument("--name", default=None, help="checkpoint name (default: the model, plus the "
                                                "split when it is not official)")
    p.add_argument("--out", type=Path, default=repro.CHECKPOINT_DIR)
    return p.parse_args(argv)


def checkpoint_name(model: str, split: str) -> str:
    """``model`` for the official split, else e.g. ``dcase21_net_speaker-theo``."""
    return model if split == "official" else f"{model}_{split.replace(':', '-')}"


def _data_card(loaders: audio_data.AudioLoaders, fast: bool) -> dict:
    d = loaders.data
    rule = ("takes 0-4 of every speaker and digit are the test set, takes 5-49 the training set"
            if d.split == "official" else f"all clips of speaker {d.split.removeprefix('speaker:')} "
                                          "are the test set, the other speakers' clips the training set")
    return {"dataset": "FSDD (Free Spoken Digit Dataset)", "source": d.source,
            "commit": fsdd.FSDD_COMMIT, "licence": "CC BY-SA 4.0", "split": d.split,
            "split_rule": rule, "train_clips": len(loaders.train.dataset),
            "test_clips": len(loaders.test.dataset), "fast_subset": fast,
            "clip_samples": fsdd.CLIP_SAMPLES, "sample_rate": fsdd.SAMPLE_RATE}


def _card(args: argparse.Namespace, model: nn.Module, loaders: audio_data.AudioLoaders,
          run: dict, argv: list[str] | None) -> dict:
    """The model card: the same keys as ``train.main``'s, with FSDD's data and split."""
    name = args.name or checkpoint_name(args.model, args.split)
    return {
        "name": name,
        "arch": model.arch_spec,
        "params": metrics.count_params(model),
        "macs": metrics.count_macs(model, audio_models.example_input()),
        "data": _data_card(loaders, args.fast),
        "recipe": {**asdict(run["config"]), "augment": False if args.no_augment else AUGMENTATION,
                   "batch_size": args.batch_size, "optimizer": "SGD nesterov",
                   "schedule": "OneCycleLR"},
        "test_split": args.split,
        "test_accuracy_full": {"split": args.split, **evaluate(model, loaders.test)},
        "history": run["history"],
        "train_seconds": round(run["seconds"], 1),
        "machine": {"threads": torch.get_num_threads(), "torch": torch.__version__,
                    "python": platform.python_version(), "processor": platform.machine()},
        "command": "python -m pruning_lib.audio.train " + shlex.join(sys.argv[1:] if argv is None
                                                                      else argv),
        "sha256": models.sha256(run["weights"]),
    }


def main(argv: list[str] | None = None) -> dict:
    """Command-line entry point; returns the model card it wrote."""
    args = _parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repro.seed_everything(args.seed)
    loaders = audio_data.fsdd_loaders(args.split, batch_size=args.batch_size, fast=args.fast,
                                         augment=not args.no_augment, seed=args.seed)
    model = models.build(args.model)
    epochs = args.epochs or DEFAULT_EPOCHS[args.model]
    config = TrainConfig(epochs=epochs, lr=args.lr, weight_decay=args.weight_decay,
                         label_smoothing=args.label_smoothing, augment=False, seed=args.seed)
    start = time.perf_counter()
    history = train(model, loaders.train, loaders.test, config)
    seconds = time.perf_counter() - start
    name = args.name or checkpoint_name(args.model, args.split)
    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / f"{name}.pt"
    torch.save(model.state_dict(), weights)
    run = {"config": config, "history": history, "seconds": seconds, "weights": weights}
    card = _card(args, model, loaders, run, argv)
    (args.out / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


if __name__ == "__main__":
    result = main()
    print(json.dumps({k: result[k] for k in ("name", "test_split", "test_accuracy_full",
                                             "train_seconds")}))
