"""``resnet-cli``: thin Typer commands over the analyses. Importing this never imports torch."""

from __future__ import annotations

from . import (
    gradients,  # noqa: F401
    lesion,  # noqa: F401
    params,  # noqa: F401  (each module registers its commands on ``app``)
    paths,  # noqa: F401
    train,  # noqa: F401
)
from .app import app


def main() -> None:
    from .failures import run_main

    run_main(lambda: app(prog_name="resnet-cli"))


__all__ = ["app", "main"]
