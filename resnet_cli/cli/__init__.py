"""``resnet-cli``: thin Typer commands over the analyses. Importing this never imports torch."""

from __future__ import annotations

from . import params  # noqa: F401  (each module registers its commands on ``app``)
from . import paths  # noqa: F401
from . import train  # noqa: F401
from . import lesion  # noqa: F401
from . import gradients  # noqa: F401
from .app import app


def main() -> None:
    app(prog_name="resnet-cli")


__all__ = ["app", "main"]
