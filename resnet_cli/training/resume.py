"""Resuming a run: every part of a checkpoint's training state that ``train --resume`` reads is checked before
the data is read or a step is taken (types and ranges of the configuration and position, the record's fields,
the optimizer state and its tensors' shapes against the network, the RNG and scaler state), so that a damaged
state fails in one line now, not after an epoch; and a resumed run keeps the data it started with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from ..checkpoint import RECORD_WRITTEN, Checkpoint, CheckpointError, check_record
from ..errors import ResnetCliError
from .config import TrainConfig


def _kept_limits(saved: dict[str, Any], train_limit: int | None, test_limit: int | None) -> tuple[Any, Any]:
    """A resumed run trains and tests on the images it started with: refuse a --limit that would change them."""
    for option, given, key in (("--limit", train_limit, "train_limit"), ("--test-limit", test_limit, "test_limit")):
        if given is not None and given != saved.get(key):
            raise ResnetCliError(f"{option} {given}: the checkpoint's run uses {option} {saved.get(key) or 'none'}, "
                                 f"and a resumed run keeps its data (drop {option})")
    return saved.get("train_limit"), saved.get("test_limit")


def check_resumable(state: Checkpoint) -> TrainConfig:
    """The configuration to continue ``state`` with, after checking every part of its training state that
    resuming reads (types, ranges, the record's fields), so that a damaged state fails now, not after an epoch."""
    where = state.path or "the checkpoint"
    damaged = _damaged(state)
    extra = state.extra
    if not isinstance(extra, dict):
        raise damaged(f"its extra state is a {type(extra).__name__}, not a mapping")
    optimizer = extra.get("optimizer")
    if state.dataset is None or not isinstance(optimizer, dict):
        raise ResnetCliError(f"{where} holds no training state to resume (was it written by 'train'?)")

    if not isinstance(optimizer.get("state"), dict) or not isinstance(optimizer.get("param_groups"), list):
        raise damaged("the optimizer state is not SGD's")
    config = extra.get("config", {})
    if not isinstance(config, dict):
        raise damaged("config is not a mapping")
    for f in dataclasses.fields(TrainConfig):
        if f.name in config and not _same_kind(config[f.name], f.default):
            raise damaged(f"config {f.name} = {str(config[f.name])[:40]!r}")
    _check_position(state, damaged)
    try:
        check_record(state.record, where, RECORD_WRITTEN)
    except CheckpointError as exc:
        raise damaged(str(exc).removeprefix(f"{where}: ")) from None
    try:
        return TrainConfig.from_dict(config).validate()
    except (TypeError, ValueError) as exc:
        raise damaged(str(exc)) from None


def _check_position(state: Checkpoint, damaged: Callable[[str], ResnetCliError]) -> None:
    """Where the run stopped (epoch, step, the epoch's running totals, the best epoch) is whole and consistent."""
    extra = state.extra
    counters = [extra.get("epoch"), extra.get("step")]
    partial = extra.get("partial") or {}
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counters) or \
            extra["epoch"] != len(state.record):
        raise damaged(f"epoch {extra.get('epoch')!r} and step {extra.get('step')!r} with {len(state.record)} "
                      f"epochs in the record")
    if not isinstance(partial, dict) or not all(_same_kind(partial.get(k, 0), 0.0) for k in
                                                ("loss", "correct", "seen", "time")):
        raise damaged("the running totals of the epoch")
    if not all(v is None or _same_kind(v, 0.0) for v in (extra.get("best_error"), extra.get("best_epoch"))):
        raise damaged("the best epoch")


def _damaged(state: Checkpoint) -> Callable[[str], ResnetCliError]:
    """The error for one damaged part of ``state``'s training state."""
    where = state.path or "the checkpoint"
    return lambda what: ResnetCliError(f"{where} cannot be resumed: its training state is damaged ({what})")


def check_resumable_tensors(state: Checkpoint) -> None:
    """The tensors resuming hands to torch fit the checkpoint's network (built on the meta device: shapes, no
    memory), after ``check_resumable`` has checked the containers: one SGD group over
    all its parameters, each momentum buffer of its parameter's shape, a CPU RNG state of torch's kind. torch
    would take a wrong buffer and fail at the first step (or broadcast it silently); this fails before the data
    is read. Kept apart from ``check_resumable``, which reads no tensors, so both move with the resume code."""
    from ..models import build_model

    damaged = _damaged(state)
    with torch.device("meta"):
        model = build_model(state.spec)
    extra = state.extra
    params = list(model.parameters())
    groups = extra["optimizer"]["param_groups"]
    indices = [g.get("params") if isinstance(g, dict) else None for g in groups]
    if len(groups) != 1 or not isinstance(indices[0], list) or indices[0] != list(range(len(params))):
        raise damaged(f"the optimizer's parameter groups do not name the network's {len(params)} parameters")
    names = [name for name, _ in model.named_parameters()]
    for index, entry in extra["optimizer"]["state"].items():
        if not isinstance(index, int) or not 0 <= index < len(params) or not isinstance(entry, dict):
            raise damaged(f"optimizer state for parameter {str(index)[:20]!r}, which the network does not have")
        buffer, weight = entry.get("momentum_buffer"), params[index]
        if buffer is None:
            continue
        if not isinstance(buffer, torch.Tensor) or not buffer.is_floating_point() or buffer.shape != weight.shape:
            got = tuple(buffer.shape) if isinstance(buffer, torch.Tensor) else type(buffer).__name__
            raise damaged(f"the momentum buffer of {names[index]} is {got}; its weight is {tuple(weight.shape)}")
    rng = extra.get("rng_cpu")
    if rng is not None and not (isinstance(rng, torch.Tensor) and rng.dtype == torch.uint8 and rng.dim() == 1):
        raise damaged("the CPU random number generator's state")
    if extra.get("scaler") is not None and not isinstance(extra["scaler"], dict):
        raise damaged("the gradient scaler's state")


def _same_kind(value: Any, default: Any) -> bool:
    """``value`` has the kind of ``default``: a bool for a bool, a whole number for an int, any number for a
    float, a list of numbers for a tuple."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, tuple):
        return isinstance(value, (list, tuple)) and all(_same_kind(v, 0.0) for v in value)
    return True


def saved_epochs(checkpoint: Checkpoint) -> int:
    """The total of epochs a checkpoint written by ``train`` was training for (30 where it does not say)."""
    return check_resumable(checkpoint).epochs
