"""Regression tests for what a QA pass over the whole CLI found: every user mistake is one ``Error: ...`` line
with exit code 2 (130 for Ctrl-C), found *before* the work, and no option is silently ignored."""

import importlib
import inspect
import json
import re

import pytest
from cli_runner import one_line_error, run

from resnet_cli.cli import app
from resnet_cli.cli.app import COMMANDS

TINY = ["--arch", "cifar_resnet8", "--widths", "4,8,16", "--set", "stem_width=4", "--input-size", "12",
        "--dataset", "synthetic", "--limit", "64", "--test-limit", "32", "--epochs", "1", "--device", "cpu", "-q"]


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    result = run("train", *TINY, "-o", path, "--no-best", "-f", "csv")
    assert result.exit_code == 0, result.output
    return path


# --------------------------------------------------------------------------- errors and Ctrl-C
def test_ctrl_c_says_interrupted_and_exits_130(monkeypatch):
    import resnet_cli.analysis.catalog as catalog

    def interrupted(pattern):
        raise KeyboardInterrupt

    monkeypatch.setattr(catalog, "catalog", interrupted)
    one_line_error(run("archs"), "interrupted", code=130)  # typer alone exits 130 without a word


@pytest.mark.parametrize("seed", ["-1", "99999999999999999999"])
def test_seed_out_of_range_is_an_option_error_not_a_torch_overflow(seed, tmp_path):
    one_line_error(run("train", *TINY, "-o", tmp_path / "c.pt", "--seed", seed), "--seed")
    assert not (tmp_path / "c.pt").exists()


def test_stderr_messages_are_never_folded_between_a_number_and_its_unit(capsys):
    from resnet_cli.render import stderr_console

    stderr_console().print("epoch 1/1: " + "train loss 2.3070, " * 6 + "lr 0.1, 3.9 s")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.rstrip().endswith("3.9 s")


# --------------------------------------------------------------------------- params and compare
@pytest.mark.parametrize("args, needle", [
    (["--block", "basic", "--widths", "1,2,3"], "--widths"),
    (["--block", "bottleneck", "--input-size", "64", "--engine", "fvcore"], "--input-size, --engine"),
    (["--arch", "resnet20", "--channels", "64"], "--channels"),
    (["--arch", "resnet20", "--feature-size", "8"], "--feature-size"),
])
def test_params_refuses_options_of_the_other_mode(args, needle):
    one_line_error(run("params", *args), needle)


def test_compare_needs_two_names():
    one_line_error(run("compare", "resnet20"), "two or more")


def test_compare_at_80_columns_shows_every_ratio_whole():
    names = ["resnet20", "keras_minimodel", "densenet_bc250_24", "wide_resnet101_2", "resnext101_64x4d"]
    doc = json.loads(run("compare", *names, "-f", "json").stdout)
    table = run("compare", *names, env={"COLUMNS": "80"}).stdout
    assert "…" not in table and "input px" in table
    assert max(len(line) for line in table.splitlines()) <= 80
    for a in doc["archs"]:
        row = next(line for line in table.splitlines() if line.split() and line.split()[0] == a["arch"])
        assert f"{a['params_ratio']:.2f}" in row and f"{a['macs_ratio']:.2f}" in row  # e.g. 470.44, not 470.…


# --------------------------------------------------------------------------- outputs checked before the work
def test_train_checks_every_output_before_the_first_epoch(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    one_line_error(run("train", *TINY, "-o", blocker / "c.pt"), "--output", "is a file, not a folder")
    one_line_error(run("train", *TINY, "-o", tmp_path), "--output", "is a folder, not a file")
    one_line_error(run("train", *TINY, "-o", tmp_path / "c.pt", "--best", blocker / "b.pt"), "--best")
    one_line_error(run("train", *TINY, "-o", tmp_path / "c.pt", "--plot", tmp_path / "p.txt"), "--plot")
    one_line_error(run("train", *TINY, "-o", tmp_path / "c.pt", "--plot", blocker / "p.png"), "--plot")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # nothing was trained


def test_a_checkpoint_that_cannot_be_written_is_a_user_error(tmp_path):
    from resnet_cli import get_spec
    from resnet_cli.checkpoint import save_checkpoint
    from resnet_cli.errors import ResnetCliError

    (tmp_path / "afile").write_text("")
    with pytest.raises(ResnetCliError, match="cannot write the checkpoint"):
        save_checkpoint(tmp_path / "afile" / "c.pt", spec=get_spec("cifar_resnet8"), state_dict={}, dataset=None,
                        record=[])


def test_train_refuses_contradictions(tmp_path):
    one_line_error(run("train", *TINY, "-o", tmp_path / "c.pt", "--no-best", "--best", tmp_path / "b.pt"),
                   "--best", "--no-best")
    # --resume keeps the checkpoint's settings: an --lr or --seed next to it would be silently ignored
    one_line_error(run("train", "--resume", tmp_path / "none.pt", "--lr", "5", "--seed", "3", "--no-augment"),
                   "--lr", "--augment", "--seed", "not with --resume")


def test_train_resume_refuses_every_spec_option(tmp_path):
    # the spec options are the checkpoint's too, the two train gained among them
    one_line_error(run("train", "--resume", tmp_path / "none.pt", "--placement", "full_preact", "--shortcut-mode",
                       "conv", "--widths", "8,16,32"), "--widths", "--placement", "--shortcut-mode",
                   "not with --resume")


def test_every_train_option_is_kept_by_resume_or_taken_with_it():
    """A new train option goes in RECIPE_OPTIONS or SPEC_OPTIONS (refused with --resume, which keeps the
    checkpoint's) or among those --resume takes: none is silently ignored by a resumed run."""
    import typer

    from resnet_cli.cli import app
    from resnet_cli.cli.app import SPEC_OPTIONS
    from resnet_cli.cli.train import RECIPE_OPTIONS

    taken_with_resume = {"resume", "epochs", "workers", "output", "best", "no_best", "plot", "limit", "test_limit",
                         "data_dir", "download", "device", "quiet", "fmt"}
    refused_apart = {"arch", "dataset"}  # "--resume continues the checkpoint's own arch and dataset"
    train = typer.main.get_command(app).get_command(None, "train")
    names = {param.name for param in train.params}
    assert {"placement", "shortcut_mode"} <= names
    assert set(RECIPE_OPTIONS) <= names  # each one is a parameter of train (a TrainConfig field by that name)
    assert names - set(RECIPE_OPTIONS) - set(SPEC_OPTIONS) == taken_with_resume | refused_apart


@pytest.mark.parametrize("option, value, needle", [
    ("--weight-decay", "nan", "--weight-decay"), ("--weight-decay", "-1", "--weight-decay"),
    ("--momentum", "1", "--momentum"), ("--momentum", "nan", "--momentum"),
])
def test_train_names_the_bad_optimiser_option(option, value, needle, tmp_path):
    one_line_error(run("train", *TINY, "-o", tmp_path / "c.pt", option, value), needle)


@pytest.mark.parametrize("command", ["lesion", "gradients"])
def test_study_out_folder_under_a_file_is_a_user_error(command, tmp_path):
    (tmp_path / "afile").write_text("")
    one_line_error(run(command, tmp_path / "none.pt", "--out", tmp_path / "afile" / "out"),
                   "--out", "is a file, not a folder")


def test_paths_plot_under_a_file_is_a_user_error(tmp_path):
    (tmp_path / "afile").write_text("")
    one_line_error(run("paths", "-n", "5", "--plot", tmp_path / "afile" / "p.png"), "--plot")


def test_plot_record_checks_its_output_first_and_names_the_option(tmp_path):
    one_line_error(run("plot-record", tmp_path / "none.pt", "-o", tmp_path / "r.txt"), "--output", ".png")


def test_a_one_epoch_record_is_drawn_with_whole_epoch_ticks(monkeypatch, tmp_path):
    import resnet_cli.render.training as rt

    figures = []
    monkeypatch.setattr(rt, "save_figure", lambda fig, path: figures.append(fig))
    rt.plot_records([("net", [{"epoch": 1, "train_error": 0.5, "test_error": 0.6}])], tmp_path / "r.png")
    ax = figures[0].axes[0]
    assert [line.get_marker() for line in ax.lines] == ["o", "o"]  # a lone point, visible
    assert list(ax.get_xticks()) == [1]  # not 0.96, 0.98, ...


def test_eval_input_size_zero_is_refused_not_ignored(tiny_ckpt):
    one_line_error(run("eval", tiny_ckpt, "--input-size", "0", "--device", "cpu"), "input size", "got 0")


def test_lesion_and_gradients_take_dash_d_for_dataset_like_train_and_eval(tmp_path):
    for command in ("lesion", "gradients"):
        one_line_error(run(command, tmp_path / "none.pt", "-d", "synthetic"), "no such checkpoint")


# --------------------------------------------------------------------------- help
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


# --------------------------------------------------------------------------- what the JSON says
def test_spec_description_says_what_the_overrides_changed():
    doc = json.loads(run("params", "--arch", "cifar_resnet8", "--widths", "4,8,16", "-f", "json").stdout)
    assert doc["spec"]["description"].endswith("16/32/64 filters; modified: widths=4,8,16")
    same = json.loads(run("params", "--arch", "resnet20", "--widths", "16,32,64", "-f", "json").stdout)
    assert "modified" not in same["spec"]["description"]  # an override equal to the default changes nothing


@pytest.mark.parametrize("args, needle", [
    (["--list", "--plot", "p.png"], "--plot: not with --list"),  # the plot was silently never written
    (["--list", "--survival", "linear:0.5", "-r", "1:2"], "--range, --survival: not with --list"),
    (["--scale", "log"], "give --plot"),
])
def test_paths_refuses_options_that_would_be_ignored(args, needle, tmp_path):
    args = [str(tmp_path / a) if a == "p.png" else a for a in args]
    one_line_error(run("paths", "-n", "5", *args), needle)
    assert not (tmp_path / "p.png").exists()


def test_paths_stochastic_depth_and_survival_are_exclusive():
    one_line_error(run("paths", "-a", "resnet110", "--stochastic-depth", "0.5", "--survival", "linear:0.2"),
                   "not both")


def test_lesion_refuses_sampling_options_without_a_sampled_experiment(tmp_path):
    one_line_error(run("lesion", tmp_path / "none.pt", "--experiments", "single", "--samples", "5", "--max-k", "3"),
                   "--max-k, --samples", "only with multi or reorder")


def test_eval_help_says_the_default_dataset_is_the_checkpoints():
    text = " ".join(run("eval", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "instead of the checkpoint's" in text and "the default for train" not in text


@pytest.mark.parametrize("args", [["--arch", "densenet121", "--depth", "3"],
                                  ["--arch", "resnext50_32x4d", "--depth", "3", "--engine", "fvcore"]])
def test_params_table_at_80_columns_cuts_no_number(args):
    doc = json.loads(run("params", *args, "-f", "json").stdout)
    table = run("params", *args, env={"COLUMNS": "80"}).stdout
    assert "…" not in table and max(len(line) for line in table.splitlines()) <= 80
    rows = [row for stage in doc["stages"] for row in [stage, *stage.get("blocks", [])]]
    numbers = {f"{doc['params']:,}", f"{doc['macs']:,}"} | {f"{r['macs']:,}" for r in rows}
    if doc.get("fvcore"):
        numbers |= {f"{m['flops']:,}" for m in doc["fvcore"]["modules"]}
    missing = [n for n in numbers if n not in table]
    assert not missing, missing  # "1,040,449,…" before
