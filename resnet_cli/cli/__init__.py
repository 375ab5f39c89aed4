"""``resnet-cli``: thin Typer commands over the analyses. Importing this never imports torch.

Importing this imports no command module either: ``app`` imports the one a command line asks for (cli/app.py).
"""

from __future__ import annotations

from .app import app


def main() -> None:
    """The console script (and ``python -m resnet_cli``): the one place the whole run happens."""
    from .failures import run_main

    run_main(lambda: app(prog_name="resnet-cli"))


__all__ = ["app", "main"]
