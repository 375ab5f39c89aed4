"""A network as an ONNX file, for Netron's picture of it and for runtimes (onnxruntime, TensorRT, OpenVINO, ...).

torch.onnx's exporter (``dynamo=True``: torch.export, then onnxscript's op library; the TorchScript exporter is
deprecated in torch 2.9+) writes it. The file has one input, ``images`` (batch x channels x height x width, the
batch dimension dynamic), and one output, ``logits`` (batch x classes), of the network in eval mode (no dropout, no
stochastic depth: every block runs, as at test time). The optional packages it needs (onnx, onnxscript) are the
``onnx`` extra; importing this module imports none of them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import ResnetCliError

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
# Opsets: the exporter builds its graphs at 18 (onnxscript's op library) and converts them up to the one asked
# for; below 18 the conversion fails for Pad (measured with onnx 1.23) and the file silently stays at 18. 23 is
# the newest torch 2.13 names (torch.onnx's ONNX_MAX_OPSET); 20, torch's default, runs on onnxruntime >= 1.17.
MIN_OPSET, DEFAULT_OPSET, MAX_OPSET = 18, 20, 23
# One ONNX file is one protobuf message, which holds at most 2 GiB; larger weights would need an external file.
MAX_ONNX_BYTES = 2**31 - 1
EXTRA_HINT = "pip install 'resnet-cli[onnx]'"
# The example input's batch: torch.export fixes a dimension of size 1 to 1, so the example has two images.
EXAMPLE_BATCH = 2
# What the exporter logs and warns while it works (a missing torchvision's ops, its own deprecations): not the
# user's to act on.
_CHATTY_LOGGERS = ("torch.onnx", "torch.export", "torch._export", "torch._dynamo", "onnxscript", "onnx_ir")


@dataclass
class OnnxExport:
    """What was written: the file, its size and opset, and its input and output as the runtime sees them."""

    output: str
    arch: str
    label: str  # what was built, in words: resnet110 (shortcut_mode=conv) (registry.spec_label)
    overrides: dict[str, Any]  # the spec fields that differ from the registered arch (registry.spec_overrides)
    weights: str  # the checkpoint the weights came from, or "initialised" (an arch name: untrained weights)
    opset: int
    bytes: int
    input_name: str
    input_shape: list[int | str]  # the first entry is "batch": any number of images
    output_name: str
    output_shape: list[int | str]
    #: what a runtime must do to its images (pixels in [0, 1]) before the network sees them: name, mean, std and
    #: where the choice came from (data.normalization.choose, as eval decides); None for untrained weights
    normalization: dict[str, Any] | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def require_exporter() -> None:
    """Refuse in one line, before any work, when the ``onnx`` extra (onnx, onnxscript) is not installed."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "onnx"
        raise ResnetCliError(f"export needs the packages onnx and onnxscript ({missing} is not installed): "
                             f"{EXTRA_HINT}") from None


def check_onnx_path(path: str | os.PathLike[str], option: str = "--output") -> Path:
    """The output path, refused now (before torch is imported) unless it ends in .onnx and can be written."""
    from .fileio import check_writable

    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise ResnetCliError(f"{option} {path}: an ONNX file's name ends in .onnx")
    return check_writable(path, option)


def export_onnx(model: Any, spec: Any, path: str | os.PathLike[str], *, opset: int = DEFAULT_OPSET,
                checkpoint: Any = None, normalize: str | None = None) -> OnnxExport:
    """Write ``model`` (built from ``spec``, with the weights of ``checkpoint`` if one is given; put in eval mode
    here) to ``path`` as ONNX at ``opset``, whole or not at all. The file's metadata (Netron shows it) says what
    it is: the arch and its label, its spec, where the weights came from, the normalisation a runtime must apply
    to its images (``normalize``, a name or ``MEAN,..:STD,..``, else what ``eval`` would use for the checkpoint:
    its own, ImageNet's for a bare state dict; also kept in ``checkpoint.normalization``) and, from a resnet-cli
    checkpoint, its dataset."""
    import torch

    from .fileio import atomic_open
    from .registry import spec_label, spec_overrides

    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ResnetCliError(f"--opset {opset}: the exporter writes opsets {MIN_OPSET} to {MAX_OPSET}")
    norm = input_normalization(spec, checkpoint, normalize)  # a bad --normalize before the slow part
    require_exporter()
    model.eval()
    weight_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    if weight_bytes > MAX_ONNX_BYTES:
        raise ResnetCliError(f"{spec.name} has {weight_bytes / 2**30:.1f} GiB of weights; one ONNX file holds at "
                             f"most 2 GiB")
    height, width = spec.input_hw
    example = torch.zeros(EXAMPLE_BATCH, spec.in_channels, height, width)
    start = time.perf_counter()
    with exporter_quiet():
        program = torch.onnx.export(model, (example,), None, dynamo=True, input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], opset_version=opset, verbose=False,
                                    dynamic_shapes=({0: torch.export.Dim("batch")},))
    program.model.metadata_props.update(_metadata(spec, checkpoint, norm))
    proto = program.model_proto
    with atomic_open(path, "wb") as fh:
        fh.write(proto.SerializeToString())
    seconds = time.perf_counter() - start
    weights = checkpoint.path if checkpoint is not None else "initialised"
    return OnnxExport(output=str(path), arch=spec.name, label=spec_label(spec), overrides=spec_overrides(spec),
                      weights=weights, opset=_opset_of(proto), bytes=Path(path).stat().st_size,
                      input_name=INPUT_NAME, input_shape=_shape(proto.graph.input[0]), output_name=OUTPUT_NAME,
                      output_shape=_shape(proto.graph.output[0]),
                      normalization=norm.to_dict() if norm is not None else None, seconds=round(seconds, 3))


def input_normalization(spec: Any, checkpoint: Any = None, normalize: str | None = None) -> Any:
    """The normalisation the exported network's input needs (a ``data.normalization.Normalization``, or None for
    untrained weights without ``normalize``): the rule ``eval`` follows, on the checkpoint's own data."""
    from .data.normalization import choose

    norm = choose(given=normalize, dataset=None, info=None, stored=getattr(checkpoint, "dataset", None),
                  bare=checkpoint is not None and checkpoint.is_bare, channels=spec.in_channels)
    if checkpoint is not None:
        checkpoint.normalization = norm  # its loading report says it, as eval's does
    return norm


def _metadata(spec: Any, checkpoint: Any, norm: Any) -> dict[str, str]:
    """The file's metadata_props. A checkpoint is named by its file name, and the dataset without its folder: the
    file may travel to other machines, and the paths of this one are nobody's business there."""
    import json

    from .registry import spec_label, spec_overrides

    weights = Path(checkpoint.path).name if checkpoint is not None else "initialised (untrained)"
    out = {"resnet_cli.arch": spec.name, "resnet_cli.label": spec_label(spec),
           "resnet_cli.overrides": json.dumps(spec_overrides(spec)), "resnet_cli.spec": spec.to_json(),
           "resnet_cli.weights": weights}
    if norm is not None:
        out["resnet_cli.normalization"] = json.dumps(norm.to_dict())
    dataset = getattr(checkpoint, "dataset", None)
    if dataset is not None:
        out["resnet_cli.dataset"] = json.dumps({k: v for k, v in dataset.to_dict().items() if k != "source"})
    return out


@contextlib.contextmanager
def exporter_quiet() -> Iterator[None]:
    """Silence the exporter's warnings, log records and prints for the block (errors still raise)."""
    import io
    import logging  # here: 'export --help' starts without it
    import warnings

    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _opset_of(proto: Any) -> int:
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def _shape(value_info: Any) -> list[int | str]:
    """A graph input's or output's dimensions: a number, or the name of a dynamic one ("batch")."""
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]
