"""The Typer application, its error handling and the options every command shares.

Commands live in one module each (cli/params.py, ...) and register on ``app``; ``COMMANDS`` names the module of
each, and only the invoked command's module is imported (start-up in a blink, issue 15). Errors: a
``ResnetCliError`` from the core, or a bad option, becomes one line on stderr and exit code 2 — never a traceback.

The command modules (this one too) do without ``from __future__ import annotations``: typer reads every command's
parameter annotations when it builds the command, at each start, and annotations kept as strings it would ``eval``
(compile) anew every time — about 7 ms for ``params``' options, against well under 1 ms for evaluated ones.
"""

import importlib
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ..errors import ArchNeededError, CheckpointError, ResnetCliError, UnknownArchError
from ..limits import MAX_SEED, MAX_WORKERS
from ..render import OutputFormat
from . import clickapi, failures

# Each command and the module of resnet_cli.cli that defines it, in the order --help lists them.
COMMANDS = {
    "lesion": "lesion",
    "gradients": "gradients",
    "archs": "params",
    "params": "params",
    "compare": "params",
    "draw": "draw",
    "export": "export",
    "paths": "paths",
    "train": "train",
    "eval": "train",
    "plot-record": "train",
    "plot-lesion": "lesion",
}


class ResnetCliGroup(TyperGroup):
    """Runs commands with one-line errors (usage mistakes and core errors exit 2 with ``Error: ...``) and imports
    a command's module only when that command is asked for."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(f"{__package__}.{COMMANDS[cmd_name]}")  # registers its commands on ``app``
            self.commands.update(typer.main.get_command(app).commands)
        return _flags_without_metavar(self.commands.get(cmd_name))

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        # A typo: suggest among all commands, not only those built so far (which typer and click would do).
        if args and args[0] not in COMMANDS:
            import difflib  # only on a typo: 5 ms of start-up otherwise

            matches = difflib.get_close_matches(args[0], list(COMMANDS))
            hint = f" Did you mean {', '.join(repr(m) for m in matches)}?" if matches else ""
            raise clickapi.UsageError(f"No such command {args[0]!r}.{hint}", ctx)
        return super().resolve_command(ctx, args)

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            _end_run_together()
        except clickapi.NoArgsIsHelpError:
            rv = 0  # the help was already printed
        except clickapi.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            rv = _fail(f"{exc.format_message()}{hint}", exc.exit_code)
        except clickapi.ClickException as exc:
            rv = _fail(exc.format_message(), exc.exit_code)
        except ResnetCliError as exc:
            rv = _fail(str(exc), exc.exit_code)
        except (typer.Abort, KeyboardInterrupt):
            rv = _fail("interrupted", 130)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)

    def get_help_option(self, ctx: Any) -> Any:
        return _flag_without_metavar(super().get_help_option(ctx))

    def invoke(self, ctx: Any) -> Any:
        # Every failure of a command is put into one line here (cli/failures.py decides the words and the exit
        # code); typer would otherwise turn a KeyboardInterrupt into a silent exit 130 and anything else into a
        # traceback.
        try:
            return super().invoke(ctx)
        except Exception as exc:
            reported = failures.translate(exc)
            if reported is exc or failures.show_traceback():
                raise
            raise reported from None
        except KeyboardInterrupt:
            raise Interrupted("interrupted") from None


def _flags_without_metavar(command: Any) -> Any:
    """The command, its flags (and its --help) shown without a value in --help (typer would print '<bool>')."""
    if command is None or getattr(command, "_flags_fixed", False):
        return command
    for param in command.params:
        _flag_without_metavar(param)
    real_help_option = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        return _flag_without_metavar(real_help_option(ctx))

    command.get_help_option = get_help_option
    command._flags_fixed = True
    return command


def _flag_without_metavar(param: Any) -> Any:
    """A flag takes no value: its line in --help shows none (typer would print '<bool>')."""
    if getattr(param, "is_flag", False) and param.metavar is None:
        param.metavar = ""
    return param


def _end_run_together() -> None:
    """Under torchrun, a command that succeeded ends with every rank together (``distributed.finish``), so each
    one exits 0; a failed one does not wait: torchrun stops the others."""
    dist = sys.modules.get(f"{__package__.rpartition('.')[0]}.distributed")  # imported only by what joins a run
    if dist is not None:
        dist.finish()


class Interrupted(ResnetCliError):
    """Ctrl-C outside the commands that catch it themselves (train, lesion): exit 130, as a shell expects."""

    exit_code = 130


def _fail(message: str, code: int) -> int:
    from ..distributed import error_prefix

    prefix = error_prefix()  # under torchrun: rank 0 speaks for the identical errors of every rank
    if message and prefix is not None:  # a closed stdout ends quietly, with no message
        typer.echo(f"Error: {prefix}{failures.one_line(message)}", err=True)
    return code


app = typer.Typer(
    cls=ResnetCliGroup,
    name="resnet-cli",
    help="Take residual networks apart the way the ResNet papers do: sizes, paths, lesions, training.",
    no_args_is_help=True,
    add_completion=False,
    suggest_commands=False,  # ResnetCliGroup.resolve_command suggests
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"resnet-cli {__version__}")
        raise typer.Exit()


@app.callback()
def _group(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, metavar="",
                                                 help="Print the version and exit.")] = False) -> None:
    # A callback makes typer build a group however many commands are registered so far (one, after importing
    # cli/paths.py alone); the group's help is the ``help`` above.
    pass


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


# Shared options: one definition each, so every command spells and documents them the same way.
FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="table (rich), json (one document on "
                                                  "stdout) or csv.", case_sensitive=False)]
# the choices in the help text: as a metavar ('[auto|cpu|cuda|mps]') they are cut in two at 80 columns in train's
# crowded --help
DeviceOpt = Annotated[Device, typer.Option("--device", metavar="DEVICE", help="auto (CUDA, then MPS, then the "
                                           "CPU), cpu, cuda or mps.", case_sensitive=False)]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED,
                                       help="Random seed (same seed, same results on the CPU).")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per batch.")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=0, max=MAX_WORKERS,
                                         help="Data-loading processes for image folders.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or messages on stderr.")]
SkipBadOpt = Annotated[bool, typer.Option("--skip-bad-images", help="Leave out images that cannot be read (counted "
                                          "and listed) instead of stopping at the first.")]


def in_panel(option: Any, panel: str) -> Any:
    """One of the shared options above, listed by a command's --help under a heading of its own (``panel``)."""
    import copy

    info = copy.copy(option.__metadata__[0])
    info.rich_help_panel = panel
    return Annotated[option.__origin__, info]


# Data and checkpoints, shared by train, eval, lesion and gradients.
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Where the dataset's files are (CIFAR batches, "
                                                 "image folders); its default is below.")]
# The default of --data-dir, said under the options (``epilog=`` of each command that reads data): a path is one
# word, and in the options' help column at 80 columns rich cut it with '…'.
DATA_DIR_EPILOG = "--data-dir defaults to $RESNET_CLI_DATA, else ~/.cache/resnet-cli/data."
# What --limit N keeps (train, eval, lesion, gradients): data/load_dataset takes the first N of each dataset's fixed
# order, which only for an image folder takes the classes in turn (README, "--limit N").
LIMIT_ORDER = "in the dataset's fixed order (an image folder's classes in turn)"
CkptArg = Annotated[Path, typer.Argument(help="A checkpoint written by 'resnet-cli train', or a state dict in "
                                         "torchvision's layout or a foreign one it maps (DataParallel, "
                                         "torch.compile, Lightning, akamaster).")]
CkptArchOpt = Annotated[str | None, typer.Option("--arch", "-a", help="For a bare state dict: its architecture "
                                                 "(inferred from keys and shapes when omitted).")]
CkptDatasetOpt = Annotated[str | None, typer.Option("--dataset", "-d", help="Another dataset instead of the "
                                                    "checkpoint's (the default): synthetic, digits, cifar10, "
                                                    "cifar100 or imagefolder.")]
NormalizeOpt = Annotated[str | None, typer.Option("--normalize", help="Normalise the images with imagenet, "
                                                 "cifar10, cifar100, none or MEAN,..:STD,.. (default: the "
                                                 "checkpoint's own; ImageNet's for a bare state dict on CIFAR or "
                                                 "an image folder, as torchvision, timm and akamaster trained).")]


# Spec overrides, shared by every command that builds an architecture from a name.
InputSizeOpt = Annotated[int | None, typer.Option("--input-size", help="Input height = width in pixels (default: "
                                                  "the architecture's).")]
# eval's: the network is the checkpoint's, and so is the size its images are made at
CkptInputSizeOpt = Annotated[int | None, typer.Option("--input-size", help="Input height = width in pixels "
                                                      "(default: the checkpoint's).")]
# params and compare count any input shape: H (square) or HxW (input_size and input_width of the spec)
InputHWOpt = Annotated[str | None, typer.Option("--input-size", metavar="H[xW]", help="Input size in pixels: H "
                                                "for a square input, or HxW (height x width), e.g. 224x320.")]
NumClassesOpt = Annotated[int | None, typer.Option("--num-classes", help="Classes of the final layer.")]
ShortcutOpt = Annotated[str | None, typer.Option("--shortcut", help="Shortcut option: A (zero-pad), B (project "
                                                 "where the shape changes), C (project everywhere).")]
WidthsOpt = Annotated[str | None, typer.Option("--widths", help="Planes per stage, e.g. 16,32,64.")]
LayersOpt = Annotated[str | None, typer.Option("--layers", help="Blocks per stage, e.g. 3,4,6,3.")]
StochasticDepthOpt = Annotated[float | None, typer.Option("--stochastic-depth", help="Stochastic depth: survival "
                                                          "probability p_L of the last block (linear decay; "
                                                          "the paper uses 0.5).")]
PlacementOpt = Annotated[str | None, typer.Option("--placement", help="Where BN and ReLU sit in a unit (He et al. "
                                                  "2016 Fig. 4): original, bn_after_add, relu_before_add, "
                                                  "relu_preact, full_preact.")]
ShortcutModeOpt = Annotated[str | None, typer.Option("--shortcut-mode", help="Shortcut variant (He et al. 2016 "
                                                     "Fig. 2): identity, scaling, exclusive_gating, "
                                                     "shortcut_gating, conv, dropout.")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override any spec field: --set FIELD=VALUE "
                                                  "(repeatable; see the spec in --format json).")]


# The options that change the network ``spec_from_options`` builds, named as its keywords and as the commands'
# parameters: the one list that passes them (``spec_options``) and that refuses them where a network is fixed. A
# command gains one by declaring the parameter; spec_from_options gets it and the refusals name it from here.
SPEC_OPTIONS = ("input_size", "num_classes", "shortcut", "widths", "layers", "stochastic_depth", "placement",
                "shortcut_mode", "sets")
# Those that a checkpoint's weights fix (all but --input-size): a network read from a file takes none of them.
NETWORK_OPTIONS = tuple(name for name in SPEC_OPTIONS if name != "input_size")


def spec_options(ctx: typer.Context) -> dict[str, Any]:
    """The command's own spec options (those of SPEC_OPTIONS it declares) with their values, as
    ``spec_from_options`` takes them."""
    return {name: ctx.params[name] for name in SPEC_OPTIONS if name in ctx.params}


def options_given(ctx: typer.Context, *names: str) -> list[str]:
    """The options among the parameters ``names`` that the user typed (not left at their defaults), spelled as
    on the command line, for refusing options that a mode of a command would otherwise silently ignore."""
    typed = (clickapi.ParameterSource.COMMANDLINE, clickapi.ParameterSource.ENVIRONMENT)
    return [max(p.opts, key=len) for p in ctx.command.params
            if p.name in names and ctx.get_parameter_source(p.name) in typed]


def parse_sets(sets: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in sets or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ResnetCliError(f"--set takes FIELD=VALUE, not {item!r}")
        out[key.strip()] = value.strip()
    return out


def input_size_fields(value: int | str, option: str = "--input-size") -> dict[str, int | None]:
    """The spec fields of an ``--input-size``: '224' -> input_size 224 (square: input_width None); '224x320' ->
    input_size 224, input_width 320. Bad forms and sizes past the limits are refused in one line."""
    from ..limits import parse_input_size

    height, width = parse_input_size(value, option)
    return {"input_size": height, "input_width": None if width == height else width}


def spec_from_options(arch: str, *, input_size: int | str | None = None, num_classes: int | None = None,
                      shortcut: str | None = None, widths: str | None = None, layers: str | None = None,
                      stochastic_depth: float | None = None, placement: str | None = None,
                      shortcut_mode: str | None = None, sets: list[str] | None = None,
                      last: dict[str, str] | None = None):
    """The spec a command works on: the named architecture with the user's overrides applied (``last``, e.g. one
    column's overrides in ``compare``, over all the others)."""
    from ..registry import get_spec

    overrides: dict[str, Any] = _sized(parse_sets(sets), "--set input_size")
    if input_size is not None:
        overrides.update(input_size_fields(input_size))
    for key, value in (("num_classes", num_classes), ("widths", widths),
                       ("layers", layers), ("shortcut", shortcut.upper() if shortcut else None),
                       ("stochastic_depth", stochastic_depth),
                       ("placement", placement.lower().replace("-", "_") if placement else None),
                       ("shortcut_mode", shortcut_mode.lower().replace("-", "_") if shortcut_mode else None)):
        if value is not None:
            overrides[key] = value
    return get_spec(arch, **{**overrides, **_sized(dict(last or {}), f"{arch}:input_size")})


def _sized(fields: dict[str, Any], option: str) -> dict[str, Any]:
    """``fields`` with an ``input_size`` read as ``--input-size`` reads it (H or HxW, as labels print it): a
    column's ``input_size=256`` is square whatever the global option's width."""
    if "input_size" not in fields:
        return fields
    return {**fields, **input_size_fields(fields.pop("input_size"), option)}


# What a checkpoint's file name may end in: such a column that is no file is a missing file, not an arch name.
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".th", ".ckpt", ".tar", ".bin")


def column_network(ctx: Any, column: str, arch: str | None = None, **options: Any) -> tuple[Any, Any]:
    """One column of ``compare``, ``draw`` or ``export``: its spec, and the checkpoint it was read from (None for
    an arch name). A checkpoint file gives its own spec (read with torch); an arch name takes the options
    (spec_from_options' keywords) and its own overrides. ``arch`` names the architecture of a bare state dict
    (``--arch``, where the command has it)."""
    path = Path(column)
    if path.is_file() or path.suffix.lower() in CHECKPOINT_SUFFIXES:
        fixed = options_given(ctx, *NETWORK_OPTIONS)
        if fixed:
            raise ResnetCliError(f"{', '.join(fixed)}: not with a checkpoint ({column}): its weights fix the network; "
                                 f"only --input-size can change")
        from ..checkpoint import load_checkpoint

        size = options.get("input_size")
        fields = input_size_fields(size) if size is not None else None  # a bad size before the file is read
        try:
            ckpt = load_checkpoint(path, arch=arch)  # a missing or unreadable file is one line there
        except ArchNeededError as exc:
            if "arch" in ctx.params:
                raise
            # compare and draw have no --arch: what they show is the architecture's, not the weights'
            raise CheckpointError(f"{column}: {exc.why}; give the architecture's name instead of the file: its "
                                  f"weights change no count and no drawing") from None
        if fields is not None:
            ckpt.spec = ckpt.spec.replace(**fields)
        return ckpt.spec, ckpt
    if arch is not None:
        raise ResnetCliError(f"--arch names the architecture of a bare state dict; {column!r} is an architecture "
                             f"name, not a checkpoint file")
    name, own = column_overrides(column)
    try:
        return spec_from_options(name, last=own, **options), None
    except UnknownArchError:
        if path.is_dir():  # not an architecture's name: a folder where a checkpoint file was meant
            raise CheckpointError(f"{column} is a folder, not a checkpoint file or an architecture's name") from None
        raise


def column_overrides(column: str) -> tuple[str, dict[str, str]]:
    """``resnet110:shortcut_mode=conv:widths=16,32,64`` -> ('resnet110', {'shortcut_mode': 'conv', 'widths':
    '16,32,64'}): colons separate the overrides, since values such as widths hold commas (``compare``, ``draw``)."""
    name, *pairs = column.split(":")
    own: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ResnetCliError(f"{column!r}: a column's overrides are NAME:FIELD=VALUE[:FIELD=VALUE...], "
                                 f"e.g. resnet110:shortcut_mode=conv ({pair!r} has no '=')")
        own[key.strip()] = value.strip()
    return name, own
