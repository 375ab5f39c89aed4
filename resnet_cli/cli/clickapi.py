"""The click names the CLI uses, from click's public API (one home, so no module reaches into typer's insides).

typer below 0.26 runs on click and raises click's exceptions; from 0.26 it vendors click in a private module
(``typer._click``) and 0.29 imports pydantic at start-up (≈ 190 ms, issue 15). pyproject.toml therefore asks for
typer < 0.26 together with click itself.
"""

from __future__ import annotations

from click.core import ParameterSource
from click.exceptions import ClickException, NoArgsIsHelpError, UsageError

__all__ = ["ClickException", "NoArgsIsHelpError", "ParameterSource", "UsageError"]
