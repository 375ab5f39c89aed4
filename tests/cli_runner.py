"""The CLI run in-process, as the tests drive it (one home for what six test modules each defined).

``run("params", "--arch", "resnet50")`` is click's result (``exit_code``, ``stdout``, ``stderr``, ``output``);
arguments may be paths or numbers. ``run_json(...)`` adds ``--format json``, checks the exit code and parses the one
document. ``one_line_error(result, *words)``: the result is a single ``Error: ...`` line holding every word."""

import json

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
