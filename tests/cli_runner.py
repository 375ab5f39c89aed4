"""The CLI run in-process, as the tests drive it (one home for what six test modules each defined).

``run("params", "--arch", "resnet50")`` is click's result (``exit_code``, ``stdout``, ``stderr``, ``output``);
arguments may be paths or numbers. ``run_json(...)`` adds ``--format json``, checks the exit code and parses the one
document. ``one_line_error(result, *words)``: the result is a single ``Error: ...`` line holding every word.
``run_main(monkeypatch, capsys, argv)`` runs the CLI's own ``main()`` (its exit code and stderr), where a test's
patches of the file system apply."""

import json
import sys

import pytest
from typer.testing import CliRunner

from resnet_cli.cli import app


def run(*args, **kw):
    return CliRunner().invoke(app, [str(a) for a in args], **kw)


def run_json(*args):
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_line_error(result, *needles, code=2):
    """The result is a single 'Error: ...' line holding every needle, with the exit code, and no traceback."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def run_main(monkeypatch, capsys, argv: list[str]) -> tuple[int, str]:
    """Run the CLI in this process (where the test's patches apply): its exit code and its stderr."""
    from resnet_cli.cli import main

    monkeypatch.setattr(sys, "argv", ["resnet-cli", *argv])
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code, capsys.readouterr().err
