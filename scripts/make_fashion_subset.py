"""Build data/fashion_mnist_subset.npz: a class-balanced Fashion-MNIST subset for offline tests.

1,000 training and 200 test images of each of the 10 classes (10,000 / 2,000 in all), chosen with
seed 0 from the full dataset (Debian package dataset-fashion-mnist or PRUNING_DATA_DIR).

Fashion-MNIST: MIT License, Copyright (c) 2017 Zalando SE (see data/README.md).

Usage: python scripts/make_fashion_subset.py
"""

from __future__ import annotations

import numpy as np

from pruning_lib import data


def main() -> None:
    """Write the subset next to the other vendored data."""
    full = data.load_fashion_mnist("auto")
    if "subset" in full.source:
        raise SystemExit("the full Fashion-MNIST is needed to build the subset")
    train_idx = data.balanced_indices(full.y_train, 1000, seed=0)
    test_idx = data.balanced_indices(full.y_test, 200, seed=0)
    np.savez_compressed(
        data.SUBSET_PATH,
        x_train=full.x_train[train_idx, 0].numpy(), y_train=full.y_train[train_idx].numpy().astype(np.uint8),
        x_test=full.x_test[test_idx, 0].numpy(), y_test=full.y_test[test_idx].numpy().astype(np.uint8),
    )
    print(f"wrote {data.SUBSET_PATH} from {full.source}")


if __name__ == "__main__":
    main()
