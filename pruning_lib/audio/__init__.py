"""Pruning acoustic CNNs on spoken digits (FSDD): the audio domain of pruning-lab.

Needs the ``[audio]`` extra (torchaudio, soundfile). Importing this package registers the audio
architectures (``dcase21_net``, ``vggish_slim``) with ``pruning_lib.models``, so ``models.build``,
``models.load_pretrained`` and ``models.load_pruned`` know them afterwards.

* ``fsdd``: find and read the Free Spoken Digit Dataset (files → clips).
* ``data``: splits (official, speaker held out), loaders and augmentation.
* ``models``: the log-mel front end, DCASE21Net and VGGish-slim.
* ``train``: ``python -m pruning_lib.audio.train --model dcase21_net``.

Introduced in: notebooks/06_audio_pruning.ipynb.
"""

from pruning_lib.audio import models  # noqa: F401  (registers the architectures)
