"""What ``export`` wrote: one line in a table's place, one row of CSV."""

from __future__ import annotations

from typing import Any

from . import safe
from .params import fmt_bytes

# the names of the JSON document's fields (OnnxExport); normalization is its name (imagenet, custom, ...; empty: none)
EXPORT_HEADER = ["output", "arch", "label", "weights", "opset", "bytes", "input_name", "input_shape", "output_name",
                 "output_shape", "normalization"]


def _dims(shape: list[Any]) -> str:
    return " x ".join(str(d) for d in shape)


def export_table(report: Any, console: Any) -> None:
    console.print(f"wrote {safe(report.output)} ({fmt_bytes(report.bytes)}, ONNX opset {report.opset}): "
                  f"{safe(report.label)}, {report.input_name} {_dims(report.input_shape)} -> "
                  f"{report.output_name} {_dims(report.output_shape)}")
    weights = "untrained (initialised)" if report.weights == "initialised" else f"from {safe(report.weights)}"
    console.print(f"[dim]weights {weights}; the batch dimension is dynamic; open it in Netron "
                  f"(https://netron.app) to see the graph[/dim]")


def export_csv(report: Any) -> tuple[list[str], list[list[Any]]]:
    norm = report.normalization["name"] if report.normalization else ""
    return EXPORT_HEADER, [[report.output, report.arch, report.label, report.weights, report.opset, report.bytes,
                            report.input_name, "x".join(map(str, report.input_shape)), report.output_name,
                            "x".join(map(str, report.output_shape)), norm]]
