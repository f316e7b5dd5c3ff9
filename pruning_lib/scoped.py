"""Changes to a model that are undone on exit: temporary hooks and eval mode.

Many functions here look inside a model (record activations, switch filters off, count MACs) or
evaluate it. They must leave the caller's model exactly as they found it, also when they raise:

* ``hooks``: registers forward (pre-)hooks and removes every one of them on exit.
* ``eval_mode``: puts models in eval mode and, on exit, gives every submodule back its own
  ``training`` flag (a model in train mode with a frozen, eval-mode BatchNorm stays that way;
  ``model.train(was_training)`` would not restore it).

Example:
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).train()
    >>> _ = net[1].eval()                   # a frozen BatchNorm inside a model in train mode
    >>> seen = []
    >>> with eval_mode(net), hooks(forward=[(net[0], lambda m, i, o: seen.append(o.shape))]):
    ...     _ = net(torch.zeros(1, 1, 4, 4))
    >>> seen, net.training, net[1].training, dict(net[0]._forward_hooks)
    ([torch.Size([1, 2, 2, 2])], True, False, {})
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch  # noqa: F401  (used by the doctest)
from torch import nn

Hook = tuple[nn.Module, Callable]   # (module, hook function)


@contextmanager
def hooks(*, forward: Iterable[Hook] = (), pre: Iterable[Hook] = ()) -> Iterator[None]:
    """Register forward hooks and forward pre-hooks for the ``with`` block; remove all on exit.

    Args:
        forward: (module, hook) pairs; ``hook(module, inputs, output)`` may return a new output.
        pre: (module, hook) pairs; ``hook(module, inputs)`` may return new inputs.

    Yields:
        Nothing; the hooks are active inside the block and gone after it, even if it raises (or
        if registering a later hook fails).
    """
    handles = []
    try:
        for module, fn in forward:
            handles.append(module.register_forward_hook(fn))
        for module, fn in pre:
            handles.append(module.register_forward_pre_hook(fn))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """Put ``models`` in eval mode for the ``with`` block; restore every submodule's flag on exit.

    Args:
        *models: Any modules (the same module may appear twice).

    Yields:
        Nothing; on exit each submodule's ``training`` flag is exactly what it was before, even if
        the block raises.
    """
    flags = [(m, m.training) for model in models for m in model.modules()]
    try:
        for model in models:
            model.eval()
        yield
    finally:
        for module, flag in reversed(flags):
            module.training = flag
