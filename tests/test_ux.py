"""What a user sees: figures drawn like the papers' (checked on the matplotlib objects, not by eye), names that say
what was built, help without noise, eval's top-5 and per-class counts."""

import json
import math
import re

import pytest
from cli_runner import run


def _study(residual: bool, errors: list[float], skipped: tuple[int, ...] = (), classes: int = 10) -> dict:
    """A lesion study as ``lesion --out`` saves it: 450 images, blocks layer1.0 ... in forward order."""
    names = [f"layer{1 + i // 3}.{i % 3}" for i in range(len(errors))]
    single = [{"block": n, "index": i, "stage": 1 + i // 3, "downsample": i % 3 == 0 and i > 0, "error": e,
               "correct": round(450 * (1 - e))} for i, (n, e) in enumerate(zip(names, errors)) if i not in skipped]
    return {"arch": "cifar_resnet9" if residual else "cifar_plain9", "overrides": {"input_size": 16},
            "residual": residual, "dataset": "digits", "num_classes": classes, "images": 450,
            "baseline_error": 0.02, "single": single,
            "skipped": [{"block": names[i], "index": i, "reason": "shape changes"} for i in skipped],
            "multi": [{"k": k, "errors": [0.01 * k, 0.03 * k], "mean": 0.02 * k, "std": 0.05, "configs": []}
                      for k in (1, 2, 3)],
            "reorder": []}


@pytest.fixture
def figures(monkeypatch):
    """Figures as drawn, instead of files."""
    import resnet_cli.render.style as style
    import resnet_cli.render.training as training

    drawn = []
    monkeypatch.setattr(style, "save_figure", lambda fig, path: drawn.append(fig))
    monkeypatch.setattr(training, "save_figure", lambda fig, path: drawn.append(fig))
    return drawn


def test_single_deletion_figure_names_blocks_marks_chance_and_leaves_gaps(figures, tmp_path):
    from resnet_cli.render.lesion import lesion_plots

    resnet = _study(True, [0.5, 0.1, 0.05, 0.3, 0.04, 0.03, 0.2, 0.03, 0.02])
    plain = _study(False, [0.9] * 9, skipped=(3, 6))
    lesion_plots([resnet, plain], tmp_path)
    ax = figures[0].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()][:4] == ["layer1.0", "layer1.1", "layer1.2", "layer2.0"]
    lines = {line.get_label(): line for line in ax.lines}
    plain_line = next(v for k, v in lines.items() if k.startswith("cifar_plain9"))
    ys = list(plain_line.get_ydata())
    assert math.isnan(ys[3]) and math.isnan(ys[6]) and ys[2] == pytest.approx(90.0)  # gaps, not bridged
    chance = next(v for k, v in lines.items() if k.startswith("chance"))
    assert list(chance.get_ydata()) == [pytest.approx(90.0)] * 2  # 1 - 1/10 of 10 classes
    # the overrides both nets share are said once, in the title
    assert "cifar_resnet9 vs cifar_plain9 (input_size=16) on digits" in ax.get_title().replace("\n", " ")
    assert ax.get_legend() is None and figures[0].legends  # the legend is outside the axes


def test_single_deletion_figure_tells_projection_blocks_from_downsampling_ones(figures, tmp_path):
    """ResNet-50's layer1.0 widens 64 -> 256 at 56x56: a projection block, not a downsampling one (layer2.0)."""
    from resnet_cli.render.lesion import lesion_plots

    study = _study(True, [0.5, 0.1, 0.05, 0.3, 0.04, 0.03])
    for row in study["single"]:
        row["shape_change"] = {0: "projection", 3: "downsampling"}.get(row["index"])
        row["downsample"] = row["shape_change"] == "downsampling"
    old = _study(True, [0.5, 0.1, 0.05, 0.3, 0.04, 0.03])  # written before shape_change: downsample only
    lesion_plots([study, old], tmp_path)
    lines = {line.get_label(): line for line in figures[0].axes[0].lines}
    assert list(lines["projection block"].get_xdata()) == [0]
    assert list(lines["downsampling block"].get_xdata()) == [3]
    assert lines["projection block"].get_marker() != lines["downsampling block"].get_marker()
    marked = [line for line in figures[0].axes[0].lines if line.get_marker() == "s"]
    assert [list(line.get_xdata()) for line in marked] == [[3], [3]]  # the old study's downsample: true, drawn


def test_two_studies_of_one_net_get_their_own_colours_and_names(figures, tmp_path):
    """Seeds, epochs or test subsets of one net: told apart by where each came from (plot-lesion's folders)."""
    from resnet_cli.render.lesion import lesion_plots

    a, b = _study(True, [0.1] * 9), _study(True, [0.2] * 9)
    a["source"], b["source"] = "seed0", "seed1"
    lesion_plots([a, b], tmp_path)
    ax = figures[0].axes[0]
    lines = [line for line in ax.get_lines() if line.get_label() in ("cifar_resnet9 [seed0]", "cifar_resnet9 [seed1]")]
    assert len(lines) == 2 and lines[0].get_color() != lines[1].get_color()
    assert " vs " not in ax.get_title()  # one net, named once
    b["source"] = "seed0"  # folders alike too: their places in the command
    first = len(figures)
    lesion_plots([a, b], tmp_path)
    labels = {line.get_label() for line in figures[first].axes[0].get_lines()}
    assert {"cifar_resnet9 [1]", "cifar_resnet9 [2]"} <= labels


def test_k_figure_has_whole_k_ticks_and_bars_clipped_at_zero(figures, tmp_path):
    from resnet_cli.render.lesion import lesion_plots

    lesion_plots(_study(True, [0.1] * 9), tmp_path)
    ax = figures[1].axes[0]
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    # mean 2% with std 5%: the bar runs from 0 (not -3%) to 7%
    segments = [seg for coll in ax.collections for seg in coll.get_segments()]
    lows = [min(p[1] for p in seg) for seg in segments]
    assert min(lows) == pytest.approx(0.0) and all(low >= 0 for low in lows)
    assert max(max(p[1] for p in seg) for seg in segments) == pytest.approx(6 + 5)  # k = 3: 6% + 5%


def test_record_plot_in_percent_with_a_log_option(figures, tmp_path):
    from resnet_cli.render.training import plot_records

    record = [{"epoch": e, "train_error": te, "test_error": 0.5 / e} for e, te in ((1, 0.6), (2, 0.01), (3, 0.0))]
    plot_records([("resnet20", record)], tmp_path / "r.png", log=True)
    ax = figures[0].axes[0]
    assert ax.get_yscale() == "log"
    low, high = ax.get_ylim()
    assert 0 < low < 1.0 and high <= 100  # the 0% final train error sits on the floor, not off the axis
    assert "log" in ax.get_ylabel() and "%" in ax.get_ylabel()
    plot_records([("resnet20", record)], tmp_path / "r.png")
    assert figures[1].axes[0].get_ylim() == (0.0, pytest.approx(60 * 1.08))


def test_a_short_log_range_is_labelled_in_plain_percentages(figures, tmp_path):
    from resnet_cli.render.training import plot_records

    record = [{"epoch": e, "train_error": t, "test_error": v}
              for e, t, v in ((1, 0.8, 0.88), (2, 0.6, 0.7), (3, 0.4, 0.45), (4, 0.35, 0.4))]
    plot_records([("resnet20", record)], tmp_path / "r.png", log=True)
    fig = figures[0]
    fig.canvas.draw()
    ax = fig.axes[0]
    shown = [t.get_text() for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True) if t.get_text()]
    assert {"20", "30", "40", "60", "100"} <= set(shown), shown  # not 2x10^1 ... 6x10^1 beside a plain 100
    assert not any("times" in t or "^" in t for t in shown), shown


def test_log_path_histogram_keeps_its_legend_off_the_data(figures, tmp_path):
    from resnet_cli.analysis.paths import path_lengths
    from resnet_cli.render.paths import paths_plot

    paths_plot(path_lengths(54), tmp_path / "p.png", scale="log")
    assert figures[0].axes[0].get_legend() is None and figures[0].legends


def test_plot_lesion_overlays_saved_studies_in_png_and_pdf(tmp_path):
    for name, study in (("a", _study(True, [0.1] * 9)), ("b", _study(False, [0.9] * 9, skipped=(3,)))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "lesion.json").write_text(json.dumps(study))
    result = run("plot-lesion", tmp_path / "a", tmp_path / "b" / "lesion.json", "--out", tmp_path / "fig",
                 "--figure-type", "png,pdf")
    assert result.exit_code == 0, result.output
    for stem in ("single", "multi"):
        assert (tmp_path / "fig" / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / "fig" / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
    bad = run("plot-lesion", tmp_path / "none", "--out", tmp_path / "fig")
    assert bad.exit_code == 2 and "no such file" in bad.output


# --------------------------------------------------------------------------- names, flags, help
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


# --------------------------------------------------------------------------- eval
def test_eval_reports_top5_and_per_class_counts(tmp_path):
    import torch

    from resnet_cli.training import evaluate

    class Fixed(torch.nn.Module):
        """Logits ranking classes label + r, label + r - 1, ... (mod 10) from the top, for an image x = (label, r):
        top-1 right for r = 0 only, top-5 right for r < 5."""

        def forward(self, x):
            n = x.shape[0]
            labels, r = x[:, 0].long(), x[:, 1].long()
            logits = torch.zeros(n, 10)
            for rank in range(10):
                logits[torch.arange(n), (labels + r - rank) % 10] = 10.0 - rank
            return logits

    labels = torch.arange(70) % 10
    data = torch.utils.data.TensorDataset(torch.stack([labels, torch.arange(70) % 7], 1).float(), labels)
    result = evaluate(Fixed(), data, batch_size=16, detailed=True)
    # image i has label i % 10 and r = i % 7: top-1 right where r = 0 (10 images), top-5 where r < 5 (50)
    assert (result.correct, result.top5_correct, result.images) == (10, 50, 70)
    assert result.class_images == [7] * 10
    assert sum(result.class_correct) == 10
    assert result.class_correct == [sum(1 for i in range(70) if i % 10 == c and i % 7 == 0) for c in range(10)]


# --------------------------------------------------------------------------- progress in a log file
TINY_TRAIN = ["--arch", "cifar_resnet8", "--widths", "4,8,16", "--set", "stem_width=4", "--input-size", "12",
              "--dataset", "synthetic", "--limit", "64", "--test-limit", "32", "--epochs", "1", "--device", "cpu"]


def _cli(tmp_path, *args, status_every="0"):
    """The CLI as a user runs it, stderr redirected to a file (not a terminal): (exit code, stdout, stderr)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "RESNET_CLI_STATUS_EVERY": status_every}
    err_path = tmp_path / "stderr.log"
    with open(err_path, "w") as err:
        proc = subprocess.run([sys.executable, "-m", "resnet_cli", *map(str, args)], cwd=root, env=env,
                              stdout=subprocess.PIPE, stderr=err, text=True, check=False, timeout=600)
    return proc.returncode, proc.stdout, err_path.read_text()


def test_train_lesion_and_fvcore_write_status_lines_to_a_log_and_json_stays_one_document(tmp_path):
    ckpt = tmp_path / "tiny.pt"
    code, out, err = _cli(tmp_path, "train", *TINY_TRAIN, "-o", ckpt, "--no-best")
    assert code == 0, err
    assert re.search(r"^train .*steps", err, re.M), err  # 'train epoch 1/1: 1/1 steps (100%) ...'
    code, out, err = _cli(tmp_path, "lesion", ckpt, "--experiments", "single", "--device", "cpu")
    assert code == 0, err
    assert re.search(r"^lesion .*images", err, re.M), err
    code, out, err = _cli(tmp_path, "params", "--arch", "resnet20", "--engine", "fvcore")
    assert code == 0, err
    assert re.search(r"^fvcore", err, re.M), err
    # JSON on stdout is exactly one document, whatever goes to stderr
    # JSON on stdout is exactly one document, and the status lines still go to stderr beside it (a batch job's
    # log must not be silent): only --quiet silences them
    code, out, err = _cli(tmp_path, "lesion", ckpt, "--experiments", "single", "--device", "cpu", "-f", "json")
    assert code == 0, err
    json.loads(out)
    assert out.strip().startswith("{") and out.strip().endswith("}")
    assert re.search(r"^lesion .*images", err, re.M), err
    code, out, err = _cli(tmp_path, "params", "--arch", "resnet20", "--engine", "fvcore", "-f", "json")
    assert code == 0 and json.loads(out)["fvcore"]["conv_linear"] == json.loads(out)["macs"]
    assert re.search(r"^fvcore", err, re.M), err
    code, out, err = _cli(tmp_path, "lesion", ckpt, "--experiments", "single", "--device", "cpu", "-f", "json", "-q")
    assert code == 0 and err == "" and json.loads(out)["single"]


def test_quiet_silences_the_status_lines(tmp_path):
    code, _, err = _cli(tmp_path, "params", "--arch", "resnet20", "--engine", "fvcore", "--quiet")
    assert code == 0 and err == ""


def test_a_missing_checkpoint_is_refused_before_torch_is_imported(monkeypatch, tmp_path):
    import sys

    for command in (["eval"], ["lesion"], ["gradients"], ["plot-record"], ["train", "--resume"]):
        monkeypatch.setitem(sys.modules, "torch", None)  # importing torch now fails: the refusal must come first
        result = run(*command, tmp_path / "none.pt")
        monkeypatch.undo()
        assert result.exit_code == 2 and "no such checkpoint" in result.output, (command, result.output)


def test_the_resume_note_on_a_changed_schedule_comes_before_training(tmp_path):
    ckpt = tmp_path / "tiny.pt"
    assert _cli(tmp_path, "train", *TINY_TRAIN, "-o", ckpt, "--no-best", "-q")[0] == 0
    code, _, err = _cli(tmp_path, "train", "--resume", ckpt, "--epochs", "2", "--no-best")
    assert code == 0, err
    lines = err.splitlines()
    note = next(i for i, line in enumerate(lines) if "epochs changed from 1 to 2" in line)
    first_step = next(i for i, line in enumerate(lines) if line.startswith("train"))
    assert note < first_step, err


def test_k1_of_multi_is_the_mean_of_the_single_deletions_when_every_set_fits_in_the_samples():
    """With C(n, 1) = n <= --samples, multi runs every one-block set once: its k = 1 mean is the single table's mean
    (the README's lesion_digits paragraph quotes it as such)."""
    import torch

    from resnet_cli.analysis.lesion import lesion_study
    from resnet_cli.models import build_model
    from resnet_cli.registry import get_spec

    torch.manual_seed(0)
    model = build_model(get_spec("cifar_resnet14", input_size=8, widths="4,8,16", stem_width=4)).eval()
    x, y = torch.randn(40, 3, 8, 8), torch.randint(0, 10, (40,))
    result = lesion_study(model, x, y, experiments=["single", "multi"], max_k=1, samples=10)
    single = sorted(r.error for r in result.single)
    assert len(single) == 6 and sorted(result.multi[0].errors) == single
    assert result.multi[0].mean == pytest.approx(sum(single) / 6)
