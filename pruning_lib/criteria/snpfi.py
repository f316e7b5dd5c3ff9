"""Filter importance and per-layer sparsity from filter-wise interaction (SNPFI), as a layer game.

SNPFI: Tang, Wei, Li, arXiv:2307.00758; the players of the game are a layer's filters.

The paper has no public code and its one available description is cut off mid-formula, so this module
is **our reconstruction** (W. Tang, X. Wei, B. Li, "Structured Network Pruning by Measuring
Filter-wise Interactions", arXiv:2307.00758, 2023; unverified against the authors' implementation):

* **The game.** The players are the n filters of one conv layer. A coalition S is a keep-mask over
  them (the other layers stay whole). Its value is v(S) = mean over a fixed batch of log P(y | I, S),
  the log-probability of the true class: ``-masked_losses`` (``criteria.ensembles``), so switching
  filters off is exactly removing them.
* **Filter importance** = the Shapley value φ_i = E_π[v(P_i^π ∪ {i}) − v(P_i^π)], over random orders π
  (P_i^π: the filters before i in π), estimated with ``n_permutations`` sampled orders. Each order
  gives n + 1 nested coalitions, evaluated in one vectorised batch of masks.
* **Filter utilisation strength** U(m) = the mean value of the coalitions of size m met along the
  sampled orders: how much the layer can decide with m of its filters working together. The layer
  keeps the smallest m whose gain U(m) − U(0) reaches ``share`` of the full gain U(n) − U(0) (our
  saturation rule), so every layer gets its own sparsity.
* **Recovery** (``recover``): the paper recovers accuracy "without iterative training" by minimising an
  interaction difference between the pruned and the original model; its loss is not available. Our
  stand-in minimises the KL divergence from the original's to the pruned model's predictions on a
  small calibration set for a few steps (knowledge distillation), which matches the two models'
  decisions; it is labelled as ours wherever it is used.

Exact property used in the tests and the lesson: along one order the marginal contributions telescope,
so Σ_i φ_i = v(all) − v(none) holds for every sample (Shapley's efficiency axiom), not only on average.

Introduced in: notebooks/04_filter_interaction.ipynb.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pruning_lib import repro
from pruning_lib.criteria.ensembles import masked_losses
from pruning_lib.scoped import eval_mode


@dataclass(frozen=True)
class SNPFIConfig:
    """Options of the reconstruction (the paper's values are unknown; these are ours).

    Attributes:
        n_permutations: Sampled filter orders per layer (each costs n + 1 masked passes).
        share: A layer keeps the smallest m whose utilisation gain reaches this share of the full gain.
        chunk: Masks per forward pass (``masked_losses``).
        seed: Seeds the orders.
    """

    n_permutations: int = 8
    share: float = 0.95
    chunk: int = 32
    seed: int = 0


def permutation_masks(perms: Tensor) -> Tensor:
    """The n + 1 nested keep-masks along each order: (T, n) orders → (T, n + 1, n) masks.

    Mask [t, k] keeps the first k filters of order t (k = 0 … n).

    Example:
        >>> permutation_masks(torch.tensor([[2, 0, 1]]))[0]
        tensor([[0., 0., 0.],
                [0., 0., 1.],
                [1., 0., 1.],
                [1., 1., 1.]])
    """
    t, n = perms.shape
    position = torch.empty_like(perms)
    position.scatter_(1, perms, torch.arange(n).expand(t, n))             # position[t, i] = rank of i
    k = torch.arange(n + 1)[None, :, None]                                  # (1, n + 1, 1)
    return (position[:, None, :] < k).float()                              # (T, n + 1, n)


def shapley_from_values(perms: Tensor, values: Tensor) -> Tensor:
    """Monte-Carlo Shapley values from the values of the nested coalitions along each order.

    Args:
        perms: (T, n) orders.
        values: (T, n + 1) v of the coalitions of ``permutation_masks(perms)``.

    Returns:
        (n,) φ: the mean over orders of v(P_i ∪ {i}) − v(P_i).
    """
    marginal = values[:, 1:] - values[:, :-1]                               # (T, n): gain of the k-th added
    phi = torch.zeros(perms.shape, dtype=values.dtype)
    phi.scatter_(1, perms, marginal)                                        # phi[t, perms[t, k]] = gain k
    return phi.mean(0)


def coalition_values(model: nn.Module, layer: str, masks: Tensor, batch: tuple[Tensor, Tensor], *,
                     chunk: int = 32) -> Tensor:
    """v(S) = mean log P(y | I, S) for keep-masks S (K, n) over the filters of one conv ``layer``."""
    return -masked_losses(model, [layer], masks, *batch, chunk=chunk)


def layer_game(model: nn.Module, layer: str, batch: tuple[Tensor, Tensor], *,
               config: SNPFIConfig = SNPFIConfig()) -> dict:
    """Shapley importance and utilisation curve of one layer's filters (sampled orders).

    Returns:
        {"phi": (n,) Shapley estimates, "utilisation": (n + 1,) mean v of the size-m coalitions,
        "keep": kept count by the saturation rule, "v_all": v(all filters), "v_none": v(no filter)}.
    """
    n = dict(model.named_modules())[layer].out_channels
    g = torch.Generator().manual_seed(config.seed)
    perms = torch.stack([torch.randperm(n, generator=g) for _ in range(config.n_permutations)])  # (T, n)
    masks = permutation_masks(perms)                                        # (T, n + 1, n)
    values = coalition_values(model, layer, masks.reshape(-1, n), batch, chunk=config.chunk)
    values = values.view(config.n_permutations, n + 1)
    curve = values.mean(0)                                                  # (n + 1,)
    return {"phi": shapley_from_values(perms, values).float(), "utilisation": curve,
            "keep": keep_count(curve, config.share), "v_all": float(curve[-1]), "v_none": float(curve[0])}


def keep_count(curve: Tensor, share: float = 0.95) -> int:
    """The smallest m ≥ 1 with curve[m] − curve[0] ≥ share · (curve[n] − curve[0]).

    If the whole layer gains nothing (curve[n] ≤ curve[0]) the rule has no target; the layer is then
    worth nothing by this measure and keeps 1 filter (the least a layer can keep).

    Examples:
        >>> keep_count(torch.tensor([0.0, 5.0, 9.0, 9.5, 10.0]), 0.9)
        2
        >>> keep_count(torch.tensor([0.0, 1.0, 2.0]), 1.0)
        2
    """
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    gain = curve - curve[0]
    if gain[-1] <= 0:
        return 1
    reached = (gain[1:] >= share * gain[-1]).nonzero()
    return int(reached[0]) + 1 if len(reached) else len(curve) - 1


def snpfi_scores(model: nn.Module, batch: tuple[Tensor, Tensor], *, layers: Iterable[str],
                 config: SNPFIConfig = SNPFIConfig()) -> tuple[dict[str, Tensor], dict[str, dict]]:
    """Play one game per layer: ({layer: φ (n,)}, {layer: ``layer_game`` result})."""
    games = {layer: layer_game(model, layer, batch, config=config) for layer in layers}
    return {layer: game["phi"] for layer, game in games.items()}, games


def exact_shapley(value: Callable[[Tensor], Tensor], n: int) -> Tensor:
    """Exact Shapley values of an n-player game by enumerating all orders.

    For n ≤ 8 (tests and the lesson's hand example). ``value`` maps a (K, n) 0/1 mask tensor to (K,)
    values.
    """
    if n > 8:
        raise ValueError(f"exact enumeration is for n ≤ 8 players (n! orders), got {n}")
    perms = torch.tensor(list(itertools.permutations(range(n))))          # (n!, n)
    values = value(permutation_masks(perms).reshape(-1, n).double()).view(math.factorial(n), n + 1)
    return shapley_from_values(perms, values)


def recover(pruned: nn.Module, original: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], *,
            steps: int = 50, lr: float = 1e-3, temperature: float = 1.0) -> nn.Module:
    """Our stand-in for SNPFI's recovery: distil ``original`` into a copy of ``pruned``.

    A copy of ``pruned`` trained for ``steps`` Adam steps to match
    ``original``'s predictions (KL divergence, no labels used) on batches from ``loader``.

    BatchNorm layers stay in eval mode (their statistics are not re-estimated), so only weights move.
    Neither ``pruned`` nor ``original`` is modified (``original`` runs in eval mode; every
    submodule's mode is restored afterwards).

    Returns:
        The distilled copy of ``pruned``, in eval mode.

    Raises:
        ValueError: ``steps`` > 0 and the loader yields no batch.
    """
    student = copy.deepcopy(pruned).eval()
    device = repro.model_device(student)
    optimiser = torch.optim.Adam(student.parameters(), lr=lr)
    batches = itertools.cycle(loader)
    with eval_mode(original):
        for _ in range(steps):
            x, _y = next(batches, (None, None))
            if x is None:
                raise ValueError("recover(): the loader yielded no batch")
            x = x.to(device)                       # both models on the device of ``pruned``
            with torch.no_grad():
                target = nn.functional.log_softmax(original(x) / temperature, dim=1)
            log_p = nn.functional.log_softmax(student(x) / temperature, dim=1)
            loss = nn.functional.kl_div(log_p, target, log_target=True, reduction="batchmean")
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return student


def game_records(model: nn.Module, batch: tuple[Tensor, Tensor], *, layers: Iterable[str],
                 config: SNPFIConfig = SNPFIConfig()) -> list[dict]:
    """Play one game per layer (as ``snpfi_scores``) and return them as records with wall times.

    Returns:
        ``games_to_records`` rows, one per layer, each with "seconds" (that layer's game);
        ``games_from_records(rows)`` gives what ``snpfi_scores`` returns.
    """
    rows: list[dict] = []
    for layer in layers:
        start = time.perf_counter()
        game = layer_game(model, layer, batch, config=config)
        rows += games_to_records({layer: game}, seconds=round(time.perf_counter() - start, 2))
    return rows


def games_to_records(games: dict[str, dict], **fields: object) -> list[dict]:
    """One JSON-ready record per layer game (``layer_game`` results), for ``records.load_or_compute``.

    Args:
        games: {conv name: {"phi": (n,), "utilisation": (n + 1,), "keep", "v_all", "v_none"}}.
        fields: Numbers or strings added to every record (e.g. ``seconds=``).

    Returns:
        ``[{**fields, "layer", "phi": [n], "utilisation": [n + 1], "keep", "v_all", "v_none"}, ...]``.
    """
    return [{**fields, "layer": name, "phi": game["phi"].detach().cpu().tolist(),
             "utilisation": game["utilisation"].detach().cpu().tolist(),
             "utilisation_dtype": str(game["utilisation"].dtype).removeprefix("torch."),
             "keep": int(game["keep"]),
             "v_all": float(game["v_all"]), "v_none": float(game["v_none"])}
            for name, game in games.items()]


def games_from_records(rows: list[dict]) -> tuple[dict[str, Tensor], dict[str, dict]]:
    """The inverse of ``games_to_records``: ({layer: φ (n,)}, {layer: game}), as ``snpfi_scores`` returns.

    Values read back bit-for-bit (float32 and float64 survive JSON exactly).
    """
    def curve(r: dict) -> Tensor:
        return torch.tensor(r["utilisation"], dtype=getattr(torch, r.get("utilisation_dtype", "float32")))

    games = {r["layer"]: {"phi": torch.tensor(r["phi"], dtype=torch.float32), "utilisation": curve(r),
                          "keep": int(r["keep"]), "v_all": float(r["v_all"]), "v_none": float(r["v_none"])}
             for r in rows}
    return {layer: game["phi"] for layer, game in games.items()}, games
