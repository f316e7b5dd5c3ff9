"""Acoustic CNNs with their log-mel front end inside: waveform (B, 8000) → logits (B, 10).

The front end (``LogMel``: torchaudio ``MelSpectrogram`` + ``AmplitudeToDB`` + per-utterance
standardisation) is a submodule of every model, so the whole network is one ``nn.Module`` that
``surgery`` traces and prunes from the raw waveform. It has no parameters and no convs.

Both models are built from the package's ``ConvBNReLU`` units (conv names such as
``features.conv1.conv``). Those convs have no bias: the BatchNorm that follows would cancel it
(BN subtracts the per-channel mean), so the reference layouts' conv biases are dropped.

* ``dcase21_net``: the DCASE 2021 Task 1A baseline (Singh & Plumbley's DCASE21_Net), three 7x7
  convs of 16, 16, 32 filters. The reference's second pooling, MaxPool 4x100 over 500 frames,
  becomes an adaptive max-pool to 2x1 (= MaxPool 4x25 on the 8x25 map of a 1-s clip), so the
  flattened size is 64 as in the reference and the head is unchanged (64 → 100 → 10).
* ``vggish_slim``: VGGish's six 3x3 convs (64-128-256-256-512-512) at 1/4 width
  (16-32-64-64-128-128) with BatchNorm (VGGish has none) and, instead of Dense 4096 → 128 on the
  flattened map, a global average pool and a small head 128 → 128 → 10. Its input is the same
  40-mel log-mel as ``dcase21_net`` (VGGish uses 64 mels x 96 frames).

Importing this module registers both names with ``models.register``. Needs the ``[audio]`` extra
(torchaudio).

Introduced in: the audio notebook (§The models).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torchaudio
from torch import Tensor, nn

from pruning_lib import models
from pruning_lib.models import ConvBNReLU, vgg_features

SAMPLE_RATE = 8000
EXAMPLE_SHAPE = (1, 8000)                 # one 1-s waveform: the example input for surgery
# VGGish's conv pattern (64, "M", 128, "M", 256, 256, "M", 512, 512, "M") at 1/4 of the widths.
VGGISH_SLIM_CFG: tuple[int | str, ...] = (16, "M", 32, "M", 64, 64, "M", 128, 128, "M")
AUDIO_ARCHITECTURES = ("dcase21_net", "vggish_slim")


class LogMel(nn.Module):
    """Waveform → standardised log-mel spectrogram, as a parameter-free module.

    x ↦ 10·log10(max(mel(|STFT x|²), 1e-10)), floored at (max − top_db) per clip, then
    standardised per clip: (x − mean) / (std + 1e-5) over all mel bands and frames. The
    per-utterance standardisation needs no dataset statistics and removes the recording gain.

    Args:
        sample_rate: Samples per second of the input.
        n_fft: FFT size (256 = 32 ms at 8 kHz; 129 frequency bins).
        hop_length: Hop between frames (64 = 8 ms: 1 + 8000 // 64 = 126 frames per 1-s clip).
        n_mels: Mel bands.
        top_db: Dynamic range kept below each clip's maximum, in dB.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, n_fft: int = 256, hop_length: int = 64,
                 n_mels: int = 40, top_db: float = 80.0) -> None:
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
        self.to_db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=top_db)

    def forward(self, wave: Tensor) -> Tensor:
        """Map (B, T) or (B, 1, T) waveforms to (B, 1, n_mels, 1 + T // hop_length) log-mels."""
        if wave.ndim == 3 and wave.shape[1] == 1:
            wave = wave[:, 0]                                       # (B, T)
        if wave.ndim != 2:
            raise ValueError(f"LogMel expects waveforms (B, T) or (B, 1, T), got {tuple(wave.shape)}")
        # 4-D input: AmplitudeToDB's top_db floor is then per clip (for 3-D, per batch)
        x = self.to_db(self.mel(wave).unsqueeze(1))                 # (B, 1, n_mels, frames)
        mean = x.mean(dim=(2, 3), keepdim=True)                     # (B, 1, 1, 1)
        std = x.std(dim=(2, 3), keepdim=True)
        return (x - mean) / (std + 1e-5)


class DCASE21Net(nn.Module):
    """The DCASE 2021 Task 1A baseline layout behind a log-mel front end.

    Layout as in ``Baseline_code.py`` of the authors' repository
    github.com/Arshdeep-Singh-Boparai/passive-filter-pruning-Interspeech22 (Singh & Plumbley, "A passive
    similarity based CNN filter pruning for efficient acoustic scene classification", Interspeech 2022).

    conv1 16 7x7 → conv2 16 7x7 → MaxPool 5x5 → Dropout → conv3 32 7x7 → max-pool to 2x1 →
    Dropout → Flatten (64) → Dense 100 + ReLU → Dropout → Dense num_classes. Every conv is a
    ``ConvBNReLU`` with "same" padding. For a 1-s clip: 40x126 → 8x25 → 2x1.

    Input (B, 8000) or (B, 1, 8000) waveforms → logits (B, num_classes).
    """

    def __init__(self, num_classes: int = 10, *, n_mels: int = 40, hop_length: int = 64,
                 dropout: float = 0.3) -> None:
        super().__init__()
        self.frontend = LogMel(n_mels=n_mels, hop_length=hop_length)
        self.features = nn.Sequential(OrderedDict(
            conv1=ConvBNReLU(1, 16, 7), conv2=ConvBNReLU(16, 16, 7),
            pool1=nn.MaxPool2d(5), drop1=nn.Dropout(dropout),
            conv3=ConvBNReLU(16, 32, 7),
            pool2=nn.AdaptiveMaxPool2d((2, 1)), drop2=nn.Dropout(dropout),
        ))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * 2, 100), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(100, num_classes))

    def forward(self, wave: Tensor) -> Tensor:
        """Logits (B, 10) of waveforms (B, 8000)."""
        return self.classifier(self.features(self.frontend(wave)))


class VGGishSlim(nn.Module):
    """VGGish's six 3x3 convs at 1/4 width, with BatchNorm, behind a log-mel front end.

    conv1 16 → pool → conv2 32 → pool → conv3 64, conv4 64 → pool → conv5 128, conv6 128 → pool
    → global average pool → Dense 128 + ReLU → Dropout → Dense num_classes. conv3 … conv6 are
    VGGish's conv3_1, conv3_2, conv4_1, conv4_2. Pools are 2x2 (40x126 → 20x63 → 10x31 → 5x15 →
    2x7).

    Input (B, 8000) or (B, 1, 8000) waveforms → logits (B, num_classes).
    """

    def __init__(self, num_classes: int = 10, *, cfg: tuple[int | str, ...] = VGGISH_SLIM_CFG,
                 n_mels: int = 40, hop_length: int = 64, dropout: float = 0.3) -> None:
        super().__init__()
        self.frontend = LogMel(n_mels=n_mels, hop_length=hop_length)
        self.features, c = vgg_features(cfg, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c, 128), nn.ReLU(), nn.Dropout(dropout), nn.Linear(128, num_classes))

    def forward(self, wave: Tensor) -> Tensor:
        """Logits (B, 10) of waveforms (B, 8000)."""
        return self.classifier(self.pool(self.features(self.frontend(wave))))


def keras_style_params(model: nn.Module) -> int:
    """Parameters as the authors' Keras models count them, for comparison with published tables.

    Keras also counts each BatchNorm's running mean and variance (2 per channel) and the reference
    convs have a bias (1 per filter) that ours drop (module docstring), so for networks of
    ``ConvBNReLU`` units: ``count_params(model) + 3 · Σ BN channels``. For ``dcase21_net`` this gives
    the 46,246 of the Interspeech'22 table (``published.INTERSPEECH22_DCASE21``).

    Example:
        >>> keras_style_params(DCASE21Net())
        46246
    """
    bn_channels = sum(m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    return sum(p.numel() for p in model.parameters()) + 3 * bn_channels


def example_input(batch: int = 1) -> Tensor:
    """Zero waveforms of shape (batch, 8000): the example input for ``surgery`` and ``count_macs``."""
    return torch.zeros(batch, EXAMPLE_SHAPE[1])


models.register("dcase21_net", DCASE21Net)
models.register("vggish_slim", VGGishSlim)
