"""Foreign checkpoints: the containers and key spellings other code saves, and how they map to ours.

Our modules use torchvision's key names (``conv1.weight``, ``layer1.0.bn2.running_var``, ``fc.weight``). Trained
networks in the wild wrap them: in a dict (``{'state_dict': ..., 'best_prec1': ...}``), under a wrapper
module's prefix (``module.`` from ``nn.DataParallel``), or with another repository's names (akamaster's
``linear.`` head, timm's ``resnetv2`` names). This module is the one home for those differences:

- ``CONTAINER_KEYS``: the dict entries a state dict is found under (``unwrap``);
- ``KEY_LAYOUTS``: named key layouts, each a detection rule on the keys and a rename (``map_keys``).
  Prefix layouts (``module.``, ``_orig_mod.``, ``model.``) stack, so they are tried until none applies
  (``module._orig_mod.conv1.weight``: a compiled model in DataParallel); then at most one naming layout.

Everything here works on names (and, for a reshape, a tensor's own methods): no torch import. What was
mapped is returned as ``Mapping`` records, which ``load_checkpoint`` keeps and every command prints.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import CheckpointError

#: Dict entries that hold the weights, outermost first: ``state_dict`` (akamaster, PyTorch Lightning, most
#: trainers), ``model`` / ``net`` (timm's and many research scripts' train loops), ``model_state_dict``
#: (the PyTorch tutorial's checkpoint recipe).
CONTAINER_KEYS = ("state_dict", "model", "net", "model_state_dict")


@dataclass(frozen=True)
class KeyMapping:
    """One thing the loader had to change to read a file: shown to the user, kept as data in JSON."""

    layout: str  # short name: "DataParallel", "akamaster", "container"
    change: str  # what was done, in words: "'module.' prefix stripped"

    def to_dict(self) -> dict[str, str]:
        return {"layout": self.layout, "change": self.change}


@dataclass(frozen=True)
class KeyLayout:
    """A foreign key layout: how to recognise it from the keys, and the rename to ours."""

    name: str
    change: str  # what ``rename`` does, in words
    detect: Callable[[Mapping[str, Any]], bool]
    rename: Callable[[dict[str, Any]], dict[str, Any]]
    prefix: bool = False  # a wrapper's prefix: may stack with other prefixes
    #: The code that writes this layout builds only residual networks: arch inference may drop the plain twin
    #: (option A shortcuts have no weights, so a CIFAR ResNet and its plain net have equal state dicts).
    residual_only: bool = False


def _prefix_layout(name: str, prefix: str) -> KeyLayout:
    return KeyLayout(
        name=name, change=f"'{prefix}' prefix stripped", prefix=True,
        detect=lambda state: bool(state) and all(k.startswith(prefix) for k in state),
        rename=lambda state: {k[len(prefix):]: v for k, v in state.items()},
    )


def _is_akamaster(state: Mapping[str, Any]) -> bool:
    return "linear.weight" in state and "fc.weight" not in state and any(k.startswith("layer1.") for k in state)


def _from_akamaster(state: dict[str, Any]) -> dict[str, Any]:
    # akamaster's resnet.py (and kuangliu's pytorch-cifar): head 'linear', projection shortcut 'shortcut'.
    out = {}
    for key, value in state.items():
        if key.startswith("linear."):
            key = "fc." + key[len("linear."):]
        out[key.replace(".shortcut.", ".downsample.")] = value
    return out


def _is_timm_resnetv2(state: Mapping[str, Any]) -> bool:
    return "stem.conv.weight" in state and any(k.startswith("stages.0.blocks.0.") for k in state)


_TIMM_V2_BLOCK = re.compile(r"stages\.(\d+)\.blocks\.(\d+)\.(norm|conv|downsample\.conv)(\d*)\.(.+)")


def _from_timm_resnetv2(state: dict[str, Any]) -> dict[str, Any]:
    # timm's bottleneck ResNetV2 (resnetv2_50 ... resnetv2_200): stem.conv -> conv1; stages.S.blocks.B.normK/convK ->
    # layer{S+1}.B.bnK/convK (the very first block's norm1 -> the stem's bn1); the projection downsample.conv ->
    # downsample.0; the final norm -> head_bn; the
    # classifier is a 1x1 conv (head.fc, C x F x 1 x 1) where ours is a linear layer (fc, C x F).
    if not any(k.endswith(".conv3.weight") for k in state):
        # PreActBasic's first block adds the stem's output before its norm1 to the branch; ours adds it after
        # the stem's BN and ReLU. The keys would load, the logits would not be timm's: refuse.
        raise CheckpointError("timm's basic-block resnetv2 (resnetv2_18/34) differs from preact_resnet18/34 in "
                              "its first block's shortcut (it carries the stem's output before the first norm); "
                              "only the bottleneck resnetv2 (50, 101, 152, 200) loads")
    out = {}
    for key, value in state.items():
        m = _TIMM_V2_BLOCK.fullmatch(key)
        if m:
            stage, block, kind, num, rest = m.groups()
            part = {"norm": f"bn{num}", "conv": f"conv{num}", "downsample.conv": "downsample.0"}[kind]
            key = f"layer{int(stage) + 1}.{block}.{part}.{rest}"
            if key.startswith("layer1.0.bn1."):  # the first pre-activation follows the stem: ours is its bn1
                key = "bn1." + rest
        elif key.startswith("stem.conv."):
            key = "conv1." + key[len("stem.conv."):]
        elif key.startswith("norm."):
            key = "head_bn." + key[len("norm."):]
        elif key.startswith("head.fc."):
            key = "fc." + key[len("head.fc."):]
            if key == "fc.weight" and len(value.shape) == 4:
                value = value.reshape(value.shape[0], value.shape[1])
        out[key] = value
    return out


KEY_LAYOUTS: tuple[KeyLayout, ...] = (
    _prefix_layout("nn.DataParallel/DDP", "module."),
    _prefix_layout("torch.compile", "_orig_mod."),
    _prefix_layout("PyTorch Lightning", "model."),
    KeyLayout(name="akamaster/pytorch_resnet_cifar10", change="head linear. -> fc. (shortcut. -> downsample. "
              "where present)", detect=_is_akamaster, rename=_from_akamaster, residual_only=True),
    KeyLayout(name="timm resnetv2", change="stem.conv -> conv1, stages.S.blocks.B -> layer{S+1}.B, normK -> "
              "bnK, norm -> head_bn, head.fc 1x1 conv -> fc", detect=_is_timm_resnetv2, rename=_from_timm_resnetv2,
              residual_only=True),
)


def unwrap(obj: Any, is_state_dict: Callable[[Any], bool]) -> tuple[dict[str, Any] | None, list[KeyMapping]]:
    """The state dict inside a loaded object (itself, or under ``CONTAINER_KEYS``, nested up to 3 deep), and
    what was unwrapped; ``(None, [])`` when there is none. ``is_state_dict`` says what a state dict is (the
    caller's rule: str keys, tensor values)."""
    found: list[KeyMapping] = []
    for _ in range(4):
        if is_state_dict(obj):
            return obj, found
        if not isinstance(obj, dict):
            return None, []
        entry = next((k for k in CONTAINER_KEYS if isinstance(obj.get(k), dict)), None)
        if entry is None:
            return None, []
        beside = sorted(str(k) for k in obj if k != entry)
        what = f"weights from the '{entry}' entry"
        if beside:
            shown = ", ".join(beside[:4]) + (", ..." if len(beside) > 4 else "")
            what += f" (beside it: {shown})"
        found.append(KeyMapping("a checkpoint dict", what))
        obj = obj[entry]
    return None, []


def map_keys(state: dict[str, Any]) -> tuple[dict[str, Any], list[KeyMapping], list[KeyLayout]]:
    """``state`` renamed to our layout: (renamed state, what was changed, the layouts that applied)."""
    applied: list[KeyLayout] = []
    prefixes = [layout for layout in KEY_LAYOUTS if layout.prefix]
    while True:  # prefixes stack: strip until none applies
        layout = next((p for p in prefixes if p.detect(state)), None)
        if layout is None:
            break
        state = layout.rename(state)
        applied.append(layout)
    naming = next((layout for layout in KEY_LAYOUTS if not layout.prefix and layout.detect(state)), None)
    if naming is not None:
        state = naming.rename(state)
        applied.append(naming)
    return state, [KeyMapping(layout.name, layout.change) for layout in applied], applied
