"""Bad input to train.evaluate / train.train / train.fine_tune (issue #10, item 7): an empty loader and
NaN or infinite values fail with a clear error instead of deep inside OneCycleLR or as a silent
"accuracy 0.25, loss nan"; the input model is left as it was."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pruning_lib import train


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(2 * 4 * 4, 3))


def batches(n_batches: int = 2, poison: float | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n_batches`` batches of 4 images (1, 4, 4); with ``poison``, one pixel of the last batch is it."""
    g = torch.Generator().manual_seed(1)
    out = [(torch.randn(4, 1, 4, 4, generator=g), torch.arange(4) % 3) for _ in range(n_batches)]
    if poison is not None:
        out[-1][0][2, 0, 1, 1] = poison
    return out


def snapshot(model: nn.Module) -> tuple[dict, list[bool]]:
    return ({k: v.clone() for k, v in model.state_dict().items()}, [m.training for m in model.modules()])


def assert_unchanged(model: nn.Module, before: tuple[dict, list[bool]]) -> None:
    state, modes = before
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert [m.training for m in model.modules()] == modes


@pytest.mark.parametrize("empty", [[], DataLoader(TensorDataset(torch.zeros(0, 1, 4, 4),
                                                                torch.zeros(0, dtype=torch.long)))])
def test_empty_loaders_are_refused_before_training(empty):
    model = tiny_net().train()
    before = snapshot(model)
    with pytest.raises(ValueError, match="train_loader is empty"):
        train.fine_tune(model, empty)
    with pytest.raises(ValueError, match="eval_loader is empty"):
        train.fine_tune(model, batches(), empty)
    with pytest.raises(ValueError, match="empty loader"):
        train.evaluate(model, empty)
    assert_unchanged(model, before)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("training", [True, False])
def test_non_finite_images_raise_and_name_the_batch(bad: float, training: bool):
    model = tiny_net().train(training)
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"batch 1: 1 of 64 input values are NaN or infinite"):
        train.evaluate(model, batches(poison=bad))
    with pytest.raises(ValueError, match=r"batch 2: 1 of 64 input values are NaN or infinite"):
        train.fine_tune(model, batches(poison=bad))                   # batches count from 1 in training
    assert_unchanged(model, before)


def test_train_stops_before_a_non_finite_loss_reaches_the_weights():
    """Finite images, but a weight is infinite: the loss is NaN on the first batch. ``train`` (in place)
    raises before the optimiser step, so no other weight turns NaN."""
    model = tiny_net()
    with torch.no_grad():
        model[4].weight[0, 0] = float("inf")
    with pytest.raises(FloatingPointError, match="batch 1: the loss is nan"):
        train.train(model, batches(), config=train.TrainConfig(epochs=1, lr=0.1))
    finite = [name for name, p in model.named_parameters() if torch.isfinite(p).all()]
    assert finite == [name for name, _ in model.named_parameters() if name != "4.weight"]
    with pytest.raises(FloatingPointError, match="non-finite logits on batch 0"):
        train.evaluate(model, batches())


def test_finite_inputs_still_evaluate_and_fine_tune():
    """The checks reject nothing finite: a large but finite pixel passes."""
    model = tiny_net()
    data = batches()
    data[0][0][0, 0, 0, 0] = 1e6
    record = train.evaluate(model, data)
    assert record["n"] == 8 and 0.0 <= record["accuracy"] <= 1.0
    tuned, history = train.fine_tune(model, batches(), config=train.TrainConfig(epochs=1, lr=0.01))
    assert len(history) == 1 and torch.isfinite(torch.tensor(history[0]["loss"]))


def test_fine_tune_restores_the_loaders_shuffling_generator():
    g = torch.Generator().manual_seed(123)
    loader = DataLoader(TensorDataset(torch.randn(8, 1, 4, 4), torch.arange(8) % 3), batch_size=4,
                        shuffle=True, generator=g)
    state = g.get_state()
    train.fine_tune(tiny_net(), loader)
    assert torch.equal(g.get_state(), state)
