"""``params --engine fvcore``: build the module and let fvcore count it, beside the analytic numbers.

fvcore's ``FlopCountAnalysis`` traces the module with one input and charges each operator by a handle. Its
default handles count one fused multiply-add as one "flop" (so conv and linear match our MACs), but they also
charge batch norm, adaptive pooling and upsampling; elementwise operators (ReLU, the residual addition,
max-pooling) have no handle and are listed as "unsupported". We report both fvcore's total and its conv+linear
part — the part that must equal the analytic MACs — and say in one line what it skipped, instead of letting
it print a warning per operator.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from typing import Any

from ..progress import Counter as Steps
from ..progress import Progress
from ..spec import ArchSpec
from .counts import ParamsReport, count_params, module_buffers

# fvcore's operator names for the layers the papers charge (conv, linear; matmul where a model uses one).
CONV_LINEAR_OPS = ("conv", "linear", "addmm", "matmul", "bmm", "einsum")


def count_with_fvcore(spec: ArchSpec, detail: int = 1, progress: Progress | None = None, **memory: Any
                      ) -> ParamsReport:
    """The analytic report of ``spec`` plus fvcore's count of the built module (``report.fvcore``).

    ``params``/``trainable_params``/``buffers`` are read off the built module; ``report.fvcore`` holds ``total``
    (fvcore's default handles), ``conv_linear``, ``by_operator``, ``not_counted`` (one line) and ``modules`` (one
    row per module down to ``detail``: 1 the network's children, 2 + blocks, 3 every module). ``memory``: count_params's
    ``batch_size`` and ``dtype`` of the memory estimates.
    """
    tick = Steps(progress, "fvcore", 4, "steps")  # import torch, build, trace, count
    tick(0, phase="importing torch")
    import torch

    from ..models import build_model

    report = count_params(spec, detail=detail, **memory)
    tick(phase=f"building {spec.name}")
    model = build_model(spec).eval()  # eval: stochastic depth and dropout must not change what is traced
    x = torch.zeros(1, spec.in_channels, *spec.input_hw)
    tick(phase="tracing with fvcore")
    analysis = _analyse(model, x)
    tick(phase="counting per module")

    by_operator = dict(analysis.by_operator())
    by_module_op = analysis.by_module_and_operator()
    report.engine = "fvcore"
    report.params = sum(p.numel() for p in model.parameters())
    report.trainable_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    report.buffers = module_buffers(model)
    report.fvcore = {
        "total": int(analysis.total()),
        "conv_linear": _conv_linear(by_operator),
        "by_operator": {op: int(n) for op, n in sorted(by_operator.items())},
        "not_counted": summarize_unsupported(analysis.unsupported_ops()),
        "modules": _module_rows(model, by_module_op, detail),
        "unit": "fvcore flops (1 = one fused multiply-add)",
    }
    tick(phase="done")
    return report


def conv_linear_macs(model: Any, x: Any) -> int:
    """fvcore's count of the conv and linear multiply-adds of ``model`` on input ``x``, quietly."""
    return _conv_linear(dict(_analyse(model, x).by_operator()))


def _analyse(model: Any, x: Any) -> Any:
    """A FlopCountAnalysis with every warning channel closed (we summarise what it skipped ourselves)."""
    import torch
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    fv_logger = logging.getLogger("fvcore")
    previous = fv_logger.level
    fv_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            analysis.total()  # runs the trace once; later queries read the cache
    finally:
        fv_logger.setLevel(previous)
    return analysis


def _conv_linear(ops: dict[str, int]) -> int:
    return int(sum(n for op, n in ops.items() if op in CONV_LINEAR_OPS))


def summarize_unsupported(ops: Counter[str] | dict[str, int]) -> str:
    """One line: ``aten::add_ x16, aten::relu_ x17, ...`` (the operators fvcore has no handle for)."""
    if not ops:
        return ""
    items = sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{op} x{n}" for op, n in items) + " (operators fvcore has no handle for)"


def _module_rows(model: Any, by_module_op: dict[str, Counter[str]], detail: int) -> list[dict[str, Any]]:
    """Per-module rows in definition order: name, type, params, fvcore flops, conv+linear part."""
    block_names = {ref.name for ref in model.residual_blocks()} if hasattr(model, "residual_blocks") else set()
    rows = []
    for name, module in model.named_modules():
        if not name:
            continue
        level = _level(name, block_names)
        if level > detail:
            continue
        ops = by_module_op.get(name, Counter())
        rows.append({
            "module": name,
            "type": type(module).__name__,
            "level": level,
            "params": sum(p.numel() for p in module.parameters()),
            "flops": int(sum(ops.values())),
            "conv_linear": _conv_linear(dict(ops)),
        })
    return rows


def _level(name: str, block_names: set[str]) -> int:
    """1 for the network's children, 2 for residual blocks, 3 for everything inside or below them."""
    if "." not in name:
        return 1
    return 2 if name in block_names else 3
