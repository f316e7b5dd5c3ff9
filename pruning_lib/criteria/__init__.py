"""Filter-importance criteria: plain functions from weights (or a model and data) to scores.

The one convention: ``scores[i]`` is the importance of output filter ``i``; HIGHER = KEEP.

* Passive criteria: ``f(weight) -> Tensor[n_filters]`` (``l1_norm``, ``l2_norm``, ``spectral_norm``,
  ``fpgm``, ``operator_norm``, ``operator_norm_equivariant``, ``random_scores``). ``score_model``
  applies one to every prunable conv of a model.
* Active criteria take a model and a data loader and return ``{layer_name: Tensor[n_filters]}``
  (``mean_activation``, ``apoz``, ``hrank``).

Introduced in: notebooks/00_tour.ipynb (§The pipeline); the operator norm and the active criteria in
notebooks/01_norms_and_operator_norm.ipynb (§The math).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from pruning_lib.criteria.active import apoz, hrank, mean_activation
from pruning_lib.criteria.norms import fpgm, l1_norm, l2_norm, random_scores, spectral_norm
from pruning_lib.criteria.operator_norm import (
    operator_norm,
    operator_norm_equivariant,
    operator_norm_reference,
    operator_norm_svd,
)
from pruning_lib.models import check_conv_names

PassiveCriterion = Callable[[Tensor], Tensor]
PASSIVE_CRITERIA: dict[str, PassiveCriterion] = {
    "l1": l1_norm,
    "l2": l2_norm,
    "fpgm": fpgm,
    "random": random_scores,
    "spectral": spectral_norm,
    "operator_norm": operator_norm,
    "operator_norm_eq": operator_norm_equivariant,
}

ActiveCriterion = Callable[..., dict[str, Tensor]]   # (model, loader, *, n_images, layers) -> scores
ACTIVE_CRITERIA: dict[str, ActiveCriterion] = {
    "mean_activation": mean_activation,
    "apoz": apoz,
    "hrank": hrank,
}

__all__ = ["ACTIVE_CRITERIA", "PASSIVE_CRITERIA", "apoz", "fpgm", "hrank", "l1_norm", "l2_norm",
           "mean_activation", "operator_norm", "operator_norm_equivariant", "operator_norm_reference",
           "operator_norm_svd", "random_scores",
           "score_model", "spectral_norm"]


def score_model(model: nn.Module, criterion: PassiveCriterion,
                layers: list[str] | None = None) -> dict[str, Tensor]:
    """Score every prunable conv of ``model`` (or only ``layers``) with a passive criterion.

    Args:
        model: Any model; it is not modified.
        criterion: ``f(weight (n, c, kh, kw)) -> scores (n,)``, e.g. ``l1_norm``.
        layers: Conv names to score; default ``models.prunable_convs(model)``.

    Returns:
        ``{conv name: scores (n_filters,)}`` in forward order, on the CPU (the criterion runs on
        the weights' device, except where its docstring says it moves them to the CPU).

    Raises:
        KeyError: if a requested layer is not a prunable conv of the model.
    """
    modules = dict(model.named_modules())
    return {name: criterion(modules[name].weight.detach()).cpu()
            for name in check_conv_names(model, layers)}
