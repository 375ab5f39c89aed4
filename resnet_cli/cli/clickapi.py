"""The click names the CLI uses, from click's public API (one home, so no module reaches into typer's insides).

typer below 0.26 runs on click and raises click's exceptions; from 0.26 it vendors click in a private module
(``typer._click``) and 0.29 imports pydantic at start-up (≈ 190 ms, issue 15). pyproject.toml therefore asks for
typer < 0.26 together with click itself.
"""

from __future__ import annotations

from click.core import ParameterSource
from click.exceptions import ClickException, NoArgsIsHelpError, UsageError

__all__ = ["ClickException", "NoArgsIsHelpError", "ParameterSource", "UsageError"]


def _keep_argument_help() -> None:
    """click 8.5 gave ``Argument`` a ``help`` of its own, and its ``__init__`` sets it to None after typer < 0.26's
    ``TyperArgument`` has set the argument's help: every positional argument's help vanished from ``--help``. Set
    typer's help again after click's ``__init__`` (a no-op on click before 8.5)."""
    import typer.core

    init = typer.core.TyperArgument.__init__
    if getattr(init, "keeps_help", False):
        return

    def init_keeping_help(self: typer.core.TyperArgument, *args: object, help: str | None = None,
                          **kwargs: object) -> None:
        init(self, *args, help=help, **kwargs)
        self.help = help

    init_keeping_help.keeps_help = True  # type: ignore[attr-defined]
    typer.core.TyperArgument.__init__ = init_keeping_help  # type: ignore[method-assign]


_keep_argument_help()
