"""Tests for pruning_lib/data.py.

Only data the tests write themselves and the vendored subset ``data/fashion_mnist_subset.npz`` are
read: never /usr/share/datasets, never a download (``_is_online`` is patched where "auto" could
reach it).
"""

from __future__ import annotations

import gzip
import pickle
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


def write_cifar_folder(root: Path, n_per_batch: int = 2, n_test: int = 3, *,
                       skip: str | None = None, width: int = 3072) -> Path:
    """A fake ``cifar-10-batches-py`` folder; returns the batches' data keyed by file name."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        if name == skip:
            continue
        n = n_test if name == "test_batch" else n_per_batch
        batch = {b"data": rng.integers(0, 256, (n, width), dtype=np.uint8),
                 b"labels": [(i + j) % 10 for j in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return folder


def read_pickle(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f)


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


def test_load_fashion_mnist_auto_order(monkeypatch, tmp_path):
    env_dir = write_fashion_folder(tmp_path / "env", tiny_fashion())
    debian_dir = write_fashion_folder(tmp_path / "debian", tiny_fashion(n_train=30))
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", debian_dir)
    monkeypatch.setattr(data, "_is_online", lambda *args, **kwargs: False)
    monkeypatch.setenv("PRUNING_DATA_DIR", str(env_dir))
    assert data.load_fashion_mnist().source == str(env_dir)           # 1. env first
    monkeypatch.setenv("PRUNING_DATA_DIR", str(tmp_path / "empty"))
    assert data.load_fashion_mnist().source == str(debian_dir)        # 2. then Debian
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "absent")
    assert data.load_fashion_mnist().source.startswith("vendored subset")   # 4. offline: subset


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


# CIFAR-10 ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("inside", [False, True])
def test_read_cifar10_shapes_and_channel_major_layout(tmp_path, inside):
    folder = write_cifar_folder(tmp_path)
    got = data.read_cifar10(folder if inside else tmp_path)
    assert got.x_train.shape == (10, 3, 32, 32) and got.x_test.shape == (3, 3, 32, 32)
    assert got.x_train.dtype == torch.uint8 and got.y_train.dtype == torch.int64
    raw = read_pickle(folder / "data_batch_1")[b"data"]
    for c in range(3):                       # the 3072 bytes are 1024 red, 1024 green, 1024 blue
        assert int(got.x_train[0, c, 0, 0]) == int(raw[0, c * 1024])
        assert int(got.x_train[1, c, 2, 5]) == int(raw[1, c * 1024 + 2 * 32 + 5])
    last = read_pickle(folder / "data_batch_5")
    np.testing.assert_array_equal(got.x_train[8:].reshape(2, -1).numpy(), last[b"data"])
    np.testing.assert_array_equal(got.y_train[8:].numpy(), last[b"labels"])
    assert got.source == str(folder)
    assert got.classes == data.CIFAR10_CLASSES and got.std == data.CIFAR_STD


def test_read_cifar10_missing_batch(tmp_path):
    write_cifar_folder(tmp_path, skip="data_batch_3")
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        data.read_cifar10(tmp_path)


def test_read_cifar10_bad_data_shape(tmp_path):
    write_cifar_folder(tmp_path, width=3000)
    with pytest.raises(ValueError, match=r"expected data \(N, 3072\)"):
        data.read_cifar10(tmp_path)


def test_load_cifar10_without_root_raises(monkeypatch):
    monkeypatch.delenv("PRUNING_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="PRUNING_DATA_DIR"):
        data.load_cifar10()


def test_load_dataset_dispatches_to_cifar10(tmp_path):
    write_cifar_folder(tmp_path)
    assert data.load_dataset("cifar10", root=tmp_path).x_test.shape == (3, 3, 32, 32)


def test_load_dataset_unknown_name_lists_names():
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'.*fashion_mnist.*cifar10"):
        data.load_dataset("mnist")


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


def test_synthetic_loader_shapes_and_determinism():
    a = data.synthetic_loader(10, (3, 8, 8), batch_size=4, seed=1)
    b = data.synthetic_loader(10, (3, 8, 8), batch_size=4, seed=1)
    xa, ya = next(iter(a))
    assert xa.shape == (4, 3, 8, 8) and ya.shape == (4,)
    torch.testing.assert_close(xa, next(iter(b))[0])
    assert sum(len(y) for _, y in a) == 10
