"""Tests for pruning_lib/train.py: evaluate, train, fine_tune and the command line."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pruning_lib import data, models, repro, train

RECORD_KEYS = {"epoch", "split", "loss", "accuracy", "n", "lr", "seconds"}


# Tiny models and data ---------------------------------------------------------------------------

class LogitsAreInputs(nn.Module):
    """A "model" whose logits are its inputs; remembers the mode of every forward call."""

    def __init__(self) -> None:
        super().__init__()
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        return x


def tiny_cnn() -> nn.Module:
    """Conv (4 filters, stride 2) → BN → ReLU → 7x7 average pool → linear: ~700 parameters."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4 * 7 * 7, 10))


@pytest.fixture(scope="module")
def tiny_tensors() -> dict[str, TensorDataset]:
    """250 training (25 per class) and 100 eval (10 per class) normalised subset images."""
    subset = data.load_fashion_subset()
    train_idx = data.balanced_indices(subset.y_train, 25, seed=0)
    eval_idx = data.balanced_indices(subset.y_test, 10, seed=0)

    def dataset(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> TensorDataset:
        return TensorDataset(data.normalize(x[idx], subset.mean, subset.std), y[idx])

    return {"train": dataset(subset.x_train, subset.y_train, train_idx),
            "eval": dataset(subset.x_test, subset.y_test, eval_idx)}


@pytest.fixture
def make_loaders(tiny_tensors):
    """Fresh loaders on every call (a DataLoader's shuffling generator advances with each epoch)."""

    def make(seed: int = 0) -> tuple[DataLoader, DataLoader]:
        g = torch.Generator().manual_seed(seed)
        return (DataLoader(tiny_tensors["train"], batch_size=32, shuffle=True, generator=g),
                DataLoader(tiny_tensors["eval"], batch_size=64))

    return make


# evaluate ---------------------------------------------------------------------------------------

def test_evaluate_hand_computed_accuracy_and_loss():
    ln3 = math.log(3.0)
    # softmax([ln 3, 0]) = [3/4, 1/4] and softmax([0, ln 3]) = [1/4, 3/4]
    batches = [
        (torch.tensor([[ln3, 0.0], [0.0, ln3]]), torch.tensor([0, 1])),   # both right: -ln(3/4) each
        (torch.tensor([[ln3, 0.0]]), torch.tensor([1])),                  # wrong: -ln(1/4)
    ]
    result = train.evaluate(LogitsAreInputs(), batches)
    assert result["n"] == 3 and result["correct"] == 2
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["loss"] == pytest.approx((2 * math.log(4 / 3) + math.log(4)) / 3)   # per image


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_runs_in_eval_mode_and_restores_mode(training):
    model = LogitsAreInputs().train(training)
    train.evaluate(model, [(torch.zeros(2, 3), torch.tensor([0, 1]))])
    assert model.modes == [False]
    assert model.training is training


def test_evaluate_tracks_no_gradients():
    layer = nn.Linear(3, 2)
    train.evaluate(layer, [(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))])
    assert layer.weight.grad is None


def test_evaluate_empty_loader_raises():
    model = LogitsAreInputs().train()
    with pytest.raises(ValueError, match="empty loader"):
        train.evaluate(model, [])
    assert model.training   # restored even when it raises


# train ------------------------------------------------------------------------------------------

def test_train_records_and_callbacks(make_loaders):
    train_loader, eval_loader = make_loaders()
    seen = []
    history = train.train(tiny_cnn(), train_loader, eval_loader, train.TrainConfig(epochs=1),
                          callbacks=[seen.append, lambda record: None])
    assert [(r["epoch"], r["split"]) for r in history] == [(1, "train"), (1, "eval")]
    assert seen == history and all(a is b for a, b in zip(seen, history, strict=True))
    assert set(history[0]) == RECORD_KEYS
    assert RECORD_KEYS <= set(history[1])
    assert history[0]["n"] == 250 and history[1]["n"] == 100
    for record in history:
        assert 0.0 <= record["accuracy"] <= 1.0 and record["loss"] > 0.0
        assert 0.0 < record["lr"] <= 0.05 and record["seconds"] >= 0.0


@pytest.mark.parametrize(("log_every", "train_epochs"), [
    (2, [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]),   # 8 batches per epoch: divides evenly
    (3, [0.375, 0.75, 1.0, 1.375, 1.75, 2.0]),           # the epoch's end record is added
])
def test_log_every_emits_running_train_records(make_loaders, log_every, train_epochs):
    train_loader, eval_loader = make_loaders()
    assert len(train_loader) == 8                      # 250 images, batch 32
    history = train.train(tiny_cnn(), train_loader, eval_loader,
                          train.TrainConfig(epochs=2, log_every=log_every))
    assert [r["epoch"] for r in history if r["split"] == "train"] == pytest.approx(train_epochs)
    assert [r["epoch"] for r in history if r["split"] == "eval"] == [1, 2]
    assert history[-2]["n"] == 250                     # the last train record covers the epoch


def test_train_without_eval_loader_gives_train_records_only(make_loaders):
    train_loader, _ = make_loaders()
    history = train.train(tiny_cnn(), train_loader, None, train.TrainConfig(epochs=2))
    assert [(r["epoch"], r["split"]) for r in history] == [(1, "train"), (2, "train")]
    assert history[0]["seconds"] <= history[1]["seconds"]


def test_train_loss_decreases(make_loaders):
    torch.manual_seed(0)
    train_loader, eval_loader = make_loaders()
    history = train.train(tiny_cnn(), train_loader, eval_loader, train.TrainConfig(epochs=3, lr=0.1))
    train_loss = [r["loss"] for r in history if r["split"] == "train"]
    eval_loss = [r["loss"] for r in history if r["split"] == "eval"]
    assert train_loss[2] < train_loss[0]
    assert eval_loss[2] < eval_loss[0]
    assert eval_loss[2] < math.log(10)   # better than a uniform guess over 10 classes


@pytest.mark.parametrize("epochs", [0, -1])
def test_train_rejects_non_positive_epochs(make_loaders, epochs):
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        train.train(tiny_cnn(), make_loaders()[0], None, train.TrainConfig(epochs=epochs))


def _trained_state(make_loaders, seed: int) -> dict[str, torch.Tensor]:
    repro.seed_everything(seed)
    model = tiny_cnn()
    train_loader, _ = make_loaders(seed)
    train.train(model, train_loader, None, train.TrainConfig(epochs=2, augment=True, seed=seed))
    return model.state_dict()


def test_train_is_deterministic_for_fixed_seeds(make_loaders):
    first = _trained_state(make_loaders, 0)
    second = _trained_state(make_loaders, 0)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    other = _trained_state(make_loaders, 1)
    assert not torch.equal(first["0.weight"], other["0.weight"])


# fine_tune --------------------------------------------------------------------------------------

def test_fine_tune_trains_a_copy_and_leaves_the_input_untouched(make_loaders):
    torch.manual_seed(0)
    model = tiny_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_loader, eval_loader = make_loaders()
    seen = []
    tuned, history = train.fine_tune(model, train_loader, eval_loader, callbacks=[seen.append])
    torch.testing.assert_close(model.state_dict(), before, rtol=0, atol=0)
    assert tuned is not model
    assert not torch.equal(tuned.state_dict()["0.weight"], before["0.weight"])
    assert not torch.equal(tuned.state_dict()["1.running_mean"], before["1.running_mean"])
    assert [r["split"] for r in history] == ["train", "eval"] and seen == history
    assert history[0]["lr"] <= 0.01   # the fine-tuning default peak


# command line -----------------------------------------------------------------------------------

def test_main_writes_a_loadable_checkpoint_and_a_consistent_card(monkeypatch, tmp_path, fashion_subset):
    # train.main reads Fashion-MNIST through data.fashion_mnist_loaders; a 200-image slice of the
    # subset (1,000 test images) keeps this end-to-end run short.
    s = fashion_subset
    train_idx = data.balanced_indices(s.y_train, 20)
    test_idx = data.balanced_indices(s.y_test, 100)
    small = data.ImageData(s.x_train[train_idx], s.y_train[train_idx], s.x_test[test_idx],
                           s.y_test[test_idx], "test slice", s.classes, s.mean, s.std)
    calls = []

    def small_loaders(**kwargs: object) -> data.Loaders:
        calls.append(kwargs)
        return data.make_loaders(small, batch_size=kwargs["batch_size"], seed=kwargs["seed"])

    monkeypatch.setattr(data, "fashion_mnist_loaders", small_loaders)
    argv = ["--source", "subset", "--epochs", "1", "--model", "vgg16_slim", "--out", str(tmp_path)]
    card = train.main(argv)

    weights, card_path = tmp_path / "vgg16_slim.pt", tmp_path / "vgg16_slim.json"
    assert json.loads(card_path.read_text()) == json.loads(json.dumps(card))
    assert set(card) >= {"name", "arch", "params", "data", "recipe", "test_accuracy_full",
                         "test_accuracy_subset", "history", "train_seconds", "machine", "command",
                         "sha256"}
    assert card["name"] == "vgg16_slim"
    assert card["arch"] == {"name": "vgg16_slim", "kwargs": {}}
    assert card["sha256"] == models.sha256(weights)
    assert calls == [{"batch_size": 128, "seed": 0, "source": "subset"}]
    assert card["data"] == {"dataset": "Fashion-MNIST", "source": "test slice", "train_images": 200,
                            "test_images": 1000}
    assert card["test_accuracy_subset"]["n"] == 2000
    assert [(r["epoch"], r["split"]) for r in card["history"]] == [(1, "train"), (1, "eval")]
    assert card["recipe"]["epochs"] == 1 and card["command"].endswith(" ".join(argv))

    model = models.build("vgg16_slim")
    model.load_state_dict(torch.load(weights, weights_only=True))   # strict: every key matches
    assert card["params"] == sum(p.numel() for p in model.parameters())
    model.eval()
    assert train.evaluate(model, data.make_loaders(small).test) == card["test_accuracy_full"]


def test_fine_tune_is_reproducible_whatever_ran_before(make_loaders):
    train_loader, _ = make_loaders()
    model = tiny_cnn()
    model.add_module("drop", nn.Dropout(0.5))          # dropout draws from the global RNG
    config = train.TrainConfig(epochs=1, lr=0.05, seed=3)
    first, _ = train.fine_tune(model, train_loader, None, config)
    torch.rand(100)                                     # consume global randomness in between
    second, _ = train.fine_tune(model, train_loader, None, config)
    for (k, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)
    other, _ = train.fine_tune(model, train_loader, None, train.TrainConfig(epochs=1, lr=0.05, seed=4))
    assert any(not torch.equal(a, b) for a, b in zip(first.parameters(), other.parameters(), strict=True))


# recalibrate_bn ---------------------------------------------------------------------------------

class ModeSpy(nn.Module):
    """Identity that remembers the mode of every forward call (stands in for dropout)."""

    def __init__(self) -> None:
        super().__init__()
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        return x


def scaled_bn_net() -> nn.Sequential:
    """1x1 conv with channel 0 = 2·x and channel 1 = 1 − x, then BN (running stats 0/1), then a spy."""
    conv = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([2.0, -1.0]).reshape(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, 1.0]))
    return nn.Sequential(conv, nn.BatchNorm2d(2), ModeSpy())


def two_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Pixels {1, 3, 5, 7} (mean 4, unbiased var 20/3) and {0, 0, 0, 4} (mean 1, unbiased var 4)."""
    return [(torch.tensor([1.0, 3.0, 5.0, 7.0]).reshape(2, 1, 1, 2), torch.zeros(2, dtype=torch.long)),
            (torch.tensor([0.0, 0.0, 0.0, 4.0]).reshape(2, 1, 1, 2), torch.zeros(2, dtype=torch.long))]


@pytest.mark.parametrize("training", [True, False])
def test_recalibrate_bn_gives_hand_computed_statistics_and_leaves_the_input_alone(training):
    model = scaled_bn_net().train(training)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    new = train.recalibrate_bn(model, two_batches(), n_images=100, progress=False)
    bn = new[1]
    # cumulative average of the two batches: x has mean (4 + 1)/2 = 2.5 and variance (20/3 + 4)/2 = 16/3;
    # channel 0 = 2x: mean 5, var 64/3; channel 1 = 1 − x: mean −1.5, var 16/3
    torch.testing.assert_close(bn.running_mean, torch.tensor([5.0, -1.5]), atol=1e-5, rtol=0)
    torch.testing.assert_close(bn.running_var, torch.tensor([64 / 3, 16 / 3]), atol=1e-5, rtol=0)
    assert int(bn.num_batches_tracked) == 2 and bn.momentum == 0.1          # momentum restored
    assert new[2].modes == [False, False]                                  # only BatchNorm in train mode
    assert new.training == bn.training == training
    assert new is not model and model[2].modes == []
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], atol=0, rtol=0)
    torch.testing.assert_close(new[0].weight, model[0].weight, atol=0, rtol=0)   # weights untouched


def test_recalibrate_bn_stops_after_n_images(counting_loader):
    batches = two_batches() * 3
    loader = counting_loader(batches)
    new = train.recalibrate_bn(scaled_bn_net(), loader, n_images=3, progress=False)
    assert loader.batches == 2                               # 2 images, then 1 of the second batch
    assert int(new[1].num_batches_tracked) == 2


def test_recalibrating_twice_gives_the_same_model_and_keeps_the_loader_rng(make_loaders):
    train_loader, _ = make_loaders(seed=5)
    model = tiny_cnn().eval()
    state = train_loader.generator.get_state()
    first = train.recalibrate_bn(model, train_loader, n_images=100, progress=False)
    assert torch.equal(train_loader.generator.get_state(), state)
    second = train.recalibrate_bn(model, train_loader, n_images=100, progress=False)
    again = train.recalibrate_bn(first, train_loader, n_images=100, progress=False)
    for k, v in first.state_dict().items():
        torch.testing.assert_close(second.state_dict()[k], v, atol=1e-5, rtol=1e-5, msg=k)
        torch.testing.assert_close(again.state_dict()[k], v, atol=1e-5, rtol=1e-5, msg=k)
    assert not torch.allclose(first[1].running_var, model[1].running_var, atol=1e-3)   # it did change


def test_masked_equals_pruned_after_recalibration():
    from collections import OrderedDict

    from pruning_lib import criteria, selection, surgery

    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict(
        conv1=models.ConvBNReLU(1, 6), conv2=models.ConvBNReLU(6, 8),
        pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(), fc=nn.Linear(8, 3))).eval()
    x = torch.zeros(1, 1, 8, 8)
    plan = selection.plan_uniform(criteria.score_model(model, criteria.l1_norm), 0.5)
    g = torch.Generator().manual_seed(1)
    images = torch.randn(64, 1, 8, 8, generator=g)
    loader = DataLoader(TensorDataset(images, torch.zeros(64, dtype=torch.long)), batch_size=16)
    masked = train.recalibrate_bn(surgery.mask_plan(model, plan, x), loader, progress=False)
    pruned = train.recalibrate_bn(surgery.apply_plan(model, plan, x), loader, progress=False)
    plain = surgery.apply_plan(model, plan, x)
    test = torch.randn(10, 1, 8, 8, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(masked(test), pruned(test), atol=1e-5, rtol=1e-4)
        assert not torch.allclose(pruned(test), plain(test), atol=1e-3)    # recalibration mattered


def test_recalibrate_bn_bad_inputs():
    model = scaled_bn_net()
    with pytest.raises(ValueError, match="n_images"):
        train.recalibrate_bn(model, two_batches(), n_images=0)
    with pytest.raises(ValueError, match="empty loader"):
        train.recalibrate_bn(model, [], progress=False)
    assert model[1].momentum == 0.1 and int(model[1].num_batches_tracked) == 0
    no_bn = nn.Sequential(nn.Conv2d(1, 2, 1))
    with pytest.warns(UserWarning, match="no BatchNorm"):
        copy_ = train.recalibrate_bn(no_bn, two_batches())
    assert copy_ is not no_bn
    torch.testing.assert_close(copy_[0].weight, no_bn[0].weight, atol=0, rtol=0)


def test_recalibrate_bn_keeps_a_frozen_batchnorm_frozen_in_the_copy():
    model = scaled_bn_net().train()
    model[1].eval()                                          # frozen BN inside a model in train mode
    new = train.recalibrate_bn(model, two_batches(), progress=False)
    assert new.training and not new[1].training and new[2].training
