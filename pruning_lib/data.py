"""Image data: Fashion-MNIST, offline first, from the most complete source present.

Fashion-MNIST is looked for, in this order:

1. the folder in ``PRUNING_DATA_DIR`` (idx files, gzipped or not, directly inside it or in
   ``FashionMNIST/raw/``);
2. the Debian package location ``/usr/share/datasets/fashion-mnist/``
   (``apt-get install dataset-fashion-mnist``);
3. an earlier torchvision download in ``repro.cache_dir() / "torchvision"`` (read, never fetched);
4. a torchvision download, only when asked: ``PRUNING_DOWNLOAD=1`` or ``source="torchvision"``;
5. the vendored class-balanced subset ``data/fashion_mnist_subset.npz`` (10,000 train / 2,000 test
   images, 1,000 / 200 per class, made by ``scripts/make_fashion_subset.py``; MIT licence,
   © Zalando SE).

No loader probes the network: an online and an offline machine with the same files get the same
data. Every loader says which source it used (``ImageData.source``); ``python -m pruning_lib.data
--which`` prints the source the lessons will use, and ``--get`` fetches the full dataset (``make
data``). When a lesson asks for more images per class than its source has (the subset's 200 test
images per class, say), ``subset_loader`` uses what exists and prints one line saying so.

Introduced in: notebooks/00_tour.ipynb (§The data).
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
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
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_PACKAGE = "dataset-fashion-mnist"
SUBSET_PATH = repro.DATA_DIR / "fashion_mnist_subset.npz"
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530   # pixel mean / std of the 60k training images
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
SOURCES = ("env", "debian", "cache", "torchvision", "subset")
GET_FULL = (f"Full dataset (60,000 / 10,000): `make data` (as root: Debian package {DEBIAN_PACKAGE}; "
            "otherwise `PRUNING_DOWNLOAD=1 make data`, a torchvision download)")


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


def _has_fashion(folder: Path | None) -> bool:
    """True when ``folder`` holds the four Fashion-MNIST idx files (nothing is read)."""
    return folder is not None and all(_find_idx(folder, stem) is not None for stem in _IDX_FILES.values())


def _torchvision_root() -> Path:
    return repro.cache_dir() / "torchvision"


def _fashion_from_torchvision(root: Path) -> ImageData:
    from torchvision.datasets import FashionMNIST  # imported here: only needed for a download

    train = FashionMNIST(str(root), train=True, download=True)
    test = FashionMNIST(str(root), train=False, download=True)
    return _fashion_from_arrays({"x_train": train.data.numpy(), "y_train": train.targets.numpy(),
                                 "x_test": test.data.numpy(), "y_test": test.targets.numpy()},
                                f"torchvision download in {root}")


def load_fashion_subset(path: str | Path = SUBSET_PATH) -> ImageData:
    """Load the vendored class-balanced Fashion-MNIST subset (10,000 train / 2,000 test).

    Raises:
        FileNotFoundError: when the file is missing.
        ValueError: when it lacks one of the four arrays.
    """
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


def fashion_source() -> str:
    """The source ``load_fashion_mnist("auto")`` would use now, found without reading any image.

    Returns:
        One of ``SOURCES``: "env", "debian", "cache" (an earlier torchvision download),
        "torchvision" (a download, only when ``PRUNING_DOWNLOAD`` is set) or "subset".
    """
    if _has_fashion(repro.env_path("PRUNING_DATA_DIR")):
        return "env"
    if _has_fashion(DEBIAN_FASHION_DIR):
        return "debian"
    if _has_fashion(_torchvision_root()):
        return "cache"
    return "torchvision" if repro.downloads_requested() else "subset"


def load_fashion_mnist(source: str = "auto") -> ImageData:
    """Load Fashion-MNIST from the first source that has it (see the module docstring).

    Args:
        source: "auto" (the order above; ``fashion_source`` names the choice), or one of
            ``SOURCES``. Only "torchvision" (or "auto" with ``PRUNING_DOWNLOAD=1``) downloads.

    Returns:
        ``ImageData`` with x_train (N, 1, 28, 28) uint8 and the ``source`` it came from.

    Raises:
        ValueError: for an unknown ``source``.
        FileNotFoundError: when the requested source has no data.
    """
    if source != "auto" and source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected 'auto' or one of {SOURCES}")
    kind = fashion_source() if source == "auto" else source
    env_dir = repro.env_path("PRUNING_DATA_DIR")
    if kind == "env":
        if env_dir is None:
            raise FileNotFoundError("source='env' needs PRUNING_DATA_DIR to name a folder of idx files")
        if not _has_fashion(env_dir):
            raise FileNotFoundError(f"PRUNING_DATA_DIR={env_dir} has no Fashion-MNIST idx files "
                                    f"(expected {sorted(_IDX_FILES.values())}, optionally .gz)")
        return _fashion_from_folder(env_dir)
    if kind == "debian":
        if not _has_fashion(DEBIAN_FASHION_DIR):
            raise FileNotFoundError(f"no Fashion-MNIST at {DEBIAN_FASHION_DIR}; install it with "
                                    f"`apt-get install {DEBIAN_PACKAGE}`")
        return _fashion_from_folder(DEBIAN_FASHION_DIR)
    if kind == "cache":
        if not _has_fashion(_torchvision_root()):
            raise FileNotFoundError(f"no earlier torchvision download in {_torchvision_root()}; "
                                    "source='torchvision' (or PRUNING_DOWNLOAD=1) downloads it")
        return _fashion_from_folder(_torchvision_root())
    if kind == "torchvision":
        return _fashion_from_torchvision(_torchvision_root())
    return load_fashion_subset()


def _idx_length(path: Path) -> int:
    """The first dimension in an idx file's header (the number of images or labels)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an unsigned-byte idx file (magic bytes {head[:4]!r})")
    return int.from_bytes(head[4:8], "big")


def _split_sizes(kind: str) -> tuple[int, int]:
    """(train, test) image counts of a local source, read from file headers only."""
    if kind == "subset":
        with np.load(SUBSET_PATH) as z:
            return len(z["y_train"]), len(z["y_test"])
    folder = {"env": repro.env_path("PRUNING_DATA_DIR"), "debian": DEBIAN_FASHION_DIR,
              "cache": _torchvision_root()}[kind]
    return (_idx_length(_find_idx(folder, _IDX_FILES["y_train"])),
            _idx_length(_find_idx(folder, _IDX_FILES["y_test"])))


def which_line() -> str:
    """One line: which Fashion-MNIST the lessons will use and, for the subset, how to get the full one.

    Nothing is downloaded and no image is read (``fashion_source`` plus file headers).
    """
    kind = fashion_source()
    if kind == "torchvision":
        return (f"Fashion-MNIST for the lessons: a torchvision download into {_torchvision_root()} at "
                "first use (PRUNING_DOWNLOAD is set)")
    n_train, n_test = _split_sizes(kind)
    where = {"env": f"PRUNING_DATA_DIR={repro.env_path('PRUNING_DATA_DIR')}",
             "debian": f"Debian package {DEBIAN_PACKAGE} ({DEBIAN_FASHION_DIR})",
             "cache": f"earlier torchvision download ({_torchvision_root()})",
             "subset": f"vendored subset data/{SUBSET_PATH.name}"}[kind]
    line = f"Fashion-MNIST for the lessons: {where} ({n_train:,} train / {n_test:,} test images"
    if kind == "subset":
        return f"{line}; lessons that want more use what exists and say so). {GET_FULL}."
    return f"{line})."


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _apt_install(package: str) -> bool:
    """``apt-get update`` then ``apt-get install -y package``; True when both succeed."""
    if shutil.which("apt-get") is None:
        return False
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        if subprocess.run(command, check=False).returncode != 0:   # noqa: S603 (fixed commands)
            return False
    return True


def get_full() -> int:
    """Make the full Fashion-MNIST available (``make data``); say in one line what happened.

    Order: nothing to do when a full copy is present; as root, the Debian package; when
    ``PRUNING_DOWNLOAD`` is set, a torchvision download into the cache; otherwise a message.

    Returns:
        0 when a full copy is present afterwards, 1 otherwise (the lessons then use the subset).
    """
    kind = fashion_source()
    if kind in ("env", "debian", "cache"):
        print(f"make data: nothing to do. {which_line()}")
        return 0
    if _is_root():
        print(f"make data: installing the Debian package {DEBIAN_PACKAGE} (apt-get, as root)")
        if _apt_install(DEBIAN_PACKAGE) and _has_fashion(DEBIAN_FASHION_DIR):
            print(f"make data: installed. {which_line()}")
            return 0
        print(f"make data: apt-get could not install {DEBIAN_PACKAGE} (offline, or no such package "
              "in the configured repositories)", file=sys.stderr)
    if repro.downloads_requested():
        print(f"make data: downloading Fashion-MNIST with torchvision into {_torchvision_root()}")
        load_fashion_mnist("torchvision")
        print(f"make data: downloaded. {which_line()}")
        return 0
    print("make data: the full Fashion-MNIST is not here and nothing was downloaded (downloads only "
          "when asked): run `PRUNING_DOWNLOAD=1 make data`, or as root `apt-get install "
          f"{DEBIAN_PACKAGE}`. Meanwhile the lessons use the vendored subset.", file=sys.stderr)
    return 1


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


def available_per_class(data: ImageData, split: str, wanted: int) -> int:
    """``wanted``, or the size of the smallest class of the split when that is smaller.

    When the source has fewer images than wanted (the vendored subset has 200 test images per
    class; a lesson's default mode may ask for 500), prints one line naming the source, the images
    used and the images wanted, and uses what exists.

    Args:
        data: The dataset.
        split: "train" or "test".
        wanted: Images per class the caller asks for (>= 0).

    Returns:
        The number of images per class to take, ``min(wanted, smallest class size)``.

    Raises:
        ValueError: for an unknown split or a negative ``wanted``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if wanted < 0:
        raise ValueError(f"per_class must be >= 0, got {wanted}")
    counts = torch.bincount(data.y_train if split == "train" else data.y_test)
    counts = counts[counts > 0]                                   # (classes present,)
    have = int(counts.min()) if len(counts) else 0
    if wanted <= have:
        return wanted
    n = len(counts)
    hint = "; `make data` gets the full dataset" if data.source.startswith("vendored subset") else ""
    print(f"data: {data.source} has {have:,} {split} images per class, {wanted:,} wanted: using "
          f"{have:,} per class ({have * n:,} images, not {wanted * n:,}){hint}")
    return have


def make_loaders(data: ImageData, *, batch_size: int = 128, fast: bool = False,
                 seed: int = 0) -> Loaders:
    """Wrap ``ImageData`` in data loaders with normalised float images.

    FAST mode keeps 200 training and 100 test images per class (2,000 / 1,000 for ten classes).
    ``eval`` is always a class-balanced slice of the test split (50 per class, 100 in full mode).
    A source with fewer images per class gives what it has (``available_per_class`` says so).

    Args:
        data: The dataset.
        batch_size: Batch size of all three loaders.
        fast: Shrink the splits for CI.
        seed: Seeds the training order and the subset choice.

    Returns:
        ``Loaders`` whose batches are (x float32 (B, C, H, W), y int64 (B,)).
    """
    train_idx = (balanced_indices(data.y_train, available_per_class(data, "train", 200), seed=seed)
                 if fast else torch.arange(len(data.y_train)))
    test_idx = (balanced_indices(data.y_test, available_per_class(data, "test", 100), seed=seed)
                if fast else torch.arange(len(data.y_test)))
    eval_idx = balanced_indices(data.y_test, available_per_class(data, "test", 50 if fast else 100),
                                seed=seed + 1)

    def dataset(x: Tensor, y: Tensor, idx: Tensor) -> TensorDataset:
        return TensorDataset(normalize(x[idx], data.mean, data.std), y[idx])

    g = torch.Generator().manual_seed(seed)
    return Loaders(
        train=DataLoader(dataset(data.x_train, data.y_train, train_idx), batch_size=batch_size,
                         shuffle=True, generator=g, drop_last=False),
        test=DataLoader(dataset(data.x_test, data.y_test, test_idx), batch_size=256,
                        generator=torch.Generator()),      # own generator: see subset_loader
        eval=DataLoader(dataset(data.x_test, data.y_test, eval_idx), batch_size=256,
                        generator=torch.Generator()),
        data=data,
    )


def subset_loader(data: ImageData, split: str, per_class: int, *, seed: int = 0,
                  batch_size: int = 256, shuffle: bool = False) -> DataLoader:
    """A class-balanced slice of one split: ``per_class`` images of every class, normalised.

    When a class has fewer than ``per_class`` images (the vendored subset has 1,000 train / 200
    test per class), every class gives as many as the smallest has, and one printed line says so.

    Args:
        data: The dataset.
        split: "train" or "test".
        per_class: Images per class wanted (e.g. 500 → 5,000 images for ten classes).
        seed: Seeds the choice (and the order when ``shuffle``).
        batch_size: Batch size.
        shuffle: Shuffle every epoch (for fine-tuning).

    Returns:
        A loader of (x float32 (B, C, H, W), y int64 (B,)) batches, ``n_classes × min(per_class,
        smallest class)`` images.

    Raises:
        ValueError: for an unknown split or a negative ``per_class``.
    """
    per_class = available_per_class(data, split, per_class)
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    idx = balanced_indices(y, per_class, seed=seed)
    g = torch.Generator().manual_seed(seed)
    # A DataLoader without a generator draws a seed from the GLOBAL torch RNG every time it is
    # iterated, even unshuffled: with its own, evaluating on it leaves the caller's RNG alone.
    return DataLoader(TensorDataset(normalize(x[idx], data.mean, data.std), y[idx]),
                      batch_size=batch_size, shuffle=shuffle, generator=g)


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
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, generator=g)   # see subset_loader


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


def main(argv: list[str] | None = None) -> int:
    """``python -m pruning_lib.data --which`` (one line: the lessons' source) or ``--get`` (make data).

    Returns:
        The exit status: 0, or 1 when ``--get`` left no full copy.
    """
    parser = argparse.ArgumentParser(prog="python -m pruning_lib.data",
                                     description="Which Fashion-MNIST the lessons use; get the full one.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--which", action="store_true",
                        help="print in one line which source the lessons will use (reads no image)")
    action.add_argument("--get", action="store_true",
                        help="get the full dataset: apt-get as root, else a torchvision download "
                             "when PRUNING_DOWNLOAD=1, else say how")
    args = parser.parse_args(argv)
    if args.which:
        print(which_line())
        return 0
    return get_full()


if __name__ == "__main__":
    sys.exit(main())
