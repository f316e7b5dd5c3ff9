"""Audio data: the Free Spoken Digit Dataset (FSDD), read offline-first, never copied into the repo.

FSDD holds 3,000 recordings of the digits 0–9 (8 kHz mono int16 wav, 6 speakers x 10 digits x 50
takes), named ``recordings/{digit}_{speaker}_{take}.wav``. It is looked for, in this order:

1. the folder in ``PRUNING_FSDD_DIR``;
2. the shared offline copy ``../shared/data/fsdd`` (relative to the repository root);
3. ``data/fsdd`` inside the repository (git-ignore it: FSDD must not be committed);
4. an earlier download in ``repro.cache_dir() / "fsdd"``;
5. a download of the zip archive of commit ``FSDD_COMMIT`` of Jakobovski/free-spoken-digit-dataset
   into the cache folder, only when asked: ``download=True`` or ``PRUNING_DOWNLOAD=1`` (the network
   is never probed, so an online and an offline machine with the same files get the same clips).

A folder may hold ``recordings/`` or be that folder itself. Every clip is padded or cropped to
1 s (``fit_length``). A copy the package downloaded (in ``repro.cache_dir()``) also keeps its
decoded clips there as int16, keyed by the folder's path and checked against its file listing; any
other folder (a course's shared copy, ``PRUNING_FSDD_DIR``) is read in place every time and nothing
derived from it is written.

FSDD is CC BY-SA 4.0 (Z. Jackson, C. Souza, J. Flaks, Y. Pan, H. Nicolas, A. Thite,
"Jakobovski/free-spoken-digit-dataset", Zenodo). The share-alike covers derived arrays too, which
is why nothing derived from it may be written inside the repository.

Needs the ``[audio]`` extra (soundfile). Loaders and augmentation: ``pruning_lib.audio.data``.

Introduced in: the audio notebook (§The data).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pruning_lib import repro

FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
FSDD_URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{FSDD_COMMIT}.zip"
SHARED_FSDD_DIR = repro.REPO_ROOT.parent / "shared" / "data" / "fsdd"
REPO_FSDD_DIR = repro.DATA_DIR / "fsdd"
SAMPLE_RATE = 8000
CLIP_SAMPLES = 8000                       # 1 s at 8 kHz; 99.3% of the clips are shorter
FSDD_FILES = 3000
DIGIT_CLASSES = tuple(str(d) for d in range(10))
_NAME = re.compile(r"(?P<digit>[0-9])_(?P<speaker>[a-z]+)_(?P<take>[0-9]+)\.wav")
_CACHE_VERSION = 1


def parse_name(name: str) -> tuple[int, str, int]:
    """Split an FSDD file name ``{digit}_{speaker}_{take}.wav`` into (digit, speaker, take).

    Example:
        >>> parse_name("7_jackson_32.wav")
        (7, 'jackson', 32)

    Raises:
        ValueError: for any other name, e.g. ``x_george_1.wav`` or ``7_jackson.wav``.
    """
    match = _NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"malformed FSDD file name {name!r}: expected '{{digit}}_{{speaker}}_{{take}}"
                         ".wav' with a digit 0-9, a lower-case speaker and a take number, "
                         "e.g. '7_jackson_32.wav'")
    return int(match["digit"]), match["speaker"], int(match["take"])


def read_wav(path: str | Path) -> np.ndarray:
    """Read one mono 8 kHz wav file as int16 samples (soundfile; ``torchaudio.load`` needs torchcodec).

    Returns:
        int16 array of shape (T,).

    Raises:
        ValueError: when the file is not mono or its sample rate is not 8,000 Hz.
    """
    import soundfile  # the [audio] extra; imported here so that the module imports without it

    samples, rate = soundfile.read(str(path), dtype="int16", always_2d=True)   # (T, channels)
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: sample rate {rate} Hz, FSDD clips are {SAMPLE_RATE} Hz")
    if samples.shape[1] != 1:
        raise ValueError(f"{path}: {samples.shape[1]} channels, FSDD clips are mono")
    return samples[:, 0]


def fit_length(wave: np.ndarray, length: int = CLIP_SAMPLES) -> np.ndarray:
    """Pad a short clip with zeros on both sides (centred), or crop a long one to its loudest window.

    The crop keeps the ``length`` consecutive samples with the largest energy sum(x²) (the first
    such window on ties), so that a digit preceded by silence is not cut off.

    Args:
        wave: Samples, shape (T,), any dtype.
        length: Output length.

    Returns:
        Array of shape (length,), same dtype as ``wave``.
    """
    n = len(wave)
    if n <= length:
        out = np.zeros(length, dtype=wave.dtype)
        left = (length - n) // 2
        out[left:left + n] = wave
        return out
    energy = np.concatenate([[0.0], np.cumsum(wave.astype(np.float64) ** 2)])   # (T + 1,)
    start = int(np.argmax(energy[length:] - energy[:-length]))                   # windows (T-length+1,)
    return wave[start:start + length].copy()


@dataclass(frozen=True)
class FSDDClips:
    """All clips of an FSDD folder, in sorted file-name order.

    Attributes:
        waves: (N, CLIP_SAMPLES) int16 samples, padded or cropped by ``fit_length``.
        digits: (N,) int64 labels 0–9.
        speakers: N speaker names.
        takes: (N,) int64 take numbers.
        source: The folder the clips came from.
    """

    waves: Tensor
    digits: Tensor
    speakers: tuple[str, ...]
    takes: Tensor
    source: str

    def __repr__(self) -> str:
        return (f"FSDDClips(n={len(self.digits)}, speakers={sorted(set(self.speakers))}, "
                f"source={self.source!r})")


def _recordings_in(folder: Path) -> Path | None:
    for candidate in (folder / "recordings", folder):
        if candidate.is_dir() and any(candidate.glob("*.wav")):
            return candidate
    return None


def find_fsdd(*, download: bool | None = None) -> Path:
    """Return the ``recordings`` folder of the first location that has FSDD (module docstring order).

    Args:
        download: Download when no local copy exists: True = yes, False = never, None = only when
            ``PRUNING_DOWNLOAD`` is set (``repro.downloads_requested``).

    Raises:
        FileNotFoundError: no copy found (and no download); the message lists every path tried.
    """
    cached = repro.cache_dir() / "fsdd"
    tried = []
    for folder in (repro.env_path("PRUNING_FSDD_DIR"), SHARED_FSDD_DIR, REPO_FSDD_DIR, cached):
        if folder is not None:
            found = _recordings_in(folder)
            if found is not None:
                return found
            tried.append(str(folder))
    if download or (download is None and repro.downloads_requested()):
        return download_fsdd(cached)
    raise FileNotFoundError(
        f"FSDD recordings not found; tried {', '.join(tried)} (each with or without recordings/). "
        f"Set PRUNING_FSDD_DIR to a copy, or download commit {FSDD_COMMIT[:7]} of "
        "github.com/Jakobovski/free-spoken-digit-dataset with PRUNING_DOWNLOAD=1 (or download=True)")


def extract_recordings(archive: bytes, dest: Path, *, expected: int = FSDD_FILES) -> Path:
    """Unpack ``recordings/*.wav`` of an FSDD zip archive into ``dest/recordings`` and verify them.

    The files go to a temporary folder first and are moved into place only after the check, so a
    broken archive never leaves a half-filled ``recordings`` folder behind.

    Raises:
        ValueError: when the archive does not hold exactly ``expected`` wav files with valid names.
    """
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        members = [m for m in z.namelist() if m.endswith(".wav") and "/recordings/" in m]
        if len(members) != expected:
            raise ValueError(f"FSDD archive holds {len(members)} recordings, expected {expected}")
        for member in members:
            parse_name(member.rsplit("/", 1)[-1])   # a malformed name (or a path like "../x") raises
        dest.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest))
        try:
            for member in members:
                (tmp / member.rsplit("/", 1)[-1]).write_bytes(z.read(member))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    target = dest / "recordings"
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def download_fsdd(dest: Path) -> Path:
    """Download the zip of commit ``FSDD_COMMIT`` from GitHub and unpack its recordings into ``dest``.

    Returns:
        The ``dest/recordings`` folder (3,000 verified wav files).
    """
    with urllib.request.urlopen(FSDD_URL, timeout=60) as response:   # noqa: S310 (fixed https URL)
        archive = response.read()
    return extract_recordings(archive, dest, expected=FSDD_FILES)


def _fingerprint(files: list[Path]) -> str:
    """sha1 of the file names, sizes and modification times: changes when the folder changes."""
    h = hashlib.sha1()
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()


def _cache_path(folder: Path, length: int) -> Path:
    key = hashlib.sha1(f"{folder.resolve()}|{length}|{_CACHE_VERSION}".encode()).hexdigest()[:16]
    return repro.cache_dir() / f"fsdd_waves_{key}.npz"


def _decode(files: list[Path], length: int) -> dict[str, np.ndarray]:
    fields = [parse_name(f.name) for f in files]   # parse every name before reading any audio
    return {"waves": np.stack([fit_length(read_wav(f), length) for f in files]),   # (N, length)
            "digits": np.array([d for d, _, _ in fields], dtype=np.int64),
            "speakers": np.array([s for _, s, _ in fields]),
            "takes": np.array([t for _, _, t in fields], dtype=np.int64)}


def read_fsdd_folder(folder: str | Path, *, length: int = CLIP_SAMPLES,
                     cache: bool | None = None) -> FSDDClips:
    """Read every ``*.wav`` of a recordings folder (sorted by name), using the cache when valid.

    Args:
        folder: A folder of FSDD wav files (or the folder that holds ``recordings/``).
        length: Samples per clip after ``fit_length``.
        cache: Load from / save to ``repro.cache_dir()`` (keyed by the folder's path; rebuilt
            when its file names, sizes or times change). Default (None): only for a copy inside
            ``repro.cache_dir()`` (one the user asked to download); a folder elsewhere, such as a
            course's shared copy, is read in place and nothing derived from it is written.

    Raises:
        FileNotFoundError: the folder holds no wav files.
        ValueError: a malformed file name, a wrong sample rate or a multi-channel file.
    """
    given = Path(folder)
    folder = _recordings_in(given)
    if folder is None:
        raise FileNotFoundError(f"no FSDD wav files in {given} or {given / 'recordings'}")
    files = sorted(folder.glob("*.wav"))
    if cache is None:
        cache = folder.resolve().is_relative_to(repro.cache_dir().resolve())
    if not cache:
        arrays = _decode(files, length)
    else:
        stamp, path = _fingerprint(files), _cache_path(folder, length)
        arrays = _load_cache(path, stamp)
        if arrays is None:
            arrays = _decode(files, length)
            _save_atomically(path, fingerprint=np.array(stamp), **arrays)
    return FSDDClips(waves=torch.from_numpy(arrays["waves"]), digits=torch.from_numpy(arrays["digits"]),
                     speakers=tuple(str(s) for s in arrays["speakers"]),
                     takes=torch.from_numpy(arrays["takes"]), source=str(folder))


def _load_cache(path: Path, stamp: str) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when the file is missing, stale or unreadable."""
    try:
        with np.load(path) as z:
            if str(z["fingerprint"]) != stamp:
                return None
            return {k: z[k] for k in ("waves", "digits", "speakers", "takes")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def _save_atomically(path: Path, **arrays: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def load_fsdd_clips(*, download: bool | None = None) -> FSDDClips:
    """Find FSDD (``find_fsdd``) and read all of its clips (``read_fsdd_folder``)."""
    return read_fsdd_folder(find_fsdd(download=download))
