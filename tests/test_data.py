"""Tests for pruning_lib/data.py.

Only data the tests write themselves and the vendored subset ``data/fashion_mnist_subset.npz`` are
read: never /usr/share/datasets (``DEBIAN_FASHION_DIR`` is pointed elsewhere where "auto" could reach
it), never a download (the torchvision download is faked), never apt-get (faked).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pruning_lib import data

IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


# Helpers: tiny files in the official formats ----------------------------------------------------

def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` as an unsigned-byte idx file (gzipped when the name ends in .gz)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())
    return path


def tiny_fashion(n_train: int = 20, n_test: int = 10, size: int = 28) -> dict[str, np.ndarray]:
    """Seeded images with labels 0..9 repeating."""
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "y_test": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }


def write_fashion_folder(folder: Path, arrays: dict[str, np.ndarray], *, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in IDX_NAMES.items():
        write_idx(folder / (stem + (".gz" if gz else "")), arrays[key])
    return folder


# read_idx ---------------------------------------------------------------------------------------

def test_read_idx_hand_written_label_file(tmp_path):
    # magic 0x00000801 (unsigned byte, 1 dim), size 3, then the bytes 7, 0, 255
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08\x01" + b"\x00\x00\x00\x03" + b"\x07\x00\xff")
    out = data.read_idx(path)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.array([7, 0, 255], dtype=np.uint8))


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_read_idx_round_trip_plain_and_gzipped(tmp_path, name):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)   # image 1, row 2 = 20, 21, 22, 23
    out = data.read_idx(write_idx(tmp_path / name, array))
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out[1, 2], [20, 21, 22, 23])
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("magic", [b"\x00\x00\x0d\x01", b"\x01\x00\x08\x01", b"\x00\x00"])
def test_read_idx_rejects_bad_magic(tmp_path, magic):
    path = tmp_path / "bad-idx"
    path.write_bytes(magic + b"\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="not an unsigned-byte idx file"):
        data.read_idx(path)


@pytest.mark.parametrize("payload", [b"\x01\x02", b"\x01\x02\x03\x04"])
def test_read_idx_rejects_size_disagreeing_with_header(tmp_path, payload):
    path = tmp_path / "truncated-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x03" + payload)   # header says 3 bytes
    with pytest.raises(ValueError, match=r"header says shape \[3\]"):
        data.read_idx(path)


def test_read_idx_rejects_truncated_gzip_header(tmp_path):
    path = tmp_path / "short-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\x00\x00\x08\x03\x00\x00\x00\x02")   # 3 dims announced, 1 given, no pixels
    with pytest.raises(ValueError, match="header says"):
        data.read_idx(path)


# load_fashion_mnist -----------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_load_fashion_mnist_env_reads_idx_folder(monkeypatch, tmp_path, gz):
    arrays = tiny_fashion()
    folder = write_fashion_folder(tmp_path / "fmnist", arrays, gz=gz)
    monkeypatch.setenv("PRUNING_DATA_DIR", str(folder))
    got = data.load_fashion_mnist(source="env")
    assert got.x_train.shape == (20, 1, 28, 28) and got.x_test.shape == (10, 1, 28, 28)
    assert got.x_train.dtype == torch.uint8 and got.y_train.dtype == torch.int64
    np.testing.assert_array_equal(got.x_train[:, 0].numpy(), arrays["x_train"])
    np.testing.assert_array_equal(got.y_train.numpy(), arrays["y_train"])
    np.testing.assert_array_equal(got.y_test.numpy(), arrays["y_test"])
    assert got.source == str(folder)
    assert got.classes == data.FASHION_CLASSES and got.mean == (data.FASHION_MEAN,)


def test_load_fashion_mnist_env_reads_torchvision_layout(monkeypatch, tmp_path):
    write_fashion_folder(tmp_path / "FashionMNIST" / "raw", tiny_fashion(), gz=False)
    monkeypatch.setenv("PRUNING_DATA_DIR", str(tmp_path))
    got = data.load_fashion_mnist(source="env")
    assert got.x_train.shape == (20, 1, 28, 28)
    assert got.source == str(tmp_path)


def test_load_fashion_mnist_env_empty_folder_raises(monkeypatch, tmp_path):
    monkeypatch.setenv("PRUNING_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="PRUNING_DATA_DIR"):
        data.load_fashion_mnist(source="env")


def test_load_fashion_mnist_env_unset_raises(monkeypatch):
    # "env" was requested, so falling back to another source would hide the missing variable.
    monkeypatch.delenv("PRUNING_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="PRUNING_DATA_DIR"):
        data.load_fashion_mnist(source="env")


def test_load_fashion_mnist_debian_reads_its_folder(monkeypatch, tmp_path):
    folder = write_fashion_folder(tmp_path / "debian", tiny_fashion())
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", folder)
    assert data.load_fashion_mnist(source="debian").source == str(folder)


def test_load_fashion_mnist_debian_missing_raises(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        data.load_fashion_mnist(source="debian")


def fake_download(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Replace the torchvision download by writing tiny idx files; returns the roots it was asked for."""
    calls: list[Path] = []

    def download(root: Path) -> data.ImageData:
        calls.append(root)
        write_fashion_folder(root / "FashionMNIST" / "raw", tiny_fashion(n_train=40), gz=False)
        return data._fashion_from_folder(root)

    monkeypatch.setattr(data, "_fashion_from_torchvision", download)
    return calls


def test_load_fashion_mnist_auto_order(monkeypatch, tmp_path):
    env_dir = write_fashion_folder(tmp_path / "env", tiny_fashion())
    debian_dir = write_fashion_folder(tmp_path / "debian", tiny_fashion(n_train=30))
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", debian_dir)
    calls = fake_download(monkeypatch)
    monkeypatch.setenv("PRUNING_DATA_DIR", str(env_dir))
    assert data.fashion_source() == "env"
    assert data.load_fashion_mnist().source == str(env_dir)           # 1. env first
    monkeypatch.setenv("PRUNING_DATA_DIR", str(tmp_path / "empty"))
    assert data.load_fashion_mnist().source == str(debian_dir)        # 2. then Debian
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "absent")
    assert data.fashion_source() == "subset"                          # 5. nothing asked: subset
    assert data.load_fashion_mnist().source.startswith("vendored subset")
    assert calls == []
    monkeypatch.setenv("PRUNING_DOWNLOAD", "1")                       # 4. asked: download
    assert data.fashion_source() == "torchvision"
    assert len(data.load_fashion_mnist().y_train) == 40 and len(calls) == 1
    monkeypatch.delenv("PRUNING_DOWNLOAD")                            # 3. the earlier download, offline
    assert data.fashion_source() == "cache"
    got = data.load_fashion_mnist()
    assert len(got.y_train) == 40 and got.source == str(data._torchvision_root()) and len(calls) == 1


@pytest.mark.parametrize("value", ["", "0", "no"])
def test_load_fashion_mnist_never_downloads_unless_asked(monkeypatch, tmp_path, value):
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "absent")
    monkeypatch.setenv("PRUNING_DOWNLOAD", value)
    calls = fake_download(monkeypatch)
    assert data.load_fashion_mnist().source.startswith("vendored subset") and calls == []
    assert data.load_fashion_mnist(source="torchvision").source == str(data._torchvision_root())
    assert calls == [data._torchvision_root()]                        # explicit source= downloads


def test_load_fashion_mnist_cache_missing_says_how_to_download():
    with pytest.raises(FileNotFoundError, match="PRUNING_DOWNLOAD=1"):
        data.load_fashion_mnist(source="cache")


def test_load_fashion_mnist_subset_source():
    assert data.load_fashion_mnist(source="subset").source.startswith("vendored subset")


def test_load_fashion_mnist_unknown_source():
    with pytest.raises(ValueError, match="unknown source 'kaggle'"):
        data.load_fashion_mnist(source="kaggle")


def test_load_fashion_mnist_rejects_wrong_image_shape(monkeypatch, tmp_path):
    folder = write_fashion_folder(tmp_path, tiny_fashion(size=27))
    monkeypatch.setenv("PRUNING_DATA_DIR", str(folder))
    with pytest.raises(ValueError, match=r"\(N, 28, 28\), got \(20, 27, 27\)"):
        data.load_fashion_mnist(source="env")


def test_load_fashion_mnist_rejects_label_count_mismatch(monkeypatch, tmp_path):
    arrays = tiny_fashion()
    arrays["y_train"] = arrays["y_train"][:19]
    monkeypatch.setenv("PRUNING_DATA_DIR", str(write_fashion_folder(tmp_path, arrays)))
    with pytest.raises(ValueError, match="20 images but 19 labels"):
        data.load_fashion_mnist(source="env")


# which source, and make data ------------------------------------------------------------------

def test_which_line_names_the_subset_and_how_to_get_the_full_dataset(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "absent")
    line = data.which_line()
    assert "\n" not in line
    for part in ("vendored subset data/fashion_mnist_subset.npz", "10,000 train / 2,000 test",
                 "make data", "PRUNING_DOWNLOAD=1", "dataset-fashion-mnist"):
        assert part in line, (part, line)


def test_which_line_counts_a_folder_from_its_headers(monkeypatch, tmp_path):
    folder = write_fashion_folder(tmp_path / "debian", tiny_fashion(n_train=30, n_test=12))
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", folder)
    line = data.which_line()
    assert f"Debian package dataset-fashion-mnist ({folder})" in line
    assert "30 train / 12 test images" in line and "make data" not in line
    monkeypatch.setenv("PRUNING_DATA_DIR", str(folder))
    assert data.which_line().startswith(f"Fashion-MNIST for the lessons: PRUNING_DATA_DIR={folder} ")


def test_which_line_with_downloads_requested_reads_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "absent")
    monkeypatch.setenv("PRUNING_DOWNLOAD", "1")
    calls = fake_download(monkeypatch)
    assert "torchvision download" in data.which_line() and calls == []


def fake_machine(monkeypatch, tmp_path, *, root: bool, apt_works: bool) -> list[str]:
    """No Debian copy; ``_is_root`` and ``_apt_install`` faked (apt 'installs' tiny idx files)."""
    debian = tmp_path / "debian"
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", debian)
    monkeypatch.setattr(data, "_is_root", lambda: root)
    installs: list[str] = []

    def apt_install(package: str) -> bool:
        installs.append(package)
        if apt_works:
            write_fashion_folder(debian, tiny_fashion())
        return apt_works

    monkeypatch.setattr(data, "_apt_install", apt_install)
    return installs


def test_get_full_as_root_installs_the_debian_package(monkeypatch, tmp_path, capsys):
    installs = fake_machine(monkeypatch, tmp_path, root=True, apt_works=True)
    calls = fake_download(monkeypatch)
    assert data.get_full() == 0
    assert installs == ["dataset-fashion-mnist"] and calls == []
    assert data.fashion_source() == "debian" and "installed" in capsys.readouterr().out


@pytest.mark.parametrize("root", [True, False])
def test_get_full_downloads_only_when_asked(monkeypatch, tmp_path, capsys, root):
    installs = fake_machine(monkeypatch, tmp_path, root=root, apt_works=False)
    calls = fake_download(monkeypatch)
    assert data.get_full() == 1 and calls == []                         # not asked: a message, exit 1
    err = capsys.readouterr().err
    assert "PRUNING_DOWNLOAD=1 make data" in err and "vendored subset" in err
    assert ("could not install" in err) is root and len(installs) == int(root)
    monkeypatch.setenv("PRUNING_DOWNLOAD", "1")
    assert data.get_full() == 0 and calls == [data._torchvision_root()]
    assert data.fashion_source() == "cache"


def test_get_full_with_a_full_copy_does_nothing(monkeypatch, tmp_path, capsys):
    installs = fake_machine(monkeypatch, tmp_path, root=True, apt_works=True)
    monkeypatch.setenv("PRUNING_DATA_DIR", str(write_fashion_folder(tmp_path / "env", tiny_fashion())))
    assert data.get_full() == 0 and installs == []
    assert "nothing to do" in capsys.readouterr().out


def test_cli_which_prints_one_line_and_needs_an_action(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "absent")
    assert data.main(["--which"]) == 0
    assert capsys.readouterr().out == data.which_line() + "\n"
    with pytest.raises(SystemExit):
        data.main([])


# load_fashion_subset ----------------------------------------------------------------------------

def test_load_fashion_subset_sizes_and_balance(fashion_subset):
    s = fashion_subset
    assert s.x_train.shape == (10_000, 1, 28, 28) and s.x_test.shape == (2_000, 1, 28, 28)
    assert s.x_train.dtype == torch.uint8 and s.x_test.dtype == torch.uint8
    assert s.y_train.dtype == torch.int64 and s.y_test.dtype == torch.int64
    assert torch.bincount(s.y_train, minlength=10).tolist() == [1000] * 10
    assert torch.bincount(s.y_test, minlength=10).tolist() == [200] * 10
    assert s.source == "vendored subset fashion_mnist_subset.npz"
    assert int(s.x_train.max()) > 200   # real images, not an all-zero placeholder


def test_load_fashion_subset_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="vendored subset not found"):
        data.load_fashion_subset(tmp_path / "absent.npz")


def test_load_fashion_subset_missing_arrays(tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, x_train=np.zeros((1, 28, 28), np.uint8), y_train=np.zeros(1, np.uint8))
    with pytest.raises(ValueError, match=r"lacks arrays \['x_test', 'y_test'\]"):
        data.load_fashion_subset(path)


# normalize --------------------------------------------------------------------------------------

def test_normalize_hand_computed():
    # 51/255 = 0.2, 102/255 = 0.4, 255/255 = 1.0 → ((0.2-0.2)/0.1, (0.4-0.4)/0.2, (1-0.5)/0.5)
    x = torch.tensor([51, 102, 255], dtype=torch.uint8).view(1, 3, 1, 1)
    out = data.normalize(x, (0.2, 0.4, 0.5), (0.1, 0.2, 0.5))
    assert out.dtype == torch.float32 and out.shape == (1, 3, 1, 1)
    torch.testing.assert_close(out.flatten(), torch.tensor([0.0, 0.0, 1.0]))


def test_normalize_single_channel_broadcasts():
    x = torch.tensor([[0, 255], [255, 0]], dtype=torch.uint8).view(1, 1, 2, 2)
    out = data.normalize(x, (0.5,), (0.25,))
    torch.testing.assert_close(out, torch.tensor([[-2.0, 2.0], [2.0, -2.0]]).view(1, 1, 2, 2))


@pytest.mark.parametrize("x", [torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.uint8)],
                         ids=["float", "3-d"])
def test_normalize_rejects_bad_input(x):
    with pytest.raises(ValueError, match="expected uint8 images"):
        data.normalize(x, (0.5,), (0.5,))


# balanced_indices -------------------------------------------------------------------------------

LABELS = torch.tensor([0, 1, 0, 1, 2, 2, 0, 1, 2, 0])   # class 0: 4, class 1: 3, class 2: 3


def test_balanced_indices_sorted_unique_and_balanced():
    idx = data.balanced_indices(LABELS, 2, seed=0)
    assert idx.dtype == torch.int64 and idx.shape == (6,)
    assert torch.equal(idx, torch.sort(idx).values)
    assert len(torch.unique(idx)) == 6
    assert torch.bincount(LABELS[idx]).tolist() == [2, 2, 2]


def test_balanced_indices_takes_whole_classes_when_asked():
    idx = data.balanced_indices(LABELS, 3, seed=5)
    members = {c: set(torch.nonzero(LABELS == c).flatten().tolist()) for c in (1, 2)}
    assert members[1] | members[2] <= set(idx.tolist())


def test_balanced_indices_deterministic_per_seed():
    assert torch.equal(data.balanced_indices(LABELS, 2, seed=3), data.balanced_indices(LABELS, 2, seed=3))
    picks = {tuple(data.balanced_indices(LABELS, 2, seed=s).tolist()) for s in range(10)}
    assert len(picks) > 1   # the seed matters


@pytest.mark.parametrize("per_class", [-1, -3])
def test_balanced_indices_rejects_negative_counts(per_class):
    with pytest.raises(ValueError, match="per_class"):
        data.balanced_indices(LABELS, per_class)


def test_balanced_indices_too_many_requested():
    with pytest.raises(ValueError, match="class 1 has 3 examples, 4 requested"):
        data.balanced_indices(LABELS, 4)


# make_loaders -----------------------------------------------------------------------------------

def test_make_loaders_fast_sizes_and_balanced_eval(fashion_subset):
    loaders = data.make_loaders(fashion_subset, fast=True)
    assert len(loaders.train.dataset) == 2000
    assert len(loaders.test.dataset) == 1000
    assert len(loaders.eval.dataset) == 500
    eval_labels = loaders.eval.dataset.tensors[1]
    assert torch.bincount(eval_labels, minlength=10).tolist() == [50] * 10
    assert torch.bincount(loaders.train.dataset.tensors[1], minlength=10).tolist() == [200] * 10
    assert loaders.data is fashion_subset


def test_make_loaders_full_sizes_and_batches(fashion_subset):
    loaders = data.make_loaders(fashion_subset, batch_size=64)
    assert len(loaders.train.dataset) == 10_000 and len(loaders.test.dataset) == 2_000
    assert torch.bincount(loaders.eval.dataset.tensors[1], minlength=10).tolist() == [100] * 10
    x, y = next(iter(loaders.train))
    assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    # the test split is kept in order and normalised with the dataset's statistics
    x_test, y_test = next(iter(loaders.test))
    expected = data.normalize(fashion_subset.x_test[:256], fashion_subset.mean, fashion_subset.std)
    torch.testing.assert_close(x_test, expected)
    assert torch.equal(y_test, fashion_subset.y_test[:256])


def test_make_loaders_train_order_is_seeded(fashion_subset):
    def first_labels(seed: int) -> torch.Tensor:
        return next(iter(data.make_loaders(fashion_subset, fast=True, seed=seed).train))[1]

    assert torch.equal(first_labels(0), first_labels(0))
    assert not torch.equal(first_labels(0), first_labels(1))


# random_shift_flip ------------------------------------------------------------------------------

def test_random_shift_flip_shape_and_dtype():
    x = torch.rand(4, 3, 9, 7, generator=torch.Generator().manual_seed(0))
    out = data.random_shift_flip(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype


def test_random_shift_flip_deterministic_for_seeded_generator():
    x = torch.rand(8, 1, 10, 10, generator=torch.Generator().manual_seed(0))
    a = data.random_shift_flip(x, torch.Generator().manual_seed(1))
    b = data.random_shift_flip(x, torch.Generator().manual_seed(1))
    c = data.random_shift_flip(x, torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)


def test_random_shift_flip_without_padding_only_mirrors():
    x = torch.rand(64, 2, 5, 6, generator=torch.Generator().manual_seed(0))
    out = data.random_shift_flip(x, torch.Generator().manual_seed(0), pad=0)
    same = torch.tensor([torch.equal(o, i) for o, i in zip(out, x, strict=True)])
    mirrored = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x, strict=True)])
    assert bool((same | mirrored).all())
    assert bool(same.any()) and bool(mirrored.any())   # both happen in 64 draws with this seed


def _is_crop_of(image: torch.Tensor, padded: torch.Tensor) -> bool:
    """True when ``image`` (C, H, W) equals some (H, W) window of ``padded`` (C, H+2p, W+2p)."""
    h, w = image.shape[-2:]
    return any(torch.equal(image, padded[:, i:i + h, j:j + w])
               for i in range(padded.shape[-2] - h + 1) for j in range(padded.shape[-1] - w + 1))


def test_random_shift_flip_reaches_every_offset():
    pad, h, w = 2, 5, 6
    x = (torch.arange(h * w, dtype=torch.float32) + 1).view(1, 1, h, w).repeat(200, 1, 1, 1)
    out = data.random_shift_flip(x, torch.Generator().manual_seed(0), pad=pad)
    padded = torch.nn.functional.pad(x[0], (pad,) * 4, value=1.0)
    offsets = set()
    for image in out:
        unflipped = image if _is_crop_of(image, padded) else image.flip(-1)
        hits = [(i, j) for i in range(2 * pad + 1) for j in range(2 * pad + 1)
                if torch.equal(unflipped, padded[:, i:i + h, j:j + w])]
        assert len(hits) == 1
        offsets.add(hits[0])
    assert len(offsets) == (2 * pad + 1) ** 2   # vertical and horizontal shifts vary independently


@given(b=st.integers(1, 4), c=st.integers(1, 2), h=st.integers(1, 6), w=st.integers(1, 6),
       seed=st.integers(0, 2**16))
def test_random_shift_flip_is_a_crop_of_the_padded_image(b, c, h, w, seed):
    pad = 2
    x = torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed))
    out = data.random_shift_flip(x, torch.Generator().manual_seed(seed + 1), pad=pad)
    fill = x.amin(dim=(0, 2, 3))                      # each channel's batch minimum
    padded = torch.stack([torch.nn.functional.pad(x[:, k], (pad,) * 4, value=float(fill[k]))
                          for k in range(c)], dim=1)
    for i in range(b):   # shifted, then possibly mirrored
        assert _is_crop_of(out[i], padded[i]) or _is_crop_of(out[i].flip(-1), padded[i])


def test_subset_loader_is_class_balanced_and_rejects_unknown_splits(fashion_subset):
    loader = data.subset_loader(fashion_subset, "test", 7, seed=3)
    y = loader.dataset.tensors[1]
    assert len(y) == 70 and torch.bincount(y).tolist() == [7] * 10
    assert loader.dataset.tensors[0].dtype == torch.float32
    with pytest.raises(ValueError, match="split"):
        data.subset_loader(fashion_subset, "val", 7)


def test_subset_loader_uses_what_exists_and_says_so_in_one_line(fashion_subset, capsys):
    loader = data.subset_loader(fashion_subset, "test", 500, seed=0)    # the subset has 200 per class
    y = loader.dataset.tensors[1]
    assert torch.bincount(y, minlength=10).tolist() == [200] * 10
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    line = lines[0]
    for part in ("vendored subset fashion_mnist_subset.npz", "200 test images per class", "500 wanted",
                 "2,000 images", "not 5,000", "make data"):
        assert part in line, (part, line)
    # the same images as asking for exactly what exists
    exact = data.subset_loader(fashion_subset, "test", 200, seed=0)
    assert torch.equal(exact.dataset.tensors[1], y)
    assert capsys.readouterr().out == ""                                  # enough images: silent


def test_subset_loader_smallest_class_sets_the_count(monkeypatch, tmp_path, capsys):
    arrays = tiny_fashion(n_train=23)               # labels 0..9 repeating: classes 0-2 have 3, others 2
    monkeypatch.setenv("PRUNING_DATA_DIR", str(write_fashion_folder(tmp_path, arrays)))
    small = data.load_fashion_mnist(source="env")
    loader = data.subset_loader(small, "train", 5)
    assert torch.bincount(loader.dataset.tensors[1]).tolist() == [2] * 10
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "2 train images per class, 5 wanted" in out and "make data" not in out
    with pytest.raises(ValueError, match="per_class"):
        data.subset_loader(small, "train", -1)


def test_make_loaders_fast_on_a_small_source_uses_what_exists(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PRUNING_DATA_DIR", str(write_fashion_folder(tmp_path, tiny_fashion(40, 30))))
    loaders = data.make_loaders(data.load_fashion_mnist(source="env"), fast=True)
    assert len(loaders.train.dataset) == 40 and len(loaders.test.dataset) == 30   # 4 / 3 per class
    assert len(loaders.eval.dataset) == 30
    assert len(capsys.readouterr().out.splitlines()) == 3                # train, test, eval


def parameters_cell(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    (cell,) = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    return "".join(cell["source"])


NOTEBOOKS = sorted((Path(data.__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_lesson_default_mode_per_class_counts_load_from_the_subset(notebook, fashion_subset, capsys):
    """The default-mode (not FAST) per-class counts of each lesson's parameters cell, run through
    ``subset_loader`` on the vendored subset: each loads (fewer images than wanted, with one line)."""
    namespace: dict = {}
    exec(parameters_cell(notebook), namespace)   # noqa: S102 (our own notebook's parameters cell)
    assert namespace.get("FAST") is False        # conftest hides PRUNING_FAST: default mode
    counts = {k: v for k, v in namespace.items() if k.startswith("N_") and k.endswith("_PER_CLASS")}
    for name, per_class in counts.items():
        split = "test" if "TEST" in name else "train"
        loader = data.subset_loader(fashion_subset, split, per_class)
        have = 200 if split == "test" else 1000
        assert len(loader.dataset) == 10 * min(per_class, have), name
        assert len(capsys.readouterr().out.splitlines()) == (1 if per_class > have else 0), name


def test_synthetic_loader_shapes_and_determinism():
    a = data.synthetic_loader(10, (3, 8, 8), batch_size=4, seed=1)
    b = data.synthetic_loader(10, (3, 8, 8), batch_size=4, seed=1)
    xa, ya = next(iter(a))
    assert xa.shape == (4, 3, 8, 8) and ya.shape == (4,)
    torch.testing.assert_close(xa, next(iter(b))[0])
    assert sum(len(y) for _, y in a) == 10
