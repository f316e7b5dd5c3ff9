"""The model zoo: VGG-16 (slim), CIFAR-style ResNet and MobileNet-v1 (slim), built from named units.

Every convolution sits in a named ``ConvBNReLU`` unit (``.conv``, ``.bn``, ``.relu``), so a pruning
plan can name layers such as ``"features.conv9.conv"`` or ``"layer2.0.conv1.conv"``.

Trained checkpoints live in ``data/checkpoints/<name>.pt`` with a model card ``<name>.json``;
``load_pretrained(name)`` verifies the file's sha256 against the card and returns the model in eval
mode.

Introduced in: notebooks/00_tour.ipynb (§The model zoo).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import Tensor, nn

from pruning_lib import repro

# VGG-16's layer pattern: 13 conv 3x3 (numbers = filters) and 5 max-pools ("M"), 1/4 of the widths.
VGG16_SLIM_CFG: tuple[int | str, ...] = (
    16, 16, "M", 32, 32, "M", 64, 64, 64, "M", 128, 128, 128, "M", 128, 128, 128, "M",
)
# MobileNet-v1 pattern: (output channels, stride) of each depthwise-separable block.
MOBILENET_V1_SLIM_CFG: tuple[tuple[int, int], ...] = (
    (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1), (256, 2), (256, 1),
)


class ConvBNReLU(nn.Sequential):
    """Conv2d (no bias) → BatchNorm2d → ReLU, the prunable unit of every model here."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, *, relu: bool = True) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv=nn.Conv2d(c_in, c_out, kernel_size, stride, kernel_size // 2, groups=groups,
                           bias=False),
            bn=nn.BatchNorm2d(c_out),
        )
        if relu:
            layers["relu"] = nn.ReLU()
        super().__init__(layers)


def vgg_features(cfg: tuple[int | str, ...], in_channels: int, *,
                 ceil_mode: bool = False) -> tuple[nn.Sequential, int]:
    """A VGG trunk from a pattern; returns (the trunk, its number of output channels).

    Numbers are 3x3 ``ConvBNReLU`` units (``conv1``, ``conv2`` …), "M" is a 2x2 max-pool (``pool1`` …).
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    c, n_conv, n_pool = in_channels, 0, 0
    for item in cfg:
        if item == "M":
            n_pool += 1
            layers[f"pool{n_pool}"] = nn.MaxPool2d(2, ceil_mode=ceil_mode)
        else:
            n_conv += 1
            layers[f"conv{n_conv}"] = ConvBNReLU(c, int(item))
            c = int(item)
    return nn.Sequential(layers), c


class VGG16Slim(nn.Module):
    """VGG-16's pattern (13 conv 3x3 + BN + ReLU, 5 max-pools) for 28x28 or 32x32 inputs.

    Pools use ``ceil_mode=True`` so that 28 → 14 → 7 → 4 → 2 → 1. Convs are named ``conv1`` …
    ``conv13`` as in the papers (C1 … C13).

    Input (B, in_channels, 28, 28) → logits (B, num_classes).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1,
                 cfg: tuple[int | str, ...] = VGG16_SLIM_CFG) -> None:
        super().__init__()
        self.features, c = vgg_features(cfg, in_channels, ceil_mode=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(c, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, num_classes) of images x (B, C, H, W)."""
        return self.classifier(self.pool(self.features(x)))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 units; identity shortcut, or a 1x1 projection when shapes change."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU(c_in, c_out, 3, stride)
        self.conv2 = ConvBNReLU(c_out, c_out, 3, 1, relu=False)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = ConvBNReLU(c_in, c_out, 1, stride, relu=False)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        """relu(conv2(conv1(x)) + shortcut(x)): (B, c, H, W) → (B, n, H / stride, W / stride).

        c = ``c_in`` input channels, n = ``c_out`` filters of each conv (docs/notation.md).
        """
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNetCifar(nn.Module):
    """CIFAR-style ResNet of depth 6n+2 (He et al. 2016, §4.2): 3 stages of 16/32/64 channels.

    Input (B, in_channels, H, W) → logits (B, num_classes).
    """

    def __init__(self, depth: int = 20, num_classes: int = 10, in_channels: int = 1,
                 widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"ResNet depth must be 6n+2 with n >= 1 (20, 32, 44, 56 …), got {depth}")
        n = (depth - 2) // 6
        self.stem = ConvBNReLU(in_channels, widths[0])
        c = widths[0]
        for stage, width in enumerate(widths, start=1):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(c, width, stride=2 if (stage > 1 and i == 0) else 1))
                c = width
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, num_classes) of images x (B, C, H, W)."""
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


class DepthwiseSeparable(nn.Module):
    """MobileNet-v1 block: depthwise 3x3 unit (groups = channels) then pointwise 1x1 unit."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.dw = ConvBNReLU(c_in, c_in, 3, stride, groups=c_in)
        self.pw = ConvBNReLU(c_in, c_out, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Depthwise, then pointwise: (B, c, H, W) → (B, n, H / stride, W / stride).

        c = ``c_in`` input channels, n = ``c_out`` filters of the pointwise conv (docs/notation.md).
        """
        return self.pw(self.dw(x))


class MobileNetV1Slim(nn.Module):
    """MobileNet-v1 pattern (Howard et al. 2017) with fewer, narrower blocks for 28x28 inputs.

    Input (B, in_channels, H, W) → logits (B, num_classes).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1,
                 cfg: tuple[tuple[int, int], ...] = MOBILENET_V1_SLIM_CFG) -> None:
        super().__init__()
        self.stem = ConvBNReLU(in_channels, 16)
        blocks, c = [], 16
        for c_out, stride in cfg:
            blocks.append(DepthwiseSeparable(c, c_out, stride))
            c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(c, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, num_classes) of images x (B, C, H, W)."""
        return self.classifier(self.pool(self.blocks(self.stem(x))))


_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "vgg16_slim": VGG16Slim,
    "resnet": ResNetCifar,
    "resnet20": lambda **kw: ResNetCifar(depth=20, **kw),
    "resnet56": lambda **kw: ResNetCifar(depth=56, **kw),
    "mobilenet_v1_slim": MobileNetV1Slim,
}
PRETRAINED = ("vgg16_slim", "resnet20", "mobilenet_v1_slim")
# Architectures that optional packages register when imported (the audio CNNs need torchaudio,
# which the core must not import): named here only to say what to import.
_OPTIONAL = {"dcase21_net": "pruning_lib.audio", "vggish_slim": "pruning_lib.audio"}
# Official FSDD split, then the same recipes with speaker "theo" held out (a voice never heard).
AUDIO_PRETRAINED = ("dcase21_net", "vggish_slim", "dcase21_net_speaker-theo", "vggish_slim_speaker-theo")


def architectures() -> tuple[str, ...]:
    """Names ``build`` accepts."""
    return tuple(_BUILDERS)


def register(name: str, builder: Callable[..., nn.Module]) -> None:
    """Add an architecture (e.g. the audio CNNs) so that ``build`` and ``load_pruned`` know it."""
    _BUILDERS[name] = builder


def build(name: str, **kwargs: object) -> nn.Module:
    """Build an untrained model by name; the name and kwargs are stored in ``model.arch_spec``.

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    if name not in _BUILDERS and name in _OPTIONAL:
        raise ValueError(f"{name!r} is registered by {_OPTIONAL[name]}: `import {_OPTIONAL[name]}` first "
                         f"(it needs the [audio] extra: pip install -e '.[audio]')")
    if name not in _BUILDERS:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(_BUILDERS)}")
    model = _BUILDERS[name](**kwargs)
    model.arch_spec = {"name": name, "kwargs": dict(kwargs)}
    return model


# Bring your own model: constructors that ``build_from`` (and so ``surgery.load_pruned``) may call,
# named by import path. Only these prefixes, or a name given to ``register``; never pickled code.
CONSTRUCTOR_PREFIXES = ("pruning_lib.", "torchvision.models.")
_PLAIN = (str, int, float, bool, type(None))


def _check_plain(value: object, where: str) -> None:
    """Raise TypeError unless ``value`` is JSON-like data (what ``weights_only=True`` reads back)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: keys must be strings, got {key!r}")
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN):
        raise TypeError(f"{where} is a {type(value).__name__}; constructor arguments must be plain "
                        "data (str, int, float, bool, None, lists, dicts) so that the file stores no code")


def resolve_constructor(path: str) -> Callable[..., nn.Module]:
    """The callable a constructor path names, if the allow-list permits it.

    Allowed: a name given to ``register`` (e.g. "resnet20"), or an import path under
    ``CONSTRUCTOR_PREFIXES`` ("torchvision.models.resnet18", "pruning_lib.models.ResNetCifar")
    whose object is also defined there (a function a torchvision module imported from ``torch``
    is refused); under ``pruning_lib`` only ``nn.Module`` classes.

    Raises:
        ValueError: the path is outside the allow-list, cannot be imported, or is not callable.
    """
    if not isinstance(path, str):
        raise ValueError(f"a constructor path is a string such as 'torchvision.models.resnet18', "
                         f"got {path!r}")
    if path in _BUILDERS:
        return _BUILDERS[path]
    allowed = (f"the allow-list: names given to models.register ({', '.join(_BUILDERS)}) or import "
               f"paths under {', '.join(p + '*' for p in CONSTRUCTOR_PREFIXES)}")
    if not path.startswith(CONSTRUCTOR_PREFIXES) or not all(part.isidentifier() for part in path.split(".")):
        raise ValueError(f"refusing constructor {path!r}: it is outside {allowed}")
    module_name, _, attr = path.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"constructor {path!r} does not exist ({err})") from err
    home = getattr(obj, "__module__", "") or ""
    module_class = isinstance(obj, type) and issubclass(obj, nn.Module)
    if (not callable(obj) or not (home + ".").startswith(CONSTRUCTOR_PREFIXES)
            or (home.startswith("pruning_lib") and not module_class)):
        raise ValueError(f"refusing constructor {path!r}: it resolves to {home or '?'}."
                         f"{getattr(obj, '__qualname__', obj)!s}, outside {allowed}")
    return obj


def check_constructor_kwargs(kwargs: dict) -> dict:
    """A copy of ``kwargs`` after checking they are plain data and ask for no downloaded weights.

    Raises:
        TypeError: a value that is not plain data (a weights enum, a module, a function).
        ValueError: ``weights``/``pretrained`` other than None/False (loading would download;
            the saved ``state_dict`` carries the weights anyway).
    """
    _check_plain(kwargs, "constructor kwargs")
    for key in ("weights", "weights_backbone", "pretrained"):
        if kwargs.get(key) not in (None, False):
            raise ValueError(f"constructor kwargs {key}={kwargs[key]!r}: rebuilding would download weights; "
                             f"pass {key}=None (the saved state_dict holds the weights)")
    return dict(kwargs)


def build_from(constructor: str, **kwargs: object) -> nn.Module:
    """Build a model from an allow-listed constructor path and plain keyword arguments.

    The path and kwargs are stored in ``model.arch_spec`` ({"constructor", "kwargs"}), so a
    pruned copy can be saved with ``surgery.save_pruned`` and rebuilt by ``surgery.load_pruned``.

    Args:
        constructor: e.g. "torchvision.models.resnet18" (see ``resolve_constructor``).
        **kwargs: Plain data, e.g. ``num_classes=10, weights=None``.

    Raises:
        ValueError, TypeError: see ``resolve_constructor`` and ``check_constructor_kwargs``;
            TypeError also when the constructor does not return an ``nn.Module``.

    Example:
        >>> build_from("torchvision.models.resnet18", num_classes=10).arch_spec["constructor"]
        'torchvision.models.resnet18'
    """
    fn = resolve_constructor(constructor)
    kwargs = check_constructor_kwargs(kwargs)
    model = fn(**kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"{constructor}(**{kwargs}) returned a {type(model).__name__}, not an nn.Module")
    model.arch_spec = {"constructor": constructor, "kwargs": kwargs}
    return model


def prunable_convs(model: nn.Module) -> list[str]:
    """Names of the convs whose output filters a plan may remove (groups == 1), in forward order.

    Depthwise convs are left out: their filters follow the conv that feeds them. These are the
    candidates by type; on a given model, ``surgery.refused_convs(model, example_input)`` lists
    those no plan may touch (the output layer, convs before a grouped conv or a LayerNorm), and
    ``surgery.coupled_groups`` leaves them out.
    """
    return [name for name, m in model.named_modules()
            if isinstance(m, nn.Conv2d) and m.groups == 1]


def check_conv_names(model: nn.Module, names: Iterable[str] | None = None) -> list[str]:
    """Validate conv names against ``model``: the one check behind every ``layers=`` argument.

    Args:
        model: Any model.
        names: Conv names to check; None means every prunable conv.

    Returns:
        The names as a list, in the given order (``prunable_convs(model)`` for None).

    Raises:
        KeyError: a name that is not a prunable conv of ``model`` (the message lists them all).
        TypeError: ``names`` is a single string rather than a list of names.

    Example:
        >>> check_conv_names(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 1)), ["1"])
        ['1']
    """
    available = prunable_convs(model)
    if names is None:
        return available
    if isinstance(names, str):
        raise TypeError(f"expected a list of conv names, got the string {names!r}; write [{names!r}]")
    names = list(names)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise KeyError(f"not prunable convs of this model: {unknown}; available: {available}")
    return names


def conv_widths(model: nn.Module) -> dict[str, int]:
    """{prunable conv name: number of filters (out_channels)} in forward order."""
    modules = dict(model.named_modules())
    return {name: modules[name].out_channels for name in prunable_convs(model)}


def checkpoint_paths(name: str) -> tuple[Path, Path]:
    """(state_dict path, model card path) of a checkpoint.

    The folder is ``data/checkpoints/`` unless ``PRUNING_CHECKPOINT_DIR`` names another one.
    """
    folder = repro.env_path("PRUNING_CHECKPOINT_DIR") or repro.CHECKPOINT_DIR
    return folder / f"{name}.pt", folder / f"{name}.json"


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def model_card(name: str) -> dict:
    """The JSON model card of a shipped checkpoint (architecture, data, recipe, accuracies).

    Raises:
        ValueError: unknown name, or a card that is not valid JSON / lacks "arch" or "sha256"
            (the message names the file). FileNotFoundError: the card is missing.
    """
    if name not in PRETRAINED + AUDIO_PRETRAINED:
        raise ValueError(f"no trained checkpoint named {name!r}; available: "
                         f"{', '.join(PRETRAINED + AUDIO_PRETRAINED)}")
    card_path = checkpoint_paths(name)[1]
    if not card_path.is_file():
        arch, _, speaker = name.partition("_speaker-")
        cli = ("audio.train" if name in AUDIO_PRETRAINED else "train") + f" --model {arch}"
        cli += f" --split speaker:{speaker}" if speaker else ""
        raise FileNotFoundError(f"model card {card_path} is missing; train it with "
                                f"`python -m pruning_lib.{cli}`")
    try:
        card = json.loads(card_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"model card {card_path} is not valid JSON ({err}); restore the file "
                         "from the repository or retrain the model") from err
    missing = [key for key in ("arch", "sha256") if not isinstance(card, dict) or key not in card]
    if missing:
        raise ValueError(f"model card {card_path} lacks {missing}: not a model card")
    return card


def load_pretrained(name: str, device: torch.device | str | None = None) -> nn.Module:
    """Load a shipped, trained checkpoint in eval mode (``weights_only=True``, sha256 verified).

    Args:
        name: One of ``PRETRAINED`` (image models) or ``AUDIO_PRETRAINED`` (FSDD models).
        device: Where the model's parameters go (``repro.device()`` in the lessons); None: the CPU.

    Raises:
        ValueError: unknown name (lists the available ones) or a checksum mismatch.
    """
    card = model_card(name)
    weights = checkpoint_paths(name)[0]
    digest = sha256(weights)
    if digest != card["sha256"]:
        raise ValueError(f"{weights} has sha256 {digest}, the model card says {card['sha256']}")
    model = build(card["arch"]["name"], **card["arch"]["kwargs"])
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.to("cpu" if device is None else device).eval()


def check_resnet(model: nn.Module) -> None:
    """Raise TypeError unless ``model`` is a ``ResNetCifar`` (what depth pruning works on)."""
    if not isinstance(model, ResNetCifar):
        raise TypeError(f"layer pruning here works on ResNetCifar models (resnet20, resnet56, …), "
                        f"got {type(model).__name__}")


def residual_blocks(model: nn.Module, start_stage: int = 3) -> list[str]:
    """Names of the residual blocks from ``start_stage`` on, in depth order ("layer3.0", …).

    Args:
        model: A ``ResNetCifar``.
        start_stage: 1, 2 or 3 (the authors' default ``block = 2`` is stage 3).

    Raises:
        TypeError: not a ``ResNetCifar``. ValueError: a stage outside 1–3.

    Example:
        >>> residual_blocks(ResNetCifar(20), start_stage=3)
        ['layer3.0', 'layer3.1', 'layer3.2']
    """
    check_resnet(model)
    if start_stage not in (1, 2, 3):
        raise ValueError(f"start_stage must be 1, 2 or 3, got {start_stage}")
    return [f"layer{s}.{i}" for s in range(start_stage, 4) for i in range(len(getattr(model, f"layer{s}")))]
