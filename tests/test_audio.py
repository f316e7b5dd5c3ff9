"""Tests for pruning_lib/audio/fsdd.py and pruning_lib/audio/data.py (FSDD).

Two kinds of data only: tiny wav files the tests write themselves (synthetic samples, nothing
derived from FSDD), and the shared offline FSDD copy at ``../shared/data/fsdd``, read in place and
never copied. Tests that need the shared copy skip when it is missing, and FAIL when the ``CI``
environment variable is set. Caches go to the temporary ``PRUNING_CACHE_DIR`` of conftest; nothing
is written inside the repository, and nothing is downloaded (the download is faked, and only happens
when asked: ``download=True`` or ``PRUNING_DOWNLOAD=1``; the network is never probed).
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from pruning_lib import models, repro
from pruning_lib.audio import data as audio_data
from pruning_lib.audio import fsdd

pytestmark = pytest.mark.usefixtures("single_thread")


# Helpers: tiny synthetic wav files --------------------------------------------------------------

def write_wav(path: Path, samples: np.ndarray, rate: int = 8000) -> Path:
    """Write int16 ``samples`` ((T,) mono or (T, C)) as a 16-bit PCM wav file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.asarray(samples, dtype=np.int16), rate, subtype="PCM_16")
    return path


def write_folder(folder: Path, names: list[str], length: int = 100) -> Path:
    """One wav per name; file i holds the constant value i + 1 (so files are told apart)."""
    for i, name in enumerate(names):
        write_wav(folder / name, np.full(length, i + 1, dtype=np.int16))
    return folder


def fake_archive(names: list[str], top: str = "free-spoken-digit-dataset-abc") -> bytes:
    """A zip shaped like GitHub's archive of FSDD: ``<top>/recordings/<name>`` plus other files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(f"{top}/README.md", "not a recording")
        for i, name in enumerate(names):
            wav = io.BytesIO()
            soundfile.write(wav, np.full(50, i, dtype=np.int16), 8000, subtype="PCM_16", format="WAV")
            z.writestr(f"{top}/recordings/{name}", wav.getvalue())
    return buffer.getvalue()


def hide_other_locations(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point the shared and repository locations at empty paths; any download fails the test."""
    monkeypatch.setattr(fsdd, "SHARED_FSDD_DIR", tmp_path / "no-shared")
    monkeypatch.setattr(fsdd, "REPO_FSDD_DIR", tmp_path / "no-repo")
    monkeypatch.setattr(fsdd.urllib.request, "urlopen", lambda *a, **k: pytest.fail("downloaded"))


# The shared FSDD copy (read once per session) ---------------------------------------------------

def shared_fsdd() -> Path:
    """The shared copy; skip when it is missing, or fail under CI (where it must be provided)."""
    if (fsdd.SHARED_FSDD_DIR / "recordings").is_dir():
        return fsdd.SHARED_FSDD_DIR
    reason = f"shared FSDD copy not found at {fsdd.SHARED_FSDD_DIR} (../shared/data/fsdd)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must provide it")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def fsdd_clips() -> fsdd.FSDDClips:
    """All 3,000 clips of the shared copy, read without the cache. Shared: never modify."""
    return fsdd.read_fsdd_folder(shared_fsdd(), cache=False)


@pytest.mark.parametrize(("ci", "outcome"), [("1", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_shared_copy_fails_under_ci_and_skips_otherwise(monkeypatch, tmp_path, ci, outcome):
    monkeypatch.setattr(fsdd, "SHARED_FSDD_DIR", tmp_path / "absent")
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="shared FSDD copy not found"):
        shared_fsdd()


# parse_name -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("7_jackson_32.wav", (7, "jackson", 32)),
    ("0_george_0.wav", (0, "george", 0)),
    ("9_yweweler_49.wav", (9, "yweweler", 49)),
])
def test_parse_name_good(name, expected):
    assert fsdd.parse_name(name) == expected


@pytest.mark.parametrize("name", [
    "x_george_1.wav", "7_jackson.wav", "10_theo_1.wav", "7_Theo_1.wav", "7_theo_1.WAV",
    "7_theo_1.wav.bak", "7_theo_-1.wav", "7_theo_1", "../7_theo_1.wav", "",
])
def test_parse_name_malformed_is_a_clear_error(name):
    with pytest.raises(ValueError, match="malformed FSDD file name .*e.g. '7_jackson_32.wav'"):
        fsdd.parse_name(name)


# read_wav ---------------------------------------------------------------------------------------

def test_read_wav_round_trip(tmp_path):
    samples = np.array([0, 1, -1, 32767, -32768, 1000], dtype=np.int16)
    out = fsdd.read_wav(write_wav(tmp_path / "1_a_0.wav", samples))
    assert out.dtype == np.int16 and out.shape == (6,)
    np.testing.assert_array_equal(out, samples)


def test_read_wav_wrong_sample_rate_is_an_error(tmp_path):
    path = write_wav(tmp_path / "1_a_0.wav", np.zeros(160, dtype=np.int16), rate=16000)
    with pytest.raises(ValueError, match="sample rate 16000 Hz, FSDD clips are 8000 Hz"):
        fsdd.read_wav(path)


def test_read_wav_stereo_is_an_error(tmp_path):
    path = write_wav(tmp_path / "1_a_0.wav", np.zeros((80, 2), dtype=np.int16))
    with pytest.raises(ValueError, match="2 channels"):
        fsdd.read_wav(path)


# fit_length -------------------------------------------------------------------------------------

def test_fit_length_pads_centred_with_zeros():
    out = fsdd.fit_length(np.array([1, 2, 3], dtype=np.int16), 8)   # 5 zeros: 2 left, 3 right
    np.testing.assert_array_equal(out, [0, 0, 1, 2, 3, 0, 0, 0])
    assert out.dtype == np.int16


def test_fit_length_crops_to_the_loudest_window():
    wave = np.array([1, 0, 0, 0, 0, 5, -6, 5, 0, 1], dtype=np.int16)
    # windows starting at 4 and 5 both hold the largest energy, 86: the first one wins
    np.testing.assert_array_equal(fsdd.fit_length(wave, 4), [0, 5, -6, 5])
    np.testing.assert_array_equal(fsdd.fit_length(np.ones(6, np.int16), 4), [1, 1, 1, 1])  # tie: first


@pytest.mark.parametrize("n", [1, 1148, 7999, 8000, 8001, 18262])
def test_fit_length_gives_exactly_8000_samples(n):
    wave = np.arange(n, dtype=np.int16)
    out = fsdd.fit_length(wave)
    assert out.shape == (8000,)
    if n == 8000:
        np.testing.assert_array_equal(out, wave)


# read_fsdd_folder on synthetic folders ----------------------------------------------------------

def test_read_folder_parses_names_in_sorted_order(tmp_path):
    names = ["3_bob_7.wav", "0_amy_1.wav", "9_amy_0.wav"]
    clips = fsdd.read_fsdd_folder(write_folder(tmp_path / "recordings", names), length=120,
                                   cache=False)
    # sorted: 0_amy_1 (value 2), 3_bob_7 (value 1), 9_amy_0 (value 3)
    assert clips.digits.tolist() == [0, 3, 9] and clips.takes.tolist() == [1, 7, 0]
    assert clips.speakers == ("amy", "bob", "amy")
    assert clips.waves.shape == (3, 120) and clips.waves.dtype == torch.int16
    assert clips.waves[:, 60].tolist() == [2, 1, 3]          # the middle of each padded clip
    assert clips.waves[:, :10].abs().sum() == 0              # 100 samples centred in 120: 10 zeros
    assert clips.source == str(tmp_path / "recordings")


def test_read_folder_accepts_the_parent_of_recordings(tmp_path):
    write_folder(tmp_path / "recordings", ["1_amy_0.wav"])
    assert fsdd.read_fsdd_folder(tmp_path, cache=False).source == str(tmp_path / "recordings")


def test_read_folder_malformed_name_is_an_error(tmp_path):
    folder = write_folder(tmp_path, ["1_amy_0.wav", "x_george_1.wav"])
    with pytest.raises(ValueError, match="malformed FSDD file name 'x_george_1.wav'"):
        fsdd.read_fsdd_folder(folder, cache=False)


def test_read_folder_wrong_sample_rate_names_the_file(tmp_path):
    write_wav(tmp_path / "2_amy_0.wav", np.zeros(100, np.int16), rate=44100)
    with pytest.raises(ValueError, match=r"2_amy_0\.wav: sample rate 44100 Hz"):
        fsdd.read_fsdd_folder(tmp_path, cache=False)


def test_read_folder_without_wavs_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no FSDD wav files"):
        fsdd.read_fsdd_folder(tmp_path, cache=False)


def test_cache_is_reused_and_rebuilt_when_the_folder_changes(tmp_path, monkeypatch):
    folder = write_folder(tmp_path / "rec", ["1_amy_0.wav", "2_bob_3.wav"])
    first = fsdd.read_fsdd_folder(folder, cache=True)
    cached = list(repro.cache_dir().glob("fsdd_waves_*.npz"))
    assert len(cached) == 1 and not cached[0].resolve().is_relative_to(repro.REPO_ROOT)
    real_read = fsdd.read_wav
    monkeypatch.setattr(fsdd, "read_wav", lambda path: pytest.fail("the cache was not used"))
    second = fsdd.read_fsdd_folder(folder, cache=True)
    torch.testing.assert_close(second.waves, first.waves, atol=0, rtol=0)
    assert second.speakers == first.speakers and second.digits.tolist() == first.digits.tolist()
    monkeypatch.setattr(fsdd, "read_wav", real_read)
    write_folder(folder, ["3_cid_4.wav"])                   # a new file: the cache is stale
    assert fsdd.read_fsdd_folder(folder, cache=True).digits.tolist() == [1, 2, 3]


def test_a_corrupt_cache_file_is_rebuilt(tmp_path):
    folder = write_folder(tmp_path / "rec", ["1_amy_0.wav"])
    first = fsdd.read_fsdd_folder(folder, cache=True)
    (cached,) = repro.cache_dir().glob("fsdd_waves_*.npz")
    cached.write_bytes(b"not an npz file")
    torch.testing.assert_close(fsdd.read_fsdd_folder(folder, cache=True).waves, first.waves, atol=0, rtol=0)
    assert cached.stat().st_size > 100                                  # written again


# find_fsdd: the location order, the error, the (faked) download ---------------------------------

def test_find_fsdd_order(monkeypatch, tmp_path):
    hide_other_locations(monkeypatch, tmp_path)
    env = write_folder(tmp_path / "env" / "recordings", ["1_amy_0.wav"])
    shared = write_folder(tmp_path / "shared" / "recordings", ["1_amy_0.wav"])
    repo = write_folder(tmp_path / "repo", ["1_amy_0.wav"])             # wavs directly inside
    cached = write_folder(repro.cache_dir() / "fsdd" / "recordings", ["1_amy_0.wav"])
    monkeypatch.setenv("PRUNING_FSDD_DIR", str(env.parent))
    monkeypatch.setattr(fsdd, "SHARED_FSDD_DIR", shared.parent)
    monkeypatch.setattr(fsdd, "REPO_FSDD_DIR", repo)
    assert fsdd.find_fsdd() == env                                     # 1. PRUNING_FSDD_DIR
    monkeypatch.setenv("PRUNING_FSDD_DIR", str(tmp_path / "missing"))
    assert fsdd.find_fsdd() == shared                                  # 2. ../shared/data/fsdd
    monkeypatch.setattr(fsdd, "SHARED_FSDD_DIR", tmp_path / "no-shared")
    assert fsdd.find_fsdd() == repo                                    # 3. data/fsdd
    monkeypatch.setattr(fsdd, "REPO_FSDD_DIR", tmp_path / "no-repo")
    assert fsdd.find_fsdd() == cached                                  # 4. an earlier download


def test_find_fsdd_missing_everywhere_names_the_paths_tried(monkeypatch, tmp_path):
    hide_other_locations(monkeypatch, tmp_path)
    monkeypatch.setenv("PRUNING_FSDD_DIR", str(tmp_path / "my-fsdd"))
    with pytest.raises(FileNotFoundError) as info:
        fsdd.find_fsdd()
    message = str(info.value)
    for path in (tmp_path / "my-fsdd", tmp_path / "no-shared", tmp_path / "no-repo",
                 repro.cache_dir() / "fsdd"):
        assert str(path) in message
    assert "PRUNING_FSDD_DIR" in message and fsdd.FSDD_COMMIT[:7] in message


@pytest.mark.parametrize(("env", "download"), [("", None), ("1", False), ("0", None)])
def test_find_fsdd_downloads_only_when_asked(monkeypatch, tmp_path, env, download):
    # no network probe: without download=True or PRUNING_DOWNLOAD=1 nothing is fetched, online or not
    hide_other_locations(monkeypatch, tmp_path)
    monkeypatch.setenv("PRUNING_DOWNLOAD", env)
    with pytest.raises(FileNotFoundError, match="PRUNING_DOWNLOAD=1"):
        fsdd.find_fsdd(download=download)


@pytest.mark.parametrize(("env", "download"), [("1", None), ("", True)],
                         ids=["PRUNING_DOWNLOAD", "download=True"])
def test_download_when_asked_extracts_and_verifies(monkeypatch, tmp_path, env, download):
    hide_other_locations(monkeypatch, tmp_path)
    monkeypatch.setenv("PRUNING_DOWNLOAD", env)
    names = ["0_amy_0.wav", "1_amy_0.wav", "2_bob_5.wav"]
    urls = []

    def fake_urlopen(url: str, timeout: float) -> io.BytesIO:
        urls.append(url)
        return io.BytesIO(fake_archive(names))

    monkeypatch.setattr(fsdd.urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setattr(fsdd, "FSDD_FILES", 3)
    found = fsdd.find_fsdd(download=download)
    assert urls == [fsdd.FSDD_URL] and fsdd.FSDD_COMMIT in urls[0]
    assert found == repro.cache_dir() / "fsdd" / "recordings"
    assert sorted(p.name for p in found.iterdir()) == names
    assert fsdd.find_fsdd(download=download) == found and len(urls) == 1   # no second download


def test_extract_rejects_a_malformed_name_and_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="malformed FSDD file name 'x_george_1.wav'"):
        fsdd.extract_recordings(fake_archive(["1_amy_0.wav", "x_george_1.wav"]), tmp_path, expected=2)
    assert list(tmp_path.iterdir()) == []


def test_extract_rejects_a_wrong_file_count(tmp_path):
    with pytest.raises(ValueError, match="holds 2 recordings, expected 3000"):
        fsdd.extract_recordings(fake_archive(["1_amy_0.wav", "2_amy_0.wav"]), tmp_path)


# The shared FSDD copy ---------------------------------------------------------------------------

def test_shared_copy_has_3000_clips_of_6_speakers(fsdd_clips):
    assert fsdd_clips.waves.shape == (3000, 8000) and fsdd_clips.waves.dtype == torch.int16
    speakers, counts = np.unique(fsdd_clips.speakers, return_counts=True)
    assert speakers.tolist() == ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    assert counts.tolist() == [500] * 6
    assert torch.bincount(fsdd_clips.digits).tolist() == [300] * 10
    assert fsdd_clips.takes.min() == 0 and fsdd_clips.takes.max() == 49


def test_official_split_sizes_and_balance(fsdd_clips):
    train_idx, test_idx = audio_data.split_indices(fsdd_clips, "official")
    assert len(train_idx) == 2700 and len(test_idx) == 300
    assert torch.bincount(fsdd_clips.digits[train_idx]).tolist() == [270] * 10
    assert torch.bincount(fsdd_clips.digits[test_idx]).tolist() == [30] * 10
    assert bool((fsdd_clips.takes[test_idx] < 5).all()) and bool((fsdd_clips.takes[train_idx] >= 5).all())


def test_speaker_split_holds_the_speaker_out(fsdd_clips):
    train_idx, test_idx = audio_data.split_indices(fsdd_clips, "speaker:theo")
    assert len(train_idx) == 2500 and len(test_idx) == 500
    assert "theo" not in {fsdd_clips.speakers[i] for i in train_idx.tolist()}
    assert {fsdd_clips.speakers[i] for i in test_idx.tolist()} == {"theo"}
    assert torch.bincount(fsdd_clips.digits[test_idx]).tolist() == [50] * 10


@pytest.mark.parametrize(("split", "match"), [("speaker:zoe", "no speaker 'zoe'; speakers: george"),
                                              ("random", "unknown split 'random'")])
def test_bad_splits_are_clear_errors(fsdd_clips, split, match):
    with pytest.raises(ValueError, match=match):
        audio_data.split_indices(fsdd_clips, split)


def test_audio_data_is_float_in_unit_range(fsdd_clips):
    data = audio_data.make_audio_data(fsdd_clips, "official")
    assert data.x_train.shape == (2700, 8000) and data.x_train.dtype == torch.float32
    assert float(data.x_test.abs().max()) <= 1.0 and data.y_test.dtype == torch.int64
    assert data.classes == tuple("0123456789") and data.split == "official"


def test_the_shared_copy_is_read_in_place_and_nothing_derived_is_written(fsdd_clips):
    before = set(repro.cache_dir().glob("*"))
    again = fsdd.read_fsdd_folder(shared_fsdd())                        # default: no cache outside cache_dir
    after = set(repro.cache_dir().glob("*"))
    assert after == before
    torch.testing.assert_close(again.waves, fsdd_clips.waves, atol=0, rtol=0)
    assert again.speakers == fsdd_clips.speakers


def test_a_downloaded_copy_inside_the_cache_is_cached_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNING_CACHE_DIR", str(tmp_path / "cache"))
    folder = write_folder(tmp_path / "cache" / "fsdd" / "recordings", ["1_amy_0.wav"])
    fsdd.read_fsdd_folder(folder)
    assert len(list((tmp_path / "cache").glob("fsdd_waves_*.npz"))) == 1


# Augmentation and loaders -----------------------------------------------------------------------

def test_random_shift_gain_without_gain_shifts_each_row():
    x = torch.arange(1.0, 21.0).reshape(2, 10)
    out = audio_data.random_shift_gain(x, torch.Generator().manual_seed(0), max_shift=3,
                                          max_gain_db=0.0)
    for row_in, row_out in zip(x, out, strict=True):
        shifts = [s for s in range(-3, 4)
                  if torch.equal(row_out, torch.roll(row_in, s) * _kept(s, 10))]
        assert len(shifts) == 1


def _kept(shift: int, n: int) -> torch.Tensor:
    """Mask of the samples that a shift by ``shift`` keeps (the rest is zero-filled)."""
    idx = torch.arange(n) - shift
    return ((idx >= 0) & (idx < n)).float()


def test_random_shift_gain_gain_bounds_and_determinism():
    x = torch.ones(64, 5)
    out = audio_data.random_shift_gain(x, torch.Generator().manual_seed(1), max_shift=0)
    assert out.shape == (64, 5)
    assert float(out.min()) >= 10 ** (-3 / 20) - 1e-6 and float(out.max()) <= 10 ** (3 / 20) + 1e-6
    again = audio_data.random_shift_gain(x, torch.Generator().manual_seed(1), max_shift=0)
    torch.testing.assert_close(out, again, atol=0, rtol=0)


def test_loaders_batches_sizes_and_seeded_augmentation(fsdd_clips):
    data = audio_data.make_audio_data(fsdd_clips, "official")
    loaders = audio_data.make_audio_loaders(data, batch_size=32, fast=True, augment=True, seed=3)
    assert len(loaders.train.dataset) == 1000 and len(loaders.test.dataset) == 300
    assert torch.bincount(loaders.eval.dataset.tensors[1]).tolist() == [10] * 10
    x, y = next(iter(loaders.train))
    assert x.shape == (32, 8000) and x.dtype == torch.float32 and y.dtype == torch.int64
    twin = audio_data.make_audio_loaders(data, batch_size=32, fast=True, augment=True, seed=3)
    torch.testing.assert_close(next(iter(twin.train))[0], x, atol=0, rtol=0)
    plain = audio_data.make_audio_loaders(data, batch_size=32, fast=True, seed=3)
    x_plain, y_plain = next(iter(plain.train))
    assert torch.equal(y_plain, y) and not torch.equal(x_plain, x)     # same order, augmented


def test_loaders_train_per_digit_takes_a_balanced_seeded_subset(fsdd_clips):
    data = audio_data.make_audio_data(fsdd_clips, "official")
    small = audio_data.make_audio_loaders(data, train_per_digit=7, seed=2)
    labels = small.train.dataset.tensors[1]
    assert torch.bincount(labels).tolist() == [7] * 10 and len(small.test.dataset) == len(data.y_test)
    whole = data.x_train.reshape(len(data.y_train), -1)
    picked = small.train.dataset.tensors[0].reshape(len(labels), -1)
    assert all(bool((whole == row).all(dim=1).any()) for row in picked)        # training clips only
    again = audio_data.make_audio_loaders(data, train_per_digit=7, seed=2, fast=True)   # explicit beats fast
    torch.testing.assert_close(again.train.dataset.tensors[0], small.train.dataset.tensors[0], atol=0, rtol=0)
    assert len(audio_data.make_audio_loaders(data).train.dataset) == len(data.y_train)
    with pytest.raises(ValueError, match="train_per_digit must be a positive number of clips per digit"):
        audio_data.make_audio_loaders(data, train_per_digit=0)
    few = audio_data.make_audio_loaders(data, test_per_digit=3, seed=2)
    x_test, y_test = few.test.dataset.tensors
    assert torch.bincount(y_test).tolist() == [3] * 10 and few.data is data
    assert len(few.train.dataset) == len(data.y_train)
    every = audio_data.make_audio_loaders(data, seed=2)
    torch.testing.assert_close(few.eval.dataset.tensors[0], every.eval.dataset.tensors[0], atol=0, rtol=0)
    assert all(bool((data.x_test == row).all(dim=1).any()) for row in x_test)           # test clips only
    with pytest.raises(ValueError, match="test_per_digit must be"):
        audio_data.make_audio_loaders(data, test_per_digit=-1)


def test_load_fsdd_reads_the_folder_in_pruning_fsdd_dir(monkeypatch, tmp_path):
    hide_other_locations(monkeypatch, tmp_path)
    names = [f"{d}_amy_{t}.wav" for d in range(10) for t in (0, 5, 6)]
    monkeypatch.setenv("PRUNING_FSDD_DIR", str(write_folder(tmp_path / "fsdd" / "recordings", names).parent))
    data = audio_data.load_fsdd("official")
    assert data.x_train.shape == (20, 8000) and data.x_test.shape == (10, 8000)
    assert data.source == str(tmp_path / "fsdd" / "recordings")


# --- shipped audio checkpoints ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", models.AUDIO_PRETRAINED)
def test_shipped_audio_checkpoint_matches_its_card(fsdd_clips, name, predictions):
    """Each card's test accuracy is what the shipped weights score on the card's split, clip for clip
    (except clips whose top two logits nearly tie, where the CPU's kernels may decide)."""
    card = models.model_card(name)
    net = models.load_pretrained(name)
    split = audio_data.make_audio_data(fsdd_clips, card["test_split"])
    got = predictions(net, audio_data.make_audio_loaders(split).test)
    expected = card["test_accuracy_full"]
    assert got["n"] == expected["n"] == (300 if card["test_split"] == "official" else 500)
    assert abs(got["correct"] - expected["correct"]) <= got["near_ties"]
    assert got["correct"] / got["n"] >= (0.96 if card["test_split"] == "official" else 0.9)


def test_missing_speaker_card_says_how_to_train_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PRUNING_CHECKPOINT_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError,
                       match="python -m pruning_lib.audio.train --model dcase21_net --split speaker:theo"):
        models.model_card("dcase21_net_speaker-theo")
