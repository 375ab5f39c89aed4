"""Memory estimates by torchinfo's counting rule: the one home of the rule, for ``params`` (from the analytic
plan, without torch) and ``resnet_cli.summarize`` (from hooks on a module).

The rule, per stage, at a batch size and a dtype: parameters x bytes per element; "forward" = the output elements
of every layer with parameters (conv, batch norm, linear) x batch x bytes; "forward+backward" = twice that (each
such output and its gradient). They are estimates: what autograd really keeps differs a little (the input image,
batch norm's per-channel statistics, the linear layer's input; in-place ReLUs share their input's memory), and
tests/test_summary.py measures the difference with the tensors autograd saves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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


def counted_elements(outputs: Iterable[tuple[str, int]]) -> int:
    """Output elements per image that the rule counts, from (layer kind, output elements per image) pairs."""
    return sum(elements for kind, elements in outputs if kind in COUNTED_KINDS)


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
