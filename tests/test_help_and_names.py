"""What the tool calls things and how it asks for them: names that say what was built, one meaning per short
flag, help without noise and with its paragraphs whole, --version."""

import importlib
import inspect
import json
import re

import pytest
from cli_runner import run

from resnet_cli.cli import app
from resnet_cli.cli.app import COMMANDS


def test_compare_never_prints_two_nets_under_one_name():
    result = run("compare", "resnet110", "resnet110:shortcut_mode=conv", "-f", "json")
    assert result.exit_code == 0, result.output
    archs = json.loads(result.output)["archs"]
    assert [a["label"] for a in archs] == ["resnet110", "resnet110 (shortcut_mode=conv)"]
    assert [a["overrides"] for a in archs] == [{}, {"shortcut_mode": "conv"}]
    assert archs[0]["params"] != archs[1]["params"]
    # the global option applies to every column, and each column is named with it
    table = run("compare", "resnet110", "resnet110", "--shortcut-mode", "conv").output
    assert table.count("shortcut_mode=conv") == 3  # the title's baseline and both rows


def test_params_labels_what_was_built():
    data = json.loads(run("params", "--arch", "resnet20", "--set", "widths=8,16,32", "-f", "json").output)
    assert data["label"] == "resnet20 (widths=8,16,32)" and data["overrides"] == {"widths": [8, 16, 32]}
    plain = json.loads(run("params", "--arch", "resnet20", "-f", "json").output)
    assert plain["label"] == "resnet20" and plain["overrides"] == {}


def test_spec_description_says_what_the_overrides_changed():
    doc = json.loads(run("params", "--arch", "cifar_resnet8", "--widths", "4,8,16", "-f", "json").stdout)
    assert doc["spec"]["description"].endswith("16/32/64 filters; modified: widths=4,8,16")
    same = json.loads(run("params", "--arch", "resnet20", "--widths", "16,32,64", "-f", "json").stdout)
    assert "modified" not in same["spec"]["description"]  # an override equal to the default changes nothing


def test_a_column_override_without_a_value_is_one_line_of_error():
    result = run("compare", "resnet20", "resnet20:widths")
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "FIELD=VALUE" in result.output


def test_short_flags_mean_one_thing_across_the_tool():
    import importlib

    from typer.main import get_command

    from resnet_cli.cli.app import COMMANDS
    from resnet_cli.cli.app import app as typer_app

    for module in set(COMMANDS.values()):  # commands register when their module is imported
        importlib.import_module(f"resnet_cli.cli.{module}")
    group = get_command(typer_app)
    meaning: dict[str, set[str]] = {}
    for command in group.commands.values():
        for param in command.params:
            longs = [o for o in param.opts if o.startswith("--")]
            for short in (o for o in param.opts if re.fullmatch(r"-[a-zA-Z]", o)):
                meaning.setdefault(short, set()).update(longs)
    # --out and --output are both "where to write"; every other short flag names one long option
    assert meaning["-o"] <= {"--out", "--output"}
    assert {k: v for k, v in meaning.items() if len(v) > 1 and k != "-o"} == {}
    assert meaning["-d"] == {"--dataset"} and meaning["-e"] == {"--epochs"}


def test_version():
    from resnet_cli import __version__

    result = run("--version")
    assert result.exit_code == 0 and result.output == f"resnet-cli {__version__}\n"
    assert "<bool>" not in run("--help", terminal_width=160).output


@pytest.mark.parametrize("command", ["train", "lesion", "params", "paths", "eval", "plot-record", "plot-lesion"])
def test_flags_show_no_bool_metavar(command):
    result = run(command, "--help", terminal_width=160)
    assert result.exit_code == 0
    assert "<bool>" not in result.output and "BOOLEAN" not in result.output


def test_help_paragraphs_are_not_broken_mid_sentence():
    """Typer's rich help keeps a docstring's single line breaks, so a paragraph must be one source line."""
    for module in set(COMMANDS.values()):  # commands register when first asked for: load them all
        importlib.import_module(f"resnet_cli.cli.{module}")
    assert {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands} >= set(COMMANDS)
    for command in app.registered_commands:
        paragraphs = inspect.cleandoc(command.callback.__doc__ or "").split("\n\n")
        assert not [p for p in paragraphs if "\n" in p], command.callback.__name__
    text = run("lesion", "--help", env={"COLUMNS": "200"}).stdout
    assert re.search(r"On a plain net an identity replaces a layer", text)


def test_eval_help_says_the_default_dataset_is_the_checkpoints():
    text = " ".join(run("eval", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "instead of the checkpoint's" in text and "the default for train" not in text


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_is_whole_at_80_columns(command):
    """Piped or in an 80-column terminal, rich fits --help's table to 80 columns by cutting a word longer than its
    column with '…' (the default data folder was '~/.cache/resnet-…') or by folding a metavar in two (--seed's
    range was '[0<=x<=9223372036854775' over '807]'): no word of the help and no metavar or range may be cut."""
    import click
    from typer.main import get_command

    args = [command, "--help"] if command else ["--help"]
    result = run(*args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    if command is None:
        return
    words = set(re.sub(r"[│╭╮╰╯─]", " ", result.stdout).split())
    cli = get_command(app).get_command(click.Context(get_command(app)), command)  # its flags without a metavar
    ctx = click.Context(cli)
    for param in cli.params:
        shown = param.make_metavar(ctx) if not getattr(param, "is_flag", False) else ""
        if isinstance(param.type, click.types._NumberRangeBase):
            shown += f" [{param.type._describe_range()}]"
        for word in shown.split():
            assert word in words, (command, param.name, word)


def test_every_positional_argument_shows_its_help():
    """click 8.5's Argument resets the help that typer < 0.26 had set (cli/clickapi.py sets it again): the
    help of every positional argument (archs' PATTERN, plot-lesion's STUDIES, ...) was missing from --help."""
    import typing

    import typer

    for module in set(COMMANDS.values()):
        importlib.import_module(f"resnet_cli.cli.{module}")
    checked = 0
    for command in app.registered_commands:
        hints = typing.get_type_hints(command.callback, include_extras=True)
        helps = [m.help for hint in hints.values() for m in getattr(hint, "__metadata__", ())
                 if isinstance(m, typer.models.ArgumentInfo) and m.help]
        name = command.name or command.callback.__name__.replace("_", "-")
        shown = run(name, "--help", env={"COLUMNS": "250"}).stdout
        text = " ".join(re.sub("[│╭╮╰╯─]", " ", shown).split())  # the words, without the panels' borders
        for help_text in helps:
            assert " ".join(help_text.split()) in text, (name, help_text)
            checked += 1
    assert checked >= 3
