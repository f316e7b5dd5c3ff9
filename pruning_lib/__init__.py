"""pruning-lab: a tested library for teaching structured filter pruning of CNNs.

Pipeline: ``criteria`` (scores) → ``selection`` (plan) → ``surgery`` (a new, smaller model) →
``metrics``. Import modules, not names: ``from pruning_lib import models, surgery``.

This module imports nothing heavy: ``widgets`` and ``plots`` need the ``[notebooks]`` extra and
are imported only when a notebook asks for them.
"""

__version__ = "0.1.0"
