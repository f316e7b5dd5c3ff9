"""FSDD as float tensors and data loaders: official and speaker-held-out splits, batch augmentation.

Splits (the ``split`` argument):

* ``"official"``: takes 0–4 of every speaker and digit are the test set (300 clips), takes 5–49
  the training set (2,700 clips). The same speakers appear on both sides.
* ``"speaker:<name>"``, e.g. ``"speaker:theo"``: all 500 clips of that speaker are the test set
  and the other speakers' 2,500 clips the training set: accuracy on a voice never heard.

Batches are (waveform (B, 8000) float32 in [-1, 1), label (B,) int64); the models of
``pruning_lib.audio.models`` turn waveforms into log-mel spectrograms themselves.

Introduced in: the audio notebook (§The data).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset, default_collate

from pruning_lib.audio import fsdd
from pruning_lib.data import balanced_indices

OFFICIAL_TEST_TAKES = 5          # takes 0–4 are the official test set


@dataclass(frozen=True)
class AudioData:
    """FSDD clips split into train and test, as float waveforms.

    Attributes:
        x_train: (N, CLIP_SAMPLES) float32 waveforms in [-1, 1).
        y_train: (N,) int64 digits.
        x_test: (M, CLIP_SAMPLES) float32 waveforms.
        y_test: (M,) int64 digits.
        source: The folder the clips came from.
        split: "official" or "speaker:<name>".
        classes: Class names, index = label ("0" … "9").
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    source: str
    split: str
    classes: tuple[str, ...] = fsdd.DIGIT_CLASSES

    def __repr__(self) -> str:
        return (f"AudioData(train={tuple(self.x_train.shape)}, test={tuple(self.x_test.shape)}, "
                f"split={self.split!r}, source={self.source!r})")


@dataclass(frozen=True)
class AudioLoaders:
    """Data loaders for FSDD, shaped like ``data.Loaders``.

    Attributes:
        train: Shuffled (seeded) training batches, augmented when asked.
        test: The whole test split, in order.
        eval: A fixed, class-balanced slice of the test split (10 clips per digit).
        data: The ``AudioData`` the loaders read from.
    """

    train: DataLoader
    test: DataLoader
    eval: DataLoader
    data: AudioData


def split_indices(clips: fsdd.FSDDClips, split: str) -> tuple[Tensor, Tensor]:
    """(train indices, test indices) of ``clips`` for a split (module docstring).

    Raises:
        ValueError: an unknown split or a speaker that the clips do not contain.
    """
    if split == "official":
        test = clips.takes < OFFICIAL_TEST_TAKES
    elif split.startswith("speaker:"):
        speaker, known = split.removeprefix("speaker:"), sorted(set(clips.speakers))
        if speaker not in known:
            raise ValueError(f"split {split!r}: no speaker {speaker!r}; speakers: {', '.join(known)}")
        test = torch.tensor([s == speaker for s in clips.speakers])
    else:
        raise ValueError(f"unknown split {split!r}; expected 'official' or 'speaker:<name>', "
                         "e.g. 'speaker:theo'")
    return torch.nonzero(~test).flatten(), torch.nonzero(test).flatten()


def make_audio_data(clips: fsdd.FSDDClips, split: str = "official") -> AudioData:
    """Split ``clips`` and turn int16 samples into float32 waveforms x / 32768."""
    train_idx, test_idx = split_indices(clips, split)
    waves = clips.waves.float() / 32768.0                     # (N, CLIP_SAMPLES)
    return AudioData(x_train=waves[train_idx], y_train=clips.digits[train_idx],
                     x_test=waves[test_idx], y_test=clips.digits[test_idx],
                     source=clips.source, split=split)


def load_fsdd(split: str = "official", *, download: bool | None = None) -> AudioData:
    """Find, read and split FSDD; see ``fsdd.find_fsdd`` for where it is looked for."""
    return make_audio_data(fsdd.load_fsdd_clips(download=download), split)


def random_shift_gain(x: Tensor, generator: torch.Generator, *, max_shift: int = 800,
                      max_gain_db: float = 3.0) -> Tensor:
    """Batch augmentation: shift each clip in time (zeros fill the gap) and scale it.

    Vectorised over the batch. Shifts are uniform in [-max_shift, max_shift] samples (800 = 100 ms
    at 8 kHz), gains uniform in [-max_gain_db, max_gain_db] dB.

    Args:
        x: Waveforms, shape (B, T).
        generator: Drives the shifts and gains.
        max_shift: Largest shift, in samples.
        max_gain_db: Largest gain, in dB (either sign).

    Returns:
        Augmented waveforms, shape (B, T).
    """
    b, t = x.shape
    shift = torch.randint(-max_shift, max_shift + 1, (b,), generator=generator)
    src = torch.arange(t)[None, :] - shift[:, None]                    # (B, T) source sample index
    valid = (src >= 0) & (src < t)
    shifted = torch.gather(x, 1, src.clamp(0, t - 1)) * valid          # (B, T)
    gain_db = (2 * torch.rand(b, generator=generator) - 1) * max_gain_db
    return shifted * (10.0 ** (gain_db / 20.0))[:, None]


class AugmentingCollate:
    """``collate_fn`` that stacks a batch, then applies ``random_shift_gain`` with its own generator."""

    def __init__(self, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, batch: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        """Collate (waveform, label) pairs into (B, T), (B,) and augment the waveforms."""
        x, y = default_collate(batch)                                  # (B, T), (B,)
        return random_shift_gain(x, self.generator), y


def make_audio_loaders(data: AudioData, *, batch_size: int = 64, fast: bool = False,  # noqa: PLR0913 — loader options, keyword-only
                       augment: bool = False, seed: int = 0, train_per_digit: int | None = None,
                       test_per_digit: int | None = None) -> AudioLoaders:
    """Wrap ``AudioData`` in loaders of (waveform (B, CLIP_SAMPLES) float32, label (B,) int64).

    Args:
        data: The split clips.
        batch_size: Batch size of the training loader (test and eval use 256).
        fast: Keep 100 training clips per digit (1,000); the test split stays whole.
        augment: Shift and scale every training batch (``random_shift_gain``), seeded by ``seed``.
        seed: Seeds the training order, the fast subset, the eval slice and the augmentation.
        train_per_digit: Training clips per digit (a class-balanced, seeded subset); None = 100 when
            ``fast``, else every training clip.
        test_per_digit: Test clips per digit (a class-balanced subset, seeded with ``seed + 2``);
            None = every test clip (``fast`` keeps them all). The eval slice and ``data`` do not
            depend on it (the slice is drawn from every test clip).
    """
    if train_per_digit is None and fast:
        train_per_digit = 100
    for name, value in (("train_per_digit", train_per_digit), ("test_per_digit", test_per_digit)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be a positive number of clips per digit, got {value}")
    train_idx = (balanced_indices(data.y_train, train_per_digit, seed=seed) if train_per_digit is not None
                 else torch.arange(len(data.y_train)))
    test_idx = (balanced_indices(data.y_test, test_per_digit, seed=seed + 2) if test_per_digit is not None
                else torch.arange(len(data.y_test)))
    per_digit = min(10, int(torch.bincount(data.y_test).min()))       # 10, fewer for tiny folders
    eval_idx = balanced_indices(data.y_test, per_digit, seed=seed + 1)  # from all test clips
    g = torch.Generator().manual_seed(seed)
    collate = AugmentingCollate(seed) if augment else None
    return AudioLoaders(
        train=DataLoader(TensorDataset(data.x_train[train_idx], data.y_train[train_idx]),
                         batch_size=batch_size, shuffle=True, generator=g, collate_fn=collate),
        test=DataLoader(TensorDataset(data.x_test[test_idx], data.y_test[test_idx]), batch_size=256,
                        generator=torch.Generator()),   # own generator: iterating spares the global RNG
        eval=DataLoader(TensorDataset(data.x_test[eval_idx], data.y_test[eval_idx]), batch_size=256,
                        generator=torch.Generator()),
        data=data,
    )


def fsdd_loaders(split: str = "official", *, batch_size: int = 64, fast: bool = False,  # noqa: PLR0913 — loader options, keyword-only
                 augment: bool = False, seed: int = 0, train_per_digit: int | None = None,
                 test_per_digit: int | None = None) -> AudioLoaders:
    """FSDD loaders in one call (``load_fsdd`` then ``make_audio_loaders``, which documents the options)."""
    return make_audio_loaders(load_fsdd(split), batch_size=batch_size, fast=fast, augment=augment,
                              seed=seed, train_per_digit=train_per_digit, test_per_digit=test_per_digit)
