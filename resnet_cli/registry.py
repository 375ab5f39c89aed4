"""Names users type -> ArchSpec.

Two kinds of names: registered ones (``resnet50``: a function returning a spec, one short registration each)
and parametric ones (``cifar_resnet<depth>``: a regular expression and a parser). ``get_spec`` tries both and
answers unknown names with "did you mean".

Torch-free, like the spec.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import SpecError, UnknownArchError, did_you_mean
from .spec import ArchSpec

_REGISTRY: dict[str, Callable[[], ArchSpec]] = {}


@dataclass(frozen=True)
class Parametric:
    """A family of names like ``cifar_resnet<depth>``: ``pattern`` is matched whole."""

    pattern: re.Pattern[str]
    template: str  # shown to users, e.g. "cifar_resnet<depth>"
    parse: Callable[[re.Match[str]], ArchSpec]
    help: str


_PARAMETRIC: list[Parametric] = []


def register(name: str) -> Callable[[Callable[..., ArchSpec]], Callable[..., ArchSpec]]:
    """Decorator: ``@register("resnet18")`` on a function that returns the spec."""

    def deco(fn: Callable[..., ArchSpec]) -> Callable[..., ArchSpec]:
        if name in _REGISTRY:
            raise RuntimeError(f"architecture {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn

    return deco


def register_spec(name: str, **fields: Any) -> None:
    """Register a name whose spec is just these fields (the common case)."""
    if name in _REGISTRY:
        raise RuntimeError(f"architecture {name!r} registered twice")
    _REGISTRY[name] = lambda: ArchSpec(name=name, **fields)


def register_parametric(pattern: str, template: str, help: str) -> Callable:
    def deco(fn: Callable[[re.Match[str]], ArchSpec]) -> Callable[[re.Match[str]], ArchSpec]:
        _PARAMETRIC.append(Parametric(re.compile(pattern), template, fn, help))
        return fn

    return deco


def _ensure_loaded() -> None:
    # Each family's zoo module registers its names on import; importing here keeps registry.py free of a cycle.
    import importlib

    from .families import families

    for family in families().values():
        importlib.import_module(family.zoo)


def list_archs(pattern: str | None = None) -> list[str]:
    """Registered names, sorted naturally (resnet18 before resnet101), filtered by a glob pattern."""
    _ensure_loaded()
    names = sorted(_REGISTRY, key=_natural_key)
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def parametric_templates(pattern: str | None = None) -> list[Parametric]:
    """The parametric families, filtered by a glob pattern: one is kept when the pattern matches its template
    (``*plain*`` matches cifar_plain<depth>) or its name with the pattern's numbers (``cifar_resnet1*``: cifar_resnet1,
    the start of cifar_resnet110)."""
    _ensure_loaded()
    if not pattern:
        return list(_PARAMETRIC)
    numbers = re.findall(r"\d+", pattern)
    return [p for p in _PARAMETRIC if fnmatch.fnmatchcase(p.template, pattern)
            or any(fnmatch.fnmatchcase(name, pattern) for name in _filled(p.template, numbers))]


def _filled(template: str, numbers: list[str]) -> list[str]:
    """The template with its placeholders filled by ``numbers`` in order (['110'] -> cifar_resnet110; ['28'] ->
    wrn28_, the start of wrn28_10), or none where there are more numbers than placeholders."""
    slots = re.findall(r"<[^>]+>", template)
    if len(numbers) > len(slots):
        return []
    for slot, number in itertools.zip_longest(slots, numbers, fillvalue=""):
        template = template.replace(slot, number, 1)
    return [template]


def get_spec(arch: str | ArchSpec, **overrides: Any) -> ArchSpec:
    """The spec for a registered or parametric name (or a spec), with fields overridden, validated."""
    _ensure_loaded()
    if isinstance(arch, ArchSpec):
        spec = arch
    else:
        if not isinstance(arch, str) or not arch.strip():
            raise SpecError("an architecture name is required")
        name = arch.strip()
        key = name.lower()
        if key in _REGISTRY:
            spec = _REGISTRY[key]()
        else:
            spec = _parse_parametric(key)
            if spec is None:
                templates = ", ".join(p.template for p in _PARAMETRIC)
                raise UnknownArchError(
                    f"unknown architecture {name!r}{_did_you_mean(key)}; "
                    f"see 'resnet-cli archs' (parametric names: {templates})"
                )
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return spec.replace(**overrides) if overrides else spec.validate()


def _parse_parametric(name: str) -> ArchSpec | None:
    for p in _PARAMETRIC:
        m = p.pattern.fullmatch(name)
        if m:
            return p.parse(m)
    return None


def _did_you_mean(name: str) -> str:
    """' (did you mean ...?)' for an unknown name: first the valid parametric names that end in it (``plain8`` ->
    cifar_plain8: the family's prefix left out), then the closest of the registered names and of the parametric
    names its numbers make (``resnt8`` -> cifar_resnet8)."""
    instances = _parametric_instances(name)
    return did_you_mean(name, [*_REGISTRY, *instances], first=[n for n in instances if n.endswith(name)])


def _parametric_instances(name: str) -> list[str]:
    """The parametric names made by putting the numbers of ``name`` into each template (``plain8`` ->
    cifar_resnet8, cifar_plain8, ...), those that are valid architectures (a depth of 6n+2, ...)."""
    numbers = re.findall(r"\d+", name)
    if not numbers or any(len(n) > 6 for n in numbers):  # no net has a million layers; int() of 5,000 digits fails
        return []
    found = []
    for p in _PARAMETRIC:
        for candidate in _filled(p.template, numbers):
            m = p.pattern.fullmatch(candidate)
            try:
                if m is not None and p.parse(m).validate() is not None:
                    found.append(candidate)
            except SpecError:
                pass
    return found


def _natural_key(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


# --------------------------------------------------------------------------- what was built
# Fields that say how a spec is described rather than what is built: never reported as overrides.
_NOT_OVERRIDES = ("name", "description")


def spec_overrides(spec: ArchSpec) -> dict[str, Any]:
    """The fields of ``spec`` that differ from the registered (or parametric) architecture of its name, as data
    (JSON-ready: tuples become lists). Empty for an unmodified spec or a name the registry does not know."""
    try:
        base = get_spec(spec.name)
    except SpecError:
        return {}
    mine, theirs = spec.to_dict(), base.to_dict()
    changed = {k: v for k, v in mine.items() if k not in _NOT_OVERRIDES and v != theirs.get(k)}
    if "input_width" in changed:  # a non-square input is both sides: the height belongs with the width
        changed = {"input_size": mine["input_size"], **changed}
    return changed


def spec_label(spec: ArchSpec) -> str:
    """What was built, in words: the arch name and its overrides, e.g. ``resnet110 (shortcut_mode=conv)``.

    Two different nets never share a label; an unmodified arch is its bare name."""
    return label_with_overrides(spec.name, spec_overrides(spec))


def column_label(column: str, spec: ArchSpec, checkpoint: Any = None) -> str:
    """A ``compare`` or ``draw`` column's name: ``spec_label``, or for a column read from a ``checkpoint`` file the
    file's name with what it holds, ``r20.pt (resnet20, shortcut=B)``, so that two checkpoints of one arch are
    told apart."""
    if checkpoint is None:
        return spec_label(spec)
    from pathlib import Path

    return f"{Path(column).name} ({', '.join([spec.name, *_override_parts(spec_overrides(spec))])})"


def label_with_overrides(name: str, overrides: dict[str, Any]) -> str:
    if not overrides:
        return name
    return f"{name} ({', '.join(_override_parts(overrides))})"


def _override_parts(overrides: dict[str, Any]) -> list[str]:
    """``['shortcut=B', 'widths=8,16,32']``: each override as typed."""
    shown = dict(overrides)
    if shown.get("input_width") is not None and "input_size" in shown:  # as typed: --input-size 224x320
        shown["input_size"] = f"{shown['input_size']}x{shown.pop('input_width')}"
    return [f"{k}={','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in shown.items()]
