"""Figures drawn like the papers' (checked on the matplotlib objects, not by eye): lesion studies, training
records, path histograms; plot-lesion's files."""

import json
import math

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


def test_a_one_epoch_record_is_drawn_with_whole_epoch_ticks(monkeypatch, tmp_path):
    import resnet_cli.render.training as rt

    figures = []
    monkeypatch.setattr(rt, "save_figure", lambda fig, path: figures.append(fig))
    rt.plot_records([("net", [{"epoch": 1, "train_error": 0.5, "test_error": 0.6}])], tmp_path / "r.png")
    ax = figures[0].axes[0]
    assert [line.get_marker() for line in ax.lines] == ["o", "o"]  # a lone point, visible
    assert list(ax.get_xticks()) == [1]  # not 0.96, 0.98, ...


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
