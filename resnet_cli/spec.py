"""ArchSpec: everything that defines an architecture, as plain data.

A spec is the one source that both the torch builder (``resnet_cli.models``) and the torch-free analytic
counter (``resnet_cli.plan``) read, so they can be checked against each other. It round-trips through JSON
(a checkpoint carries its own), and any field can be overridden by name from the API or the CLI.

This module must not import torch: ``archs`` and ``params`` run without it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError, did_you_mean
from .limits import check_spec

# imagenet: 7x7/2 conv (+ BN-ReLU) + 3x3/2 max-pool; cifar: one 3x3 conv; deep: ResNet-D's three 3x3 convs
# (stem_width / 2, stem_width / 2, stem_width; the first at stride 2) + BN-ReLU + max-pool (He et al. 2019,
# "Bag of Tricks", Fig. 2; timm's stem_type='deep').
STEMS = ("imagenet", "cifar", "deep")
# Shortcut options of He et al. 2015 (§3.3 and §4.2): A zero-pads the identity where the shape changes
# (no parameters), B projects with a 1x1 conv + BN only where the shape changes, C projects on every block.
SHORTCUTS = ("A", "B", "C")
# Where BN and ReLU sit in a residual unit (He et al. 2016, "Identity Mappings", Fig. 4 (a)-(e)).
PLACEMENTS = ("original", "bn_after_add", "relu_before_add", "relu_preact", "full_preact")
# What the shortcut does (He et al. 2016, Fig. 2 and Table 1): identity; constant scaling (lambda on the
# shortcut, 1 - lambda on the branch); exclusive gating ((1 - g) on the shortcut, g on the branch, g a 1x1 conv +
# sigmoid with bias b_g); shortcut-only gating ((1 - g) on the shortcut only); a 1x1 conv on every shortcut;
# dropout on the shortcut.
SHORTCUT_MODES = ("identity", "scaling", "exclusive_gating", "shortcut_gating", "conv", "dropout")
GATED_MODES = ("exclusive_gating", "shortcut_gating")
# Metadata of the fields that only some families read (each Family lists its own in ``fields``): validation
# refuses a non-default value of such a field on a family that would ignore it.
FAMILY_ONLY = {"family_only": True}


@dataclass(frozen=True)
class ArchSpec:
    """A residual (or plain) network, described by value.

    ``widths`` are the *planes* of each stage, as in torchvision: a bottleneck stage outputs
    ``widths[i] * 4`` channels, and its inner 3x3 conv has ``int(widths[i] * width_per_group / 64) * groups``.
    """

    name: str
    family: str = "resnet"
    block: str = "basic"
    layers: tuple[int, ...] = (2, 2, 2, 2)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    strides: tuple[int, ...] = (1, 2, 2, 2)
    stem: str = "imagenet"
    stem_width: int = 64
    shortcut: str = "B"
    residual: bool = True
    groups: int = 1
    width_per_group: int = 64
    num_classes: int = 1000
    input_size: int = 224  # input height in pixels, and its width unless input_width says otherwise
    # Input width in pixels for a non-square input (``--input-size 224x320`` of params and compare); None = square.
    input_width: int | None = None
    in_channels: int = 3
    # Stochastic depth (Huang et al. 2016): survival probability p_L of the last block, linear decay
    # p_l = 1 - (l / L)(1 - p_L); None = every block always runs.
    stochastic_depth: float | None = None
    # BN/ReLU placement and shortcut variant of the identity-mappings paper (PLACEMENTS, SHORTCUT_MODES).
    placement: str = field(default="original", metadata=FAMILY_ONLY)
    shortcut_mode: str = field(default="identity", metadata=FAMILY_ONLY)
    shortcut_scale: float = 0.5  # lambda of constant scaling
    gate_bias: float = -6.0  # b_g, the initial bias of a gate (He et al. 2016 Table 1's best: -6)
    shortcut_dropout: float = 0.5  # drop rate of the dropout shortcut
    # Dropout between the convolutions of a block (Wide ResNets) or after a dense layer (DenseNets).
    dropout: float = 0.0
    # DenseNet (Huang et al. 2017): growth rate k, bottleneck width bn_size * k of the 1x1 conv (0 = no
    # bottleneck, the plain "DenseNet"), compression theta of the transitions (1.0 = none).
    growth_rate: int = field(default=32, metadata=FAMILY_ONLY)
    bn_size: int = field(default=4, metadata=FAMILY_ONLY)
    compression: float = field(default=0.5, metadata=FAMILY_ONLY)
    # Squeeze-and-excitation (Hu et al. 2018) at the end of each block's branch: reduction ratio r (0 = none; the
    # paper's r = 16). Its hidden width is C / r rounded to a multiple of se_divisor (timm rounds to 8; 1 = C / r).
    se_reduction: int = field(default=0, metadata=FAMILY_ONLY)
    se_divisor: int = field(default=1, metadata=FAMILY_ONLY)
    # Where a bottleneck strides: False = in the 3x3 (torchvision's "v1.5"); True = in the first 1x1, as in the
    # ResNet paper's models (He et al. 2015, Table 1) and He et al.'s pre-activation CIFAR code.
    stride_in_1x1: bool = field(default=False, metadata=FAMILY_ONLY)
    # ResNet-D's shortcut (He et al. 2019, Fig. 2c): a projection that strides average-pools 2x2 first, then
    # projects with a stride-1 1x1 conv (timm's avg_down; downsample.0 pool, .1 conv, .2 BN).
    avg_down: bool = field(default=False, metadata=FAMILY_ONLY)
    # Whether the stem ends in BN-ReLU. None = the authors' layout: yes, except a CIFAR stem under full
    # pre-activation (the first block's BN-ReLU follows the conv). Under full pre-activation the first block
    # pre-activates exactly when the stem does not: False on an ImageNet stem is timm's resnetv2 (conv, max-pool,
    # then the first block's BN-ReLU); the default is fb.resnet.torch's preresnet.lua (conv-BN-ReLU-max-pool).
    stem_norm: bool | None = field(default=None, metadata=FAMILY_ONLY)
    description: str = field(default="", compare=False)

    # ----------------------------------------------------------------- derived facts
    @property
    def expansion(self) -> int:
        return 4 if self.block == "bottleneck" else 1

    @property
    def input_hw(self) -> tuple[int, int]:
        """(height, width) of the input in pixels."""
        return self.input_size, self.input_size if self.input_width is None else self.input_width

    @property
    def num_blocks(self) -> int:
        """Residual blocks (units that have a shortcut) in forward order: what paths and lesion count.

        For a DenseNet a block is one dense layer (its new feature maps are what a lesion zeroes)."""
        return sum(self.layers)

    @property
    def depth(self) -> int:
        """Weighted layers on the longest path, as the papers of the family count them (He et al.: convs in blocks
        + stem + fc; DenseNets also count the transition convs; CIFAR Wide ResNets count the three shortcut convs
        instead of the fc). The family's ``depth`` (families.py) says how."""
        return self.family_entry.depth(self)

    @property
    def kind(self) -> str:
        """A short human label for listings: the family, and what sets this net apart inside it."""
        return self.family_entry.kind(self)

    @property
    def family_entry(self) -> Any:
        """This spec's row of the family table (families.Family): its checks, plan, builder and labels."""
        from .families import family_of  # here, not at the top: the table imports the plans, which import us

        return family_of(self.family)

    def survival_probabilities(self) -> tuple[float, ...]:
        """p_l for blocks l = 1..L in forward order: 1 - (l/L)(1 - p_L) (Huang et al. 2016, eq. 4); all 1.0
        without stochastic depth."""
        n = self.num_blocks
        if self.stochastic_depth is None:
            return (1.0,) * n
        p_last = self.stochastic_depth
        return tuple(1.0 - (l / n) * (1.0 - p_last) for l in range(1, n + 1))

    @property
    def expected_depth(self) -> float:
        """Expected number of blocks that run in a training step: sum of p_l = L - (1 - p_L)(L + 1)/2 ((3L - 1)/4 for
        p_L = 0.5), in exact arithmetic from p_L as written (JSON shows 40.25, not the float sum 40.25000000000002)."""
        from fractions import Fraction

        n = self.num_blocks
        if self.stochastic_depth is None:
            return float(n)
        return float(n - (1 - Fraction(str(self.stochastic_depth))) * (n + 1) / 2)

    # ----------------------------------------------------------------- validation
    def validate(self) -> ArchSpec:
        """Raise SpecError, with the reason, when the spec cannot describe a network. Returns self.

        The fields every family reads are checked here; then the family's own ``check`` (families.py) checks the
        fields only it reads."""
        family = self.family_entry
        if self.block not in family.blocks:
            raise SpecError(f"block of a {self.family} net must be one of {', '.join(family.blocks)}, "
                            f"not {self.block!r}")
        _check_choices(self)
        _check_family_fields(self, family)
        _check_rates(self)
        _check_stages(self)
        check_spec(self)  # sizes, in one module with every other limit
        family.check(self)
        return self

    # ----------------------------------------------------------------- plain data
    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_json(self) -> str:
        import json  # here, not at the top: the commands that count never read or write a spec's JSON

        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SpecError(f"unknown spec field {unknown[0]!r}{did_you_mean(unknown[0], names)}")
        if "name" not in data:
            raise SpecError("a spec needs a name")
        kwargs = {k: coerce_field(k, v) for k, v in data.items()}
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        import json

        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"spec is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise SpecError("a spec in JSON must be an object")
        return cls.from_dict(data)

    def replace(self, **overrides: Any) -> ArchSpec:
        """A copy with fields overridden by name (values coerced to the field's type), validated."""
        names = {f.name for f in dataclasses.fields(self)}
        for key in overrides:
            if key not in names:
                raise SpecError(f"unknown spec field {key!r}{did_you_mean(key, names)}")
        coerced = {k: coerce_field(k, v) for k, v in overrides.items()}
        changed = [k for k, v in coerced.items() if k not in ("name", "description") and v != getattr(self, k)]
        if changed and "description" not in coerced and self.description:
            # The registry's description names the original widths, depths, ...: say what no longer holds.
            mods = ", ".join(f"{k}={_describe(coerced[k])}" for k in changed)
            sep = ", " if "; modified: " in self.description else "; modified: "
            coerced["description"] = f"{self.description}{sep}{mods}"
        return dataclasses.replace(self, **coerced).validate()


def _check_choices(spec: ArchSpec) -> None:
    for name, choices in (("placement", PLACEMENTS), ("shortcut_mode", SHORTCUT_MODES), ("stem", STEMS),
                          ("shortcut", SHORTCUTS)):
        value = getattr(spec, name)
        if value not in choices:
            raise SpecError(f"{name} must be one of {', '.join(choices)}, not {value!r}{did_you_mean(value, choices)}")


def _check_family_fields(spec: ArchSpec, family: Any) -> None:
    from .families import families

    for f in dataclasses.fields(spec):
        if f.metadata.get("family_only") and f.name not in family.fields and getattr(spec, f.name) != f.default:
            readers = " and ".join(name for name, other in families().items() if f.name in other.fields)
            raise SpecError(f"{f.name} applies to {readers} nets, not to {spec.family}")


def _check_rates(spec: ArchSpec) -> None:
    if not 0.0 <= spec.dropout < 1.0 or not 0.0 <= spec.shortcut_dropout < 1.0:
        raise SpecError("dropout rates must be in [0, 1)")
    if not 0.0 <= spec.shortcut_scale <= 1.0:
        raise SpecError(f"shortcut_scale (lambda) must be in [0, 1], not {spec.shortcut_scale}")
    if spec.stochastic_depth is not None and not spec.residual:
        # a plain block has nothing to fall back on: its forward ignores the survival probabilities, so the
        # expected training MACs would be claimed for a net that never drops a block
        raise SpecError("stochastic depth drops a block's residual branch and keeps its shortcut; a plain net "
                        "(residual=false) has no shortcut to keep")
    if spec.stochastic_depth is not None and not 0.0 < spec.stochastic_depth <= 1.0:
        raise SpecError(f"stochastic_depth (p_L, the last block's survival probability) must be in (0, 1], "
                        f"not {spec.stochastic_depth}")


def _check_stages(spec: ArchSpec) -> None:
    if not spec.layers:
        raise SpecError("layers must name at least one stage")
    if any(n < 1 for n in spec.layers):
        raise SpecError(f"every stage needs at least one block (layers={list(spec.layers)})")
    if any(w < 1 for w in spec.widths) or spec.stem_width < 1:
        raise SpecError("widths must be positive")
    if any(s not in (1, 2) for s in spec.strides):
        raise SpecError(f"strides must be 1 or 2 (got {list(spec.strides)})")
    if spec.groups < 1 or spec.width_per_group < 1:
        raise SpecError("groups and width_per_group must be positive")


def check_stage_lengths(spec: ArchSpec) -> None:
    """For families whose stages each have a width and a stride (not DenseNets: there the growth rate and the
    transitions imply them)."""
    if not (len(spec.layers) == len(spec.widths) == len(spec.strides)):
        raise SpecError(
            f"layers, widths and strides must have one entry per stage "
            f"(got {len(spec.layers)}, {len(spec.widths)}, {len(spec.strides)})"
        )


def _describe(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, (tuple, list)) else str(value)


def field_types() -> dict[str, Any]:
    return typing.get_type_hints(ArchSpec)


def _base_type(tp: Any) -> Any:
    """`int | None` -> int; other annotations unchanged."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def coerce_field(name: str, value: Any) -> Any:
    """Turn a JSON value or a CLI string into the type of spec field ``name``, or raise SpecError."""
    hints = field_types()
    if name not in hints:
        raise SpecError(f"unknown spec field {name!r}{did_you_mean(name, hints)}")
    tp = hints[name]
    optional = type(None) in typing.get_args(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null", "")):
        if optional:
            return None
        raise SpecError(f"spec field {name!r} cannot be empty")
    tp = _base_type(tp)
    try:
        if typing.get_origin(tp) is tuple:
            (item_tp, *_rest) = typing.get_args(tp)
            if isinstance(value, str):
                value = [v for v in value.replace("x", ",").split(",") if v.strip()]
            return tuple(_scalar(item_tp, v) for v in value)
        return _scalar(tp, value)
    except (TypeError, ValueError):
        raise SpecError(f"spec field {name!r} cannot be {value!r}") from None


def _scalar(tp: Any, value: Any) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    if tp is int:
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        if isinstance(value, str):
            value = value.strip().replace("_", "")
        return int(value)
    if tp is float:
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    return value
