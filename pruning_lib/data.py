"""Image data: Fashion-MNIST (default, offline-first) and CIFAR-10 (optional).

Fashion-MNIST is looked for, in this order:

1. the folder in ``PRUNING_DATA_DIR`` (idx files, gzipped or not, directly inside it or in
   ``FashionMNIST/raw/``);
2. the Debian package location ``/usr/share/datasets/fashion-mnist/``
   (``apt-get install dataset-fashion-mnist``);
3. torchvision's download, only when the machine can reach the internet;
4. the vendored class-balanced subset ``data/fashion_mnist_subset.npz`` (10,000 train / 2,000 test
   images, made by ``scripts/make_fashion_subset.py``; MIT licence, © Zalando SE).

Every loader says which source it used (``ImageData.source``).

Introduced in: notebooks/00_tour.ipynb (§The data).
"""

from __future__ import annotations

import gzip
import pickle
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from pruning_lib import repro

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
SUBSET_PATH = repro.DATA_DIR / "fashion_mnist_subset.npz"
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530   # pixel mean / std of the 60k training images
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
DATASETS = ("fashion_mnist", "cifar10")


@dataclass(frozen=True)
class ImageData:
    """A labelled image dataset held in memory as uint8 images.

    Attributes:
        x_train: (N, C, H, W) uint8 images.
        y_train: (N,) int64 labels.
        x_test: (M, C, H, W) uint8 images.
        y_test: (M,) int64 labels.
        source: Where the data came from (a path or "torchvision download").
        classes: Class names, index = label.
        mean: Per-channel mean used for normalisation.
        std: Per-channel standard deviation used for normalisation.
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    source: str
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __repr__(self) -> str:
        return (f"ImageData(train={tuple(self.x_train.shape)}, test={tuple(self.x_test.shape)}, "
                f"classes={len(self.classes)}, source={self.source!r})")


@dataclass(frozen=True)
class Loaders:
    """Data loaders for one dataset.

    Attributes:
        train: Shuffled training batches (a seeded generator drives the order).
        test: The whole test split, in order.
        eval: A small, class-balanced, fixed slice of the test split for interactive widgets.
        data: The ``ImageData`` the loaders read from.
    """

    train: DataLoader
    test: DataLoader
    eval: DataLoader
    data: ImageData


def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file (gzipped or plain), the format of the MNIST family.

    Returns:
        uint8 array of the stored shape, e.g. (60000, 28, 28) for images, (60000,) for labels.

    Raises:
        ValueError: if the file is not an unsigned-byte idx file or its size disagrees with its header.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte idx file (magic bytes {raw[:4]!r})")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(raw) != expected:
        raise ValueError(f"{path}: header says shape {dims} ({expected} bytes), file has {len(raw)}")
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for sub in (folder, folder / "FashionMNIST" / "raw"):
        for name in (stem + ".gz", stem):
            if (sub / name).is_file():
                return sub / name
    return None


def _fashion_from_arrays(arrays: dict[str, np.ndarray], source: str) -> ImageData:
    x_train, x_test = arrays["x_train"], arrays["x_test"]
    for key, x in (("x_train", x_train), ("x_test", x_test)):
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(f"Fashion-MNIST {key} must have shape (N, 28, 28), got {x.shape}")
    for split in ("train", "test"):
        if len(arrays[f"x_{split}"]) != len(arrays[f"y_{split}"]):
            raise ValueError(f"Fashion-MNIST {split}: {len(arrays[f'x_{split}'])} images but "
                             f"{len(arrays[f'y_{split}'])} labels")
    return ImageData(
        x_train=torch.from_numpy(np.array(x_train)).unsqueeze(1),
        y_train=torch.from_numpy(arrays["y_train"].astype(np.int64)),
        x_test=torch.from_numpy(np.array(x_test)).unsqueeze(1),
        y_test=torch.from_numpy(arrays["y_test"].astype(np.int64)),
        source=source, classes=FASHION_CLASSES, mean=(FASHION_MEAN,), std=(FASHION_STD,),
    )


def _fashion_from_folder(folder: Path) -> ImageData | None:
    paths = {key: _find_idx(folder, stem) for key, stem in _IDX_FILES.items()}
    if any(p is None for p in paths.values()):
        return None
    return _fashion_from_arrays({k: read_idx(p) for k, p in paths.items()}, str(folder))


def _is_online(host: str = "github.com", timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _fashion_from_torchvision(root: Path) -> ImageData:
    from torchvision.datasets import FashionMNIST  # imported here: only needed online

    train = FashionMNIST(str(root), train=True, download=True)
    test = FashionMNIST(str(root), train=False, download=True)
    return _fashion_from_arrays({"x_train": train.data.numpy(), "y_train": train.targets.numpy(),
                                 "x_test": test.data.numpy(), "y_test": test.targets.numpy()},
                                "torchvision download")


def load_fashion_subset(path: str | Path = SUBSET_PATH) -> ImageData:
    """Load the vendored class-balanced Fashion-MNIST subset (10,000 train / 2,000 test)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vendored subset not found at {path}; it is part of the repository "
                                "(run scripts/make_fashion_subset.py to rebuild it)")
    with np.load(path) as z:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(z.files)
        if missing:
            raise ValueError(f"{path} lacks arrays {sorted(missing)}")
        arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    return _fashion_from_arrays(arrays, f"vendored subset {path.name}")


def load_fashion_mnist(source: str = "auto") -> ImageData:
    """Load Fashion-MNIST from the first source that has it (see the module docstring).

    Args:
        source: "auto" (the order above), or one of "env", "debian", "torchvision", "subset".

    Returns:
        ``ImageData`` with x_train (N, 1, 28, 28) uint8 and the ``source`` it came from.

    Raises:
        ValueError: for an unknown ``source``.
        FileNotFoundError: when the requested source has no data.
    """
    sources = ("env", "debian", "torchvision", "subset")
    if source != "auto" and source not in sources:
        raise ValueError(f"unknown source {source!r}; expected 'auto' or one of {sources}")
    env_dir = repro.env_path("PRUNING_DATA_DIR")
    if source == "env" and env_dir is None:
        raise FileNotFoundError("source='env' needs PRUNING_DATA_DIR to name a folder of idx files")
    if source in ("auto", "env") and env_dir is not None:
        found = _fashion_from_folder(env_dir)
        if found is not None:
            return found
        if source == "env":
            raise FileNotFoundError(f"PRUNING_DATA_DIR={env_dir} has no Fashion-MNIST idx files "
                                    f"(expected {sorted(_IDX_FILES.values())}, optionally .gz)")
    if source in ("auto", "debian"):
        found = _fashion_from_folder(DEBIAN_FASHION_DIR)
        if found is not None:
            return found
        if source == "debian":
            raise FileNotFoundError(f"no Fashion-MNIST at {DEBIAN_FASHION_DIR}; install it with "
                                    "`apt-get install dataset-fashion-mnist`")
    if source == "torchvision" or (source == "auto" and _is_online()):
        return _fashion_from_torchvision(repro.cache_dir() / "torchvision")
    return load_fashion_subset()


def read_cifar10(root: str | Path) -> ImageData:
    """Read CIFAR-10 from its python-version folder (``cifar-10-batches-py``) without downloading.

    Args:
        root: The folder that contains ``cifar-10-batches-py/`` (or that folder itself).

    Returns:
        ``ImageData`` with x_train (50000, 3, 32, 32) uint8 (fewer if the folder holds fewer).

    Raises:
        FileNotFoundError: when a batch file is missing (the message says how to get the data).
        ValueError: when a batch does not hold (N, 3072) uint8 data and N labels.
    """
    folder = Path(root)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    names = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    arrays: dict[str, list[np.ndarray]] = {"x_train": [], "y_train": [], "x_test": [], "y_test": []}
    for split, files in names.items():
        for name in files:
            path = folder / name
            if not path.is_file():
                raise FileNotFoundError(
                    f"CIFAR-10 batch {path} not found; on a machine with internet call "
                    f"cifar10_loaders(root, download=True) or get cifar-10-python.tar.gz by hand")
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="bytes")  # the official format is a pickle
            x = np.asarray(batch[b"data"], dtype=np.uint8)
            y = np.asarray(batch[b"labels"], dtype=np.int64)
            if x.ndim != 2 or x.shape[1] != 3072 or len(x) != len(y):
                raise ValueError(f"{path}: expected data (N, 3072) and N labels, "
                                 f"got {x.shape} and {y.shape}")
            arrays[f"x_{split}"].append(x.reshape(-1, 3, 32, 32))   # (N, C, H, W)
            arrays[f"y_{split}"].append(y)
    cat = {k: torch.from_numpy(np.concatenate(v)) for k, v in arrays.items()}
    return ImageData(cat["x_train"], cat["y_train"], cat["x_test"], cat["y_test"],
                     source=str(folder), classes=CIFAR10_CLASSES, mean=CIFAR_MEAN, std=CIFAR_STD)


def load_cifar10(root: str | Path | None = None, *, download: bool = False) -> ImageData:
    """Load CIFAR-10 from ``root`` (default: ``PRUNING_DATA_DIR``), downloading only if asked."""
    root = Path(root) if root is not None else repro.env_path("PRUNING_DATA_DIR")
    if root is None:
        raise FileNotFoundError("no CIFAR-10 folder given: pass root= or set PRUNING_DATA_DIR")
    if download:
        from torchvision.datasets import CIFAR10  # imported here: only needed online

        CIFAR10(str(root), train=True, download=True)
    return read_cifar10(root)


def cifar10_loaders(root: str | Path | None = None, *, download: bool = False,
                    batch_size: int = 128, fast: bool = False, seed: int = 0) -> Loaders:
    """CIFAR-10 loaders (build models with ``in_channels=3``); see ``load_cifar10``."""
    return make_loaders(load_cifar10(root, download=download), batch_size=batch_size, fast=fast,
                        seed=seed)


def load_dataset(name: str, **kwargs: object) -> ImageData:
    """Load an image dataset by name: "fashion_mnist" or "cifar10"."""
    if name == "fashion_mnist":
        return load_fashion_mnist(**kwargs)
    if name == "cifar10":
        return load_cifar10(**kwargs)
    raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")


def normalize(x: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """Turn uint8 images (N, C, H, W) into float32 (x/255 - mean) / std, same shape."""
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise ValueError(f"expected uint8 images of shape (N, C, H, W), got {x.dtype} {tuple(x.shape)}")
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return (x.float() / 255.0 - m) / s


def balanced_indices(labels: Tensor, per_class: int, *, seed: int = 0) -> Tensor:
    """Pick ``per_class`` random indices of every class (sorted), reproducibly.

    Args:
        labels: (N,) int64 labels.
        per_class: How many examples of each class to keep.
        seed: Seed of the permutation.

    Returns:
        Sorted LongTensor of shape (n_classes * per_class,).
    """
    if per_class < 0:
        raise ValueError(f"per_class must be >= 0, got {per_class}")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=g)
    picked = []
    for c in torch.unique(labels):
        members = order[labels[order] == c]
        if len(members) < per_class:
            raise ValueError(f"class {int(c)} has {len(members)} examples, {per_class} requested")
        picked.append(members[:per_class])
    return torch.sort(torch.cat(picked)).values


def make_loaders(data: ImageData, *, batch_size: int = 128, fast: bool = False,
                 seed: int = 0) -> Loaders:
    """Wrap ``ImageData`` in data loaders with normalised float images.

    FAST mode keeps 200 training and 100 test images per class (2,000 / 1,000 for ten classes).
    ``eval`` is always a class-balanced slice of the test split (50 per class, 100 in full mode).

    Args:
        data: The dataset.
        batch_size: Batch size of all three loaders.
        fast: Shrink the splits for CI.
        seed: Seeds the training order and the subset choice.

    Returns:
        ``Loaders`` whose batches are (x float32 (B, C, H, W), y int64 (B,)).
    """
    train_idx = (balanced_indices(data.y_train, 200, seed=seed) if fast
                 else torch.arange(len(data.y_train)))
    test_idx = (balanced_indices(data.y_test, 100, seed=seed) if fast
                else torch.arange(len(data.y_test)))
    eval_idx = balanced_indices(data.y_test, 50 if fast else 100, seed=seed + 1)

    def dataset(x: Tensor, y: Tensor, idx: Tensor) -> TensorDataset:
        return TensorDataset(normalize(x[idx], data.mean, data.std), y[idx])

    g = torch.Generator().manual_seed(seed)
    return Loaders(
        train=DataLoader(dataset(data.x_train, data.y_train, train_idx), batch_size=batch_size,
                         shuffle=True, generator=g, drop_last=False),
        test=DataLoader(dataset(data.x_test, data.y_test, test_idx), batch_size=256),
        eval=DataLoader(dataset(data.x_test, data.y_test, eval_idx), batch_size=256),
        data=data,
    )


def subset_loader(data: ImageData, split: str, per_class: int, *, seed: int = 0,
                  batch_size: int = 256, shuffle: bool = False) -> DataLoader:
    """A class-balanced slice of one split: ``per_class`` images of every class, normalised.

    Args:
        data: The dataset.
        split: "train" or "test".
        per_class: Images per class (e.g. 500 → 5,000 images for ten classes).
        seed: Seeds the choice (and the order when ``shuffle``).
        batch_size: Batch size.
        shuffle: Shuffle every epoch (for fine-tuning).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    idx = balanced_indices(y, per_class, seed=seed)
    g = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(normalize(x[idx], data.mean, data.std), y[idx]),
                      batch_size=batch_size, shuffle=shuffle, generator=g if shuffle else None)


def fashion_mnist_loaders(*, batch_size: int = 128, fast: bool = False, seed: int = 0,
                          source: str = "auto") -> Loaders:
    """Fashion-MNIST loaders in one call (see ``load_fashion_mnist`` and ``make_loaders``)."""
    return make_loaders(load_fashion_mnist(source), batch_size=batch_size, fast=fast, seed=seed)


def synthetic_loader(n_images: int, shape: tuple[int, int, int], *, batch_size: int = 32,
                     num_classes: int = 10, seed: int = 0) -> DataLoader:
    """Random N(0, 1) images with random labels: for timing, never for accuracy.

    Args:
        n_images: Number of images.
        shape: (C, H, W) of one image.
        batch_size: Batch size.
        num_classes: Labels are drawn from range(num_classes).
        seed: Seeds the draw.

    Returns:
        A loader of (x (B, C, H, W) float32, y (B,) int64) batches.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_images, *shape, generator=g)
    y = torch.randint(0, num_classes, (n_images,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


def random_shift_flip(x: Tensor, generator: torch.Generator, *, pad: int = 2) -> Tensor:
    """Batch augmentation: random translation by up to ``pad`` pixels and random horizontal flip.

    Vectorised over the batch (no Python loop over images).

    Args:
        x: Float images, shape (B, C, H, W).
        generator: Drives the random shifts and flips.
        pad: Largest shift in pixels. The border that moves in is filled with each channel's
            minimum over the batch (the normalised value of a black pixel, when the batch has one).

    Returns:
        Augmented images, shape (B, C, H, W).
    """
    b, c, h, w = x.shape
    fill = x.amin(dim=(0, 2, 3), keepdim=True)                              # (1, C, 1, 1)
    padded = fill.expand(b, c, h + 2 * pad, w + 2 * pad).clone()           # (B, C, H+2p, W+2p)
    padded[..., pad:pad + h, pad:pad + w] = x
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]      # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]      # (B, 1, 1, W)
    batch = torch.arange(b)[:, None, None, None]
    chan = torch.arange(c)[None, :, None, None]
    out = padded[batch, chan, rows, cols]                                   # (B, C, H, W)
    flip = torch.rand(b, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(-1), out)
