"""Every user mistake is one ``Error: ...`` line with exit code 2 (130 for Ctrl-C), found *before* the work, and no
option is silently ignored."""

import pytest
from cli_runner import one_line_error, run

from resnet_cli.cli import app

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


@pytest.mark.parametrize("seed", ["-1", "4294967296", "99999999999999999999"])  # past MAX_SEED = 2**32 - 1
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


def test_eval_input_size_zero_is_refused_not_ignored(tiny_ckpt):
    one_line_error(run("eval", tiny_ckpt, "--input-size", "0", "--device", "cpu"), "input size", "got 0")


def test_lesion_and_gradients_take_dash_d_for_dataset_like_train_and_eval(tmp_path):
    for command in ("lesion", "gradients"):
        one_line_error(run(command, tmp_path / "none.pt", "-d", "synthetic"), "no such checkpoint")


# --------------------------------------------------------------------------- what the JSON says
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
