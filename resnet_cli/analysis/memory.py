"""Memory estimates by torchinfo's counting rule: the one home of the rule, for ``params`` (from the analytic
plan, without torch), ``resnet_cli.summarize`` (from hooks on a module) and the check that refuses, before it
starts, a CPU run the machine has not the memory for (``check_run_memory``, by ``train`` and ``eval``).

The rule, per stage, at a batch size and a dtype: parameters x bytes per element; "forward" = the output elements
of every layer with parameters (conv, batch norm, linear) x batch x bytes; "forward+backward" = twice that (each
such output and its gradient). They are estimates: what autograd really keeps differs a little (the input image,
batch norm's per-channel statistics, the linear layer's input; in-place ReLUs share their input's memory), and
tests/test_summary.py measures the difference with the tensors autograd saves.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..limits import check_memory
from ..plan import ModelPlan, plan_model
from ..spec import ArchSpec

MEMORY_RULE = ("memory = estimates, torchinfo's rule: params x bytes per element; forward = outputs of the layers "
               "with parameters (conv, batch norm, linear) x batch x bytes; forward+backward = 2 x forward "
               "(each output and its gradient)")

#: The layer kinds whose outputs the rule counts (the plan's ``LayerCount.kind`` and summarize's leaf kinds).
COUNTED_KINDS = ("conv", "bn", "linear")

#: Bytes per element of the dtypes ``params --dtype`` takes (torch's ``element_size()``; tested against it).
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


@dataclass(frozen=True)
class StageSize:
    """What the rule needs of one stage: its parameters and its counted output elements per image."""

    name: str
    params: int
    activations: int


def counted_elements(outputs: Iterable[tuple[str, int]], kinds: Collection[str] | None = COUNTED_KINDS) -> int:
    """Output elements per image that the rule counts, from (layer kind, output elements per image) pairs; ``kinds``
    as in ``plan_stage_sizes``."""
    return sum(elements for kind, elements in outputs if kinds is None or kind in kinds)


def memory_estimate(stages: Sequence[StageSize], *, batch_size: int, dtype: str, bytes_per_element: int,
                    input_elements: int) -> dict[str, Any]:
    """The estimates in bytes, per stage and in total, as plain data (``memory`` in the JSON of ``params`` and of
    ``summarize``); ``input_elements`` is one input image's (channels x height x width)."""
    rows = [{"name": s.name, "params_bytes": s.params * bytes_per_element,
             "forward_bytes": batch_size * s.activations * bytes_per_element,
             "forward_backward_bytes": 2 * batch_size * s.activations * bytes_per_element} for s in stages]
    totals = {key: sum(r[key] for r in rows) for key in ("params_bytes", "forward_bytes", "forward_backward_bytes")}
    return {"batch_size": batch_size, "dtype": dtype, "bytes_per_element": bytes_per_element,
            "input_bytes": batch_size * input_elements * bytes_per_element, **totals, "stages": rows,
            "rule": MEMORY_RULE}


def plan_stage_sizes(plan: ModelPlan, kinds: Collection[str] | None = COUNTED_KINDS) -> list[StageSize]:
    """What the rule needs of each stage of an analytic plan; ``kinds``: the layer kinds whose outputs count
    (None: every layer's)."""
    return [StageSize(stage, sum(u.params for u in units),
                      counted_elements(((layer.kind, math.prod(layer.out_shape)) for u in units for layer in u.layers),
                                       kinds))
            for stage, units in plan.stages()]


def run_bytes(spec: ArchSpec, batch_size: int, *, training: bool) -> int:
    """The float32 memory a run of ``spec`` on batches of ``batch_size`` needs: an upper estimate, by the rule above
    widened to what a run holds. Training: the weights, their gradients and SGD's momentum (3 x params), and
    forward+backward over every layer's output (pools, projection shortcuts and concatenations too: autograd keeps
    them, and in a DenseNet the concatenations are nearly half of what it keeps; tests/test_summary.py measures
    it). Evaluation keeps no autograd graph: three outputs alive at once (a block's input, its output and its
    shortcut), each at most the largest layer's. Both hold one input batch."""
    plan = plan_model(spec)
    estimate = memory_estimate(plan_stage_sizes(plan, kinds=None), batch_size=batch_size, dtype="float32",
                               bytes_per_element=4,
                               input_elements=spec.in_channels * spec.input_hw[0] * spec.input_hw[1])
    if training:
        return 3 * estimate["params_bytes"] + estimate["forward_backward_bytes"] + estimate["input_bytes"]
    largest = max((math.prod(layer.out_shape) for layer in plan.layers()), default=0)
    return estimate["params_bytes"] + 3 * batch_size * largest * 4 + estimate["input_bytes"]


def check_run_memory(spec: ArchSpec, batch_size: int, *, training: bool, input_size: int | None = None,
                     available: int | None = None) -> None:
    """Refuse, before it starts, a run whose estimated memory (``run_bytes``) exceeds what this machine has
    available (``available``: bytes, for tests; default: ``limits.available_memory()``)."""
    if input_size is not None and input_size != spec.input_size:
        spec = spec.replace(input_size=input_size)
    check_memory(run_bytes(spec, batch_size, training=training),
                 f"{'training' if training else 'running'} {spec.name} on batches of {batch_size} at "
                 f"{input_size or spec.input_size} px", available)
