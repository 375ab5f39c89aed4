"""Which mean and std the images are normalised with before a network sees them (``--normalize``).

A network only gives its published error on inputs normalised as in its training: akamaster's CIFAR-10 ResNets
were trained on CIFAR normalised with ImageNet's statistics, torchvision's and timm's weights with ImageNet's,
resnet-cli's own checkpoints store theirs. What each command uses, in order:

1. ``--normalize imagenet|cifar10|cifar100|none|MEAN,..:STD,..`` when given;
2. a resnet-cli checkpoint's own (stored with its dataset), when measured on that dataset;
3. for a bare state dict on photographs (cifar10, cifar100, imagefolder): ImageNet's (``BARE_DEFAULT``), as
   torchvision, timm and akamaster trained with; on the toy sets (synthetic, digits) their own;
4. otherwise the dataset's own statistics.

The choice is reported as a ``Normalization`` (name, mean, std and where it came from) in every command's output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import DatasetError, DatasetInfo

BARE_DEFAULT = "imagenet"
#: Datasets of photographs, pixels in [0, 1] before normalising: where the bare-state-dict default applies.
PHOTO_DATASETS = ("cifar10", "cifar100", "imagefolder")


def named() -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
    """The names ``--normalize`` takes, with their (mean, std): the statistics each dataset module defines."""
    from .cifar import CIFAR10, CIFAR100
    from .imagefolder import IMAGENET_MEAN, IMAGENET_STD

    return {"imagenet": (tuple(IMAGENET_MEAN), tuple(IMAGENET_STD)), "cifar10": (CIFAR10.mean, CIFAR10.std),
            "cifar100": (CIFAR100.mean, CIFAR100.std), "none": ((0.0,), (1.0,))}


@dataclass(frozen=True)
class Normalization:
    name: str  # imagenet, cifar10, cifar100, none, or "custom"
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str  # where the choice came from, in words: "--normalize", "the checkpoint's", ...

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "mean": list(self.mean), "std": list(self.std), "source": self.source}


def parse_normalization(text: str) -> tuple[str, tuple[float, ...], tuple[float, ...]]:
    """``imagenet`` or ``0.5,0.5,0.5:0.25,0.25,0.25`` -> (name, mean, std)."""
    key = text.strip().lower()
    table = named()
    if key in table:
        return (key, *table[key])
    mean_text, sep, std_text = key.partition(":")
    try:
        if not sep:
            raise ValueError
        mean = tuple(float(v) for v in mean_text.split(","))
        std = tuple(float(v) for v in std_text.split(","))
    except ValueError:
        raise DatasetError(f"--normalize takes {', '.join(table)} or MEAN,..:STD,.. (e.g. 0.5,0.5,0.5:0.2,0.2,0.2), "
                           f"not {text!r}") from None
    if len(mean) != len(std):
        raise DatasetError(f"--normalize {text}: {len(mean)} means but {len(std)} stds")
    if not all(s > 0 for s in std):
        raise DatasetError(f"--normalize {text}: every std must be positive")
    return name_of(mean, std), mean, std


def name_of(mean: tuple[float, ...], std: tuple[float, ...]) -> str:
    """The name of known statistics (to 4 decimals, one or three channels), else ``custom``."""
    for name, (m, s) in named().items():
        if len(mean) not in (1, 3):
            break
        fm, fs = fit_channels(m, s, len(mean), name)
        if all(abs(a - b) < 5e-5 for a, b in zip(fm + fs, tuple(mean) + tuple(std))):
            return name
    return "custom"


def fit_channels(mean: tuple[float, ...], std: tuple[float, ...], channels: int, what: str
                 ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Statistics for ``channels``: one value repeated, three averaged to one (as grey images are), else as is."""
    if len(mean) == channels:
        return tuple(mean), tuple(std)
    if len(mean) == 1:
        return tuple(mean) * channels, tuple(std) * channels
    if channels == 1:
        return (sum(mean) / len(mean),), (sum(std) / len(std),)
    raise DatasetError(f"{what} has {len(mean)} channel values; the images have {channels} channels")


def choose(*, given: str | None, dataset: str | None, info: DatasetInfo | None, stored: DatasetInfo | None,
           bare: bool, channels: int | None = None) -> Normalization | None:
    """The normalisation to use, by the rules in this module's docstring.

    With no data read (``dataset`` and ``info`` None, ``channels`` the network's: ``export``), the network's own
    data is meant: a checkpoint's stored dataset, photographs for a bare state dict; None where nothing says
    what it is (an architecture's untrained weights without ``--normalize``)."""
    if info is not None:
        channels = info.in_channels
    if given is not None:
        name, mean, std = parse_normalization(given)
        source = "--normalize"
    elif stored is not None and (dataset is None or stored.name == dataset):
        mean, std, source = stored.mean, stored.std, "the checkpoint's"
        name = name_of(mean, std)
    elif bare and (dataset is None or dataset in PHOTO_DATASETS):
        name, mean, std = (BARE_DEFAULT, *named()[BARE_DEFAULT])
        source = "default for a bare state dict"
    elif info is not None:
        mean, std, source = info.mean, info.std, f"{dataset}'s own"
        name = name_of(mean, std)
    else:
        return None
    if channels is not None:
        mean, std = fit_channels(tuple(mean), tuple(std), channels, f"--normalize {given}" if given else name)
    return Normalization(name=name, mean=tuple(mean), std=tuple(std), source=source)


def renormalised(dataset: Any, info: DatasetInfo, norm: Normalization) -> tuple[Any, DatasetInfo]:
    """``dataset`` and ``info`` with the images normalised by ``norm`` instead of ``info``'s statistics."""
    import dataclasses

    import torch

    if tuple(norm.mean) == tuple(info.mean) and tuple(norm.std) == tuple(info.std):
        return dataset, info
    new_info = dataclasses.replace(info, mean=tuple(norm.mean), std=tuple(norm.std))
    if isinstance(dataset, torch.utils.data.Subset):
        inner, _ = renormalised(dataset.dataset, info, norm)
        return torch.utils.data.Subset(inner, dataset.indices), new_info
    if not hasattr(dataset, "with_info"):
        raise DatasetError(f"{info.name} cannot be renormalised (--normalize)")
    return dataset.with_info(new_info), new_info


__all__ = ["BARE_DEFAULT", "Normalization", "choose", "named", "parse_normalization",
           "renormalised"]
