"""Training, fine-tuning and evaluation loops (seeded, with tqdm.auto progress bars).

Every loop runs on the device of the model's parameters (``repro.model_device``): each batch is
moved there, and records hold plain Python numbers.

``train`` returns a list of history records (plain dicts: epoch, split, loss, accuracy, lr,
seconds) that pandas/seaborn and ``plots.LiveCurve`` read directly. It never plots: it calls the
``callbacks`` it is given with each new record.

The command line trains a model of the zoo on Fashion-MNIST and writes a checkpoint plus a model
card::

    python -m pruning_lib.train --model resnet20 --epochs 15 --out data/checkpoints

Introduced in: notebooks/00_tour.ipynb (§The model zoo).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from pruning_lib import activations, data, models, repro, scoped

Record = dict[str, float | int | str]
Callback = Callable[[Record], object]


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe: SGD with Nesterov momentum and a one-cycle learning-rate schedule.

    Attributes:
        epochs: Passes over the training loader.
        lr: Peak learning rate of the one-cycle schedule.
        momentum: SGD momentum.
        weight_decay: L2 penalty on all parameters.
        label_smoothing: Cross-entropy label smoothing.
        augment: Random shifts (±2 px) and horizontal flips of each batch.
        seed: Seeds the augmentation generator (the data order is seeded by the loader).
        log_every: If > 0, also emit a running "train" record every ``log_every`` batches (its
            "epoch" is fractional), so live plots move during an epoch.
    """

    epochs: int = 1
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    augment: bool = False
    seed: int = 0
    log_every: int = 0


def check_finite_inputs(x: Tensor, where: str) -> None:
    """Raise ValueError, saying ``where``, if the batch ``x`` (B, ...) holds NaN or infinite values."""
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise ValueError(f"{where}: {bad} of {x.numel()} input values are NaN or infinite; a loss or "
                         "an accuracy computed from them means nothing (check the data pipeline)")


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], *,
             progress: bool = False) -> Record:
    """Accuracy and mean cross-entropy of ``model`` (in eval mode) over ``loader``.

    The train/eval mode of every submodule is restored afterwards, also when it raises. A
    non-finite image or logit stops the evaluation with an error: argmax over NaN logits picks a
    class arbitrarily, so the accuracy it would report is meaningless.

    Args:
        model: Maps (B, C, H, W) to logits (B, K); runs on its parameters' device.
        loader: Yields (x, y) batches (on any device; each is moved to the model's).
        progress: Show a tqdm bar.

    Returns:
        {"loss": mean loss, "accuracy": fraction correct, "correct": int, "n": int}.

    Raises:
        ValueError: an empty loader, or a batch with a NaN or infinite image value.
        FloatingPointError: finite images, but the model returns NaN or infinite logits.
    """
    loss_sum, correct, n = 0.0, 0, 0
    device = repro.model_device(model)
    with scoped.eval_mode(model):
        for step, (x, y) in enumerate(tqdm(loader, desc="evaluate", leave=False, disable=not progress)):
            check_finite_inputs(x, f"evaluate(): batch {step}")
            x, y = x.to(device), y.to(device)
            logits = model(x)
            if not torch.isfinite(logits).all():
                raise FloatingPointError(f"evaluate(): the model returned non-finite logits on batch "
                                         f"{step} (its images are finite): NaN or infinite weights?")
            loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            n += len(y)
    if n == 0:
        raise ValueError("evaluate() got an empty loader")
    return {"loss": loss_sum / n, "accuracy": correct / n, "correct": correct, "n": n}


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler | None, *,
                config: TrainConfig, generator: torch.Generator, desc: str = "train",
                on_log: Callable[[float, Record], object] | None = None) -> Record:
    """One pass over ``loader``; returns {"loss", "accuracy", "n"} measured on the fly.

    Every ``config.log_every`` batches, ``on_log(fraction of the epoch done, running stats)``
    is called. A non-finite batch or loss stops training before the step that would spread it
    into the weights. Batches are augmented on the CPU (seeded ``generator``), then moved to the
    device of the model's parameters.

    Raises:
        ValueError: a batch with NaN or infinite image values.
        FloatingPointError: a non-finite loss from finite images (training diverged).
    """
    model.train()
    device = repro.model_device(model)
    loss_sum, correct, n = 0.0, 0, 0
    bar = tqdm(loader, desc=desc, leave=False)
    for step, (x, y) in enumerate(bar, start=1):
        if config.augment:
            x = data.random_shift_flip(x.cpu(), generator)
        check_finite_inputs(x, f"{desc}, batch {step}")
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{desc}, batch {step}: the loss is {loss.item()} (the images are "
                                     "finite): training diverged; lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        loss_sum += loss.item() * len(y)
        correct += int((logits.argmax(1) == y).sum())
        n += len(y)
        bar.set_postfix(loss=f"{loss_sum / n:.3f}", acc=f"{correct / n:.3f}", refresh=False)
        if on_log is not None and config.log_every > 0 and step % config.log_every == 0:
            on_log(step / len(loader), {"loss": loss_sum / n, "accuracy": correct / n, "n": n})
    return {"loss": loss_sum / n, "accuracy": correct / n, "n": n}


def train(model: nn.Module, train_loader: DataLoader, eval_loader: DataLoader | None = None,
          config: TrainConfig = TrainConfig(), *,
          callbacks: Iterable[Callback] = ()) -> list[Record]:
    """Train ``model`` in place with ``config``; evaluate after every epoch.

    Use ``fine_tune`` to train a copy instead. Each epoch appends a "train" record and, when
    ``eval_loader`` is given, an "eval" record; every record is passed to each callback.

    Returns:
        History records: {"epoch", "split", "loss", "accuracy", "n", "lr", "seconds"}; "eval"
        records also carry "correct". The model is left in eval mode.

    Raises:
        ValueError: ``epochs`` < 1, an empty loader, or NaN/infinite images.
        FloatingPointError: the loss became NaN or infinite (see ``train_epoch``).
    """
    if config.epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {config.epochs}")
    for name, loader in (("train_loader", train_loader), ("eval_loader", eval_loader)):
        if loader is not None and hasattr(loader, "__len__") and len(loader) == 0:
            raise ValueError(f"{name} is empty (no batch): nothing to train or evaluate on")
    callbacks = list(callbacks)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                nesterov=True, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, epochs=config.epochs, steps_per_epoch=len(train_loader))
    generator = torch.Generator().manual_seed(config.seed)
    history: list[Record] = []
    start = time.perf_counter()

    def emit(record: Record) -> None:
        record.update(lr=optimizer.param_groups[0]["lr"], seconds=round(time.perf_counter() - start, 2))
        history.append(record)
        for callback in callbacks:
            callback(record)

    for epoch in tqdm(range(1, config.epochs + 1), desc="epochs", leave=False):
        stats = train_epoch(
            model, train_loader, optimizer, scheduler, config=config, generator=generator,
            desc=f"epoch {epoch}",
            on_log=lambda frac, s, e=epoch: emit({"epoch": e - 1 + frac, "split": "train", **s}))
        if config.log_every <= 0 or len(train_loader) % config.log_every:
            emit({"epoch": epoch, "split": "train", **stats})
        if eval_loader is not None:
            emit({"epoch": epoch, "split": "eval", **evaluate(model, eval_loader)})
    model.eval()
    return history


def fine_tune(model: nn.Module, train_loader: DataLoader, eval_loader: DataLoader | None = None,
              config: TrainConfig = TrainConfig(epochs=1, lr=0.01), *,
              callbacks: Iterable[Callback] = ()) -> tuple[nn.Module, list[Record]]:
    """Train a deep copy of ``model`` (the input is untouched); returns (new model, history).

    Reproducible: the global torch RNG (dropout) and the loader's shuffling generator are seeded
    with ``config.seed`` for the run, so the same (model, loader, config) always gives the same
    fine-tuned model, however many fine-tunes ran before. Both RNG states are restored after.

    Raises:
        ValueError, FloatingPointError: see ``train`` (an empty loader, non-finite images or loss).
    """
    tuned = copy.deepcopy(model)
    rng_devices = repro.rng_devices(repro.model_device(tuned))
    shuffle_generator = getattr(train_loader, "generator", None)
    if not isinstance(shuffle_generator, torch.Generator):
        shuffle_generator = None
    saved = shuffle_generator.get_state() if shuffle_generator is not None else None
    try:
        with torch.random.fork_rng(devices=rng_devices):
            torch.manual_seed(config.seed)
            if shuffle_generator is not None:
                shuffle_generator.manual_seed(config.seed)
            history = train(tuned, train_loader, eval_loader, config, callbacks=callbacks)
    finally:
        if shuffle_generator is not None:
            shuffle_generator.set_state(saved)
    return tuned, history


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train a zoo model on Fashion-MNIST and write a "
                                            "checkpoint with its model card.")
    p.add_argument("--model", required=True, choices=models.PRETRAINED)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    p.add_argument("--source", default="auto", help="Fashion-MNIST source (see data.py)")
    p.add_argument("--out", type=Path, default=repro.CHECKPOINT_DIR)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Command-line entry point; returns the model card it wrote."""
    args = _parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repro.seed_everything(args.seed)
    loaders = data.fashion_mnist_loaders(batch_size=args.batch_size, seed=args.seed,
                                         source=args.source)
    arch = {"resnet20": ("resnet", {"depth": 20})}.get(args.model, (args.model, {}))
    model = models.build(arch[0], **arch[1])
    config = TrainConfig(epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay,
                         label_smoothing=args.label_smoothing, augment=not args.no_augment,
                         seed=args.seed)
    start = time.perf_counter()
    history = train(model, loaders.train, loaders.test, config)
    seconds = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / f"{args.model}.pt"
    torch.save(model.state_dict(), weights)
    subset = data.make_loaders(data.load_fashion_subset(), seed=args.seed)
    card = {
        "name": args.model,
        "arch": model.arch_spec,
        "params": sum(p.numel() for p in model.parameters()),
        "data": {"dataset": "Fashion-MNIST", "source": loaders.data.source,
                 "train_images": len(loaders.train.dataset), "test_images": len(loaders.test.dataset)},
        "recipe": {**asdict(config), "batch_size": args.batch_size, "optimizer": "SGD nesterov",
                   "schedule": "OneCycleLR"},
        "test_accuracy_full": evaluate(model, loaders.test),
        "test_accuracy_subset": evaluate(model, subset.test),
        "history": history,
        "train_seconds": round(seconds, 1),
        "machine": {"threads": torch.get_num_threads(), "torch": torch.__version__,
                    "python": platform.python_version(), "processor": platform.machine()},
        "command": "python -m pruning_lib.train " + shlex.join(sys.argv[1:] if argv is None
                                                                else argv),
        "sha256": models.sha256(weights),
    }
    (args.out / f"{args.model}.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def _batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of ``model`` that keep running statistics (1d, 2d and 3d)."""
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def recalibrate_bn(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], n_images: int = 1000, *,
                   progress: bool = True) -> nn.Module:
    """A NEW model whose BatchNorm running statistics are re-estimated on ``n_images`` images.

    After pruning, every BatchNorm still holds the running mean and variance of the *unpruned*
    network, while the pruned network feeds it different statistics: the normalised activations are
    off-scale and accuracy often drops to chance. Recalibration ("adaptive BN", Li et al., EagleEye,
    ECCV 2020) resets the running statistics and forwards training images with only the BatchNorm
    layers in train mode (dropout and everything else in eval mode), without gradients. With
    ``momentum=None`` PyTorch keeps a cumulative average, so each running mean (variance) becomes the
    average over the batches of the batch's channel mean (unbiased channel variance). Every
    BatchNorm's momentum is restored afterwards, so a later fine-tune behaves as usual. No weight
    changes.

    ``model``, its mode and the loader's shuffling RNG (its ``generator`` or the global torch RNG)
    are untouched, so recalibrating twice on the same loader gives the same model.

    Args:
        model: Maps (B, C, H, W) (or the model's own input shape) to logits (B, K).
        loader: Yields (x, y) batches of *training* images (never the images you then evaluate on);
            only x is used, and the batch that passes ``n_images`` is cut.
        n_images: How many images to forward (1,000 by default; fewer if the loader has fewer).
        progress: Show a tqdm bar (it disappears when done).

    Returns:
        The recalibrated copy; every submodule in the train/eval mode it has in ``model``. A model
        without BatchNorm is returned as an unchanged copy, with a warning.

    Raises:
        ValueError: ``n_images`` < 1, or the loader yields no image.
    """
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    new = copy.deepcopy(model)
    norms = _batch_norms(new)
    if not norms:
        warnings.warn("recalibrate_bn: the model has no BatchNorm with running statistics; "
                      "returning an unchanged copy", stacklevel=2)
        return new
    momenta = [m.momentum for m in norms]
    device = repro.model_device(new)
    shuffle_generator = getattr(loader, "generator", None)
    saved = shuffle_generator.get_state() if isinstance(shuffle_generator, torch.Generator) else None
    seen = 0
    try:
        with (scoped.eval_mode(new), torch.no_grad(),
              torch.random.fork_rng(devices=repro.rng_devices(device))):
            for norm in norms:
                norm.reset_running_stats()
                norm.momentum = None                        # cumulative average over batches
                norm.train()
            batches = activations.iter_batches(loader, n_images)
            for x, _y in tqdm(batches, desc="recalibrate BN", leave=False, disable=not progress):
                new(x.to(device))
                seen += len(x)
    finally:
        if saved is not None:
            shuffle_generator.set_state(saved)
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
    if seen == 0:
        raise ValueError("recalibrate_bn() got an empty loader")
    return new


if __name__ == "__main__":
    result = main()
    print(json.dumps({k: result[k] for k in ("name", "test_accuracy_full", "train_seconds")}))
