"""``paths``: the 2ⁿ paths of n residual blocks (Veit, Wilber & Belongie 2016) and stochastic depth
(Huang et al. 2016), against exact arithmetic, brute-force enumeration and the papers' numbers."""

import csv
import io
import itertools
import json
import math
import subprocess
import sys
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest
from cli_runner import run, run_json
from hypothesis import given, settings
from hypothesis import strategies as st

from resnet_cli import get_spec
from resnet_cli.analysis import paths as P

ROOT = Path(__file__).resolve().parents[1]


def paths(*args):
    return run("paths", *args)


def paths_json(*args):
    return run_json("paths", *args)


# --------------------------------------------------------------------------- exact counts
@given(st.integers(min_value=1, max_value=400))
def test_row_is_the_binomial_row_and_sums_to_two_to_the_n(n):
    row = P.binomial_row(n)
    assert row == [math.comb(n, k) for k in range(n + 1)]
    assert sum(row) == 2 ** n
    assert row == row[::-1]  # symmetric
    assert max(row) == row[n // 2] == row[(n + 1) // 2]  # largest at n/2
    assert all(row[k] < row[k + 1] for k in range(n // 2))  # rising to the middle


def test_known_exact_values():
    row = P.binomial_row(54)
    assert row[27] == 1_946_939_425_648_112  # C(54, 27)
    assert sum(row) == 18_014_398_509_481_984  # 2^54
    assert P.binomial_row(10)[5] == 252
    big = P.binomial_row(20_000)
    assert big[10_000] == math.comb(20_000, 10_000)
    assert math.floor(math.log10(big[10_000])) + 1 == 6019  # digits


def test_resnet110_most_paths_are_19_to_35_blocks_long():
    """Veit et al. 2016 (Fig. 6a): ResNet-110 has 54 blocks and most paths are 19-35 blocks long."""
    report = P.path_lengths_for_spec(get_spec("resnet110"), ranges=["19:35"])
    assert report.blocks == 54 and report.total == 2 ** 54
    (r,) = report.ranges
    exact = sum(math.comb(54, k) for k in range(19, 36))
    assert r.paths == exact == 17_657_095_043_635_292
    assert Fraction(r.paths, 2 ** 54) == Fraction(4_414_273_760_908_823, 4_503_599_627_370_496)
    assert round(r.share, 6) == 0.980166
    # The shortest range holding 95%: 20-34 (95.98%); dropping either end falls below 95%.
    c = report.central
    assert (c.first, c.last) == (20, 34)
    assert c.paths / 2 ** 54 >= 0.95
    assert sum(math.comb(54, k) for k in range(21, 35)) / 2 ** 54 < 0.95
    assert report.mean == 27 and report.std == pytest.approx(math.sqrt(54) / 2)


def test_mean_and_std_are_those_of_the_counts():
    report = P.path_lengths(37)
    mean = Fraction(sum(k * c for k, c in enumerate(report.counts)), report.total)
    var = Fraction(sum(k * k * c for k, c in enumerate(report.counts)), report.total) - mean ** 2
    assert mean == Fraction(37, 2) and var == Fraction(37, 4)
    assert report.modes == [18, 19]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=40),
       st.fractions(min_value=Fraction(1, 100), max_value=1))
def test_shortest_range_is_shortest_and_holds_the_mass(raw, mass):
    # A unimodal sequence: sort a rising and a falling half.
    half = len(raw) // 2
    weights = sorted(raw[:half]) + sorted(raw[half:], reverse=True)
    if sum(weights) == 0:
        weights[0] = 1
    total = sum(weights)
    a, b = P.shortest_range(weights, mass, total)
    assert sum(weights[a:b + 1]) >= mass * total
    width = b - a + 1
    for i in range(len(weights) - width + 2):  # no window one shorter holds the mass
        assert sum(weights[i:i + width - 1]) < mass * total


def test_mass_one_covers_every_length_and_tiny_mass_the_mode():
    assert (P.path_lengths(54, mass=1.0).central.first, P.path_lengths(54, mass=1.0).central.last) == (0, 54)
    c = P.path_lengths(54, mass=1e-9).central
    assert (c.first, c.last) == (27, 27)


# --------------------------------------------------------------------------- enumeration
@pytest.mark.parametrize("n", [1, 2, 5, 10])
def test_enumeration_agrees_with_the_counts(n):
    paths = list(P.iter_paths(n))
    assert len(paths) == len(set(paths)) == 2 ** n
    assert set(paths) == {tuple(c) for k in range(n + 1) for c in itertools.combinations(range(n), k)}
    by_length = Counter(len(p) for p in paths)
    assert [by_length[k] for k in range(n + 1)] == P.binomial_row(n)
    assert [len(p) for p in paths] == sorted(len(p) for p in paths)  # shortest first
    for k in range(n + 1):
        assert sum(1 for _ in P.iter_paths(n, k)) == P.count_paths(n, k) == math.comb(n, k)


def test_enumeration_is_lazy():
    first = next(P.iter_paths(20_000, 3))  # C(20000, 3) ~ 1.3e12 paths: must not materialise
    assert first == (0, 1, 2)


def test_block_names_follow_the_state_dict():
    names = P.block_names(get_spec("resnet110"))
    assert len(names) == 54 and names[0] == "layer1.0" and names[18] == "layer2.0" and names[-1] == "layer3.17"
    assert P.block_names(get_spec("resnet50"))[3] == "layer2.0"
    assert P.block_names(None, 3) == ["0", "1", "2"]
    # Other families: the plan's blocks, named as the built module names them (no model built, no torch).
    dense = get_spec("densenet40_12", layers="2,1,1")
    assert P.block_names(dense) == ["features.denseblock1.denselayer1", "features.denseblock1.denselayer2",
                                    "features.denseblock2.denselayer1", "features.denseblock3.denselayer1"]
    assert P.block_names(get_spec("highway20", layers="1,1,1")) == ["layer1.0", "layer2.0", "layer3.0"]
    # The Keras MiniModel's blocks are layer1.0 ... layer4.2 in the module: so in the listing (was block0 ...)
    assert P.block_names(get_spec("keras_minimodel"))[:4] == ["layer1.0", "layer1.1", "layer1.2", "layer2.0"]


def test_plain_net_has_one_path():
    report = P.path_lengths_for_spec(get_spec("plain110"))
    assert report.total == 1 and report.counts[54] == 1 and sum(report.counts) == 1
    assert list(P.iter_paths(54, residual=False)) == [tuple(range(54))]
    assert (report.central.first, report.central.last) == (54, 54)


# --------------------------------------------------------------------------- stochastic depth
def _brute_force(probs):
    """P(depth = k) and the expected number of alive paths of length k, by enumerating every drop pattern."""
    n = len(probs)
    depth = [0.0] * (n + 1)
    alive = [0.0] * (n + 1)
    for mask in itertools.product((0, 1), repeat=n):
        weight = math.prod(p if m else 1 - p for p, m in zip(probs, mask))
        depth[sum(mask)] += weight
        alive_blocks = sum(mask)
        for k in range(alive_blocks + 1):  # every subset of the running blocks is an alive path
            alive[k] += weight * math.comb(alive_blocks, k)
    return depth, alive


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=1, max_size=8))
def test_stochastic_depth_matches_brute_force(probs):
    report = P.path_lengths(len(probs), survival=probs)
    sd = report.stochastic
    depth, alive = _brute_force(probs)
    assert sd.depth == pytest.approx(depth, abs=1e-12)
    assert [sd.expected_alive(k) for k in range(len(probs) + 1)] == pytest.approx(alive, rel=1e-9, abs=1e-12)
    assert sd.expected_alive_paths == pytest.approx(sum(alive))
    assert sd.expected_depth == pytest.approx(sum(k * d for k, d in enumerate(depth)))


def test_all_blocks_surviving_gives_a_point_and_the_binomial():
    sd = P.path_lengths(30, survival=[1.0] * 30).stochastic
    assert sd.depth[30] == 1.0 and sum(sd.depth[:30]) == 0.0
    assert sd.alive_share == pytest.approx([math.comb(30, k) / 2 ** 30 for k in range(31)], rel=1e-12)
    assert sd.expected_alive_paths == pytest.approx(2 ** 30)


@pytest.mark.parametrize("q", [0.2, 0.5, 0.9])
def test_equal_survival_gives_binomial_depth(q):
    n = 40
    sd = P.path_lengths(n, survival=[q] * n).stochastic
    assert sd.depth == pytest.approx([math.comb(n, k) * q ** k * (1 - q) ** (n - k) for k in range(n + 1)],
                                     rel=1e-9, abs=1e-300)
    r = q / (1 + q)  # alive paths: Binomial(n, q / (1 + q))
    assert sd.alive_share == pytest.approx([math.comb(n, k) * r ** k * (1 - r) ** (n - k) for k in range(n + 1)],
                                           rel=1e-9, abs=1e-300)


def test_linear_schedule_expected_depth_is_3L_minus_1_over_4():
    """Huang et al. 2016: p_L = 0.5 linear decay gives E[depth] = (3L - 1)/4, about 40 of ResNet-110's 54."""
    schedule, probs = P.parse_survival("linear:0.5", 54)
    assert schedule == "linear:0.5"
    assert probs == pytest.approx(get_spec("resnet110", stochastic_depth=0.5).survival_probabilities())
    sd = P.path_lengths(54, survival=probs).stochastic
    assert sd.expected_depth == pytest.approx((3 * 54 - 1) / 4) == pytest.approx(40.25)
    assert sum(k * d for k, d in enumerate(sd.depth)) == pytest.approx(40.25)
    assert sum(sd.depth) == pytest.approx(1.0)
    assert sd.depth_range.first <= 40 <= sd.depth_range.last


def test_large_stochastic_depth_stays_finite():
    sd = P.path_lengths(5000, survival=P.linear_survival(5000, 0.5)).stochastic
    assert sum(sd.depth) == pytest.approx(1.0) and sum(sd.alive_share) == pytest.approx(1.0)
    assert sd.expected_depth == pytest.approx((3 * 5000 - 1) / 4)
    assert all(x >= 0.0 for x in sd.depth)


# --------------------------------------------------------------------------- bad input (library)
@pytest.mark.parametrize("n", [0, -1, 20_001, 10 ** 100, 2.5, "x", True])
def test_bad_block_counts(n):
    with pytest.raises(P.PathsError):
        P.check_blocks(n)


@pytest.mark.parametrize("text", ["35:19", "0:55", "-1:3", "a:b", "1:2:3"])
def test_bad_ranges(text):
    with pytest.raises(P.PathsError):
        P.parse_range(text, 54)


def test_open_ranges():
    assert P.parse_range("19:", 54) == (19, 54)
    assert P.parse_range(":35", 54) == (0, 35)
    assert P.parse_range("27", 54) == (27, 27)


# --------------------------------------------------------------------------- CLI
def test_cli_json_schema_and_exact_integers():
    data = paths_json("--blocks", 54, "--range", "19:35")
    assert data["blocks"] == 54 and data["total_paths"] == 2 ** 54 and data["total_paths_expr"] == "2^54"
    assert data["mean_length"] == 27 and data["std_length"] == pytest.approx(3.674234614)
    assert data["mode_lengths"] == [27]
    assert data["central_range"] == {"first": 20, "last": 34, "paths": sum(math.comb(54, k) for k in range(20, 35)),
                                     "share": pytest.approx(0.9597764359), "mass": 0.95,
                                     "share_exact": data["central_range"]["share_exact"]}
    num, den = map(int, data["central_range"]["share_exact"].split("/"))
    assert Fraction(num, den) == Fraction(data["central_range"]["paths"], 2 ** 54)
    assert data["ranges"][0]["paths"] == 17_657_095_043_635_292
    lengths = data["lengths"]
    assert [row["length"] for row in lengths] == list(range(55))  # 54 blocks: every length is listed
    assert [row["paths"] for row in lengths] == [math.comb(54, k) for k in range(55)]
    assert all(isinstance(row["paths"], int) for row in lengths)
    assert data["omitted_lengths"] == {} and data["stochastic_depth"] is None
    assert "length" in data["units"]


def test_cli_arch_block_counts():
    for arch, n in (("resnet110", 54), ("resnet1202", 600), ("resnet50", 16), ("resnet20", 9)):
        data = paths_json("--arch", arch)
        assert data["blocks"] == n and data["total_paths"] == 2 ** n and data["arch"] == arch
    plain = paths_json("--arch", "plain20")
    assert plain["total_paths"] == 1 and plain["residual"] is False
    assert [(r["length"], r["paths"]) for r in plain["lengths"]] == [(9, 1)]


def test_cli_large_n_lists_the_relevant_lengths_and_sums_the_rest_exactly():
    data = paths_json("--blocks", 1000)
    first, last = data["lengths"][0]["length"], data["lengths"][-1]["length"]
    assert 0 < first < 500 < last < 1000 and first + last == 1000  # symmetric window
    listed = sum(r["paths"] for r in data["lengths"])
    hidden = data["omitted_lengths"]["below"]["paths"] + data["omitted_lengths"]["above"]["paths"]
    assert listed + hidden == 2 ** 1000
    assert data["omitted_lengths"]["below"]["share"] < 1e-29
    every = paths_json("--blocks", 1000, "--all-lengths")
    assert len(every["lengths"]) == 1001 and every["omitted_lengths"] == {}


def test_cli_exact_integers_beyond_the_int_str_digit_limit(monkeypatch):
    """C(3000, 1500) has 902 digits; with the interpreter's limit lowered to 640 the output must stay exact."""
    if not hasattr(sys, "set_int_max_str_digits"):
        pytest.skip("no int/str digit limit on this Python")
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        result = paths("--blocks", 3000, "--format", "json")
        assert result.exit_code == 0, result.output
        csv_result = paths("--blocks", 3000, "--format", "csv")
        assert csv_result.exit_code == 0, csv_result.output
        assert sys.get_int_max_str_digits() == 640  # restored
        sys.set_int_max_str_digits(0)
        data = json.loads(result.stdout)
        middle = next(r for r in data["lengths"] if r["length"] == 1500)
        assert middle["paths"] == math.comb(3000, 1500)
        rows = list(csv.DictReader(io.StringIO(csv_result.stdout)))
        assert int(next(r for r in rows if r["length"] == "1500")["paths"]) == math.comb(3000, 1500)
    finally:
        sys.set_int_max_str_digits(old)


def test_cli_csv():
    result = paths("--blocks", 10, "--format", "csv", "--survival", "constant:0.5")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [int(r["paths"]) for r in rows] == P.binomial_row(10)
    assert float(rows[10]["depth_probability"]) == pytest.approx(0.5 ** 10)


def test_cli_stochastic_depth():
    data = paths_json("--blocks", 54, "--survival", "linear:0.5")
    sd = data["stochastic_depth"]
    assert sd["expected_depth"] == pytest.approx(40.25) and sd["schedule"] == "linear:0.5"
    assert sum(r["depth_probability"] for r in sd["lengths"]) == pytest.approx(1.0)
    assert len(sd["survival"]) == 54 and sd["survival"][-1] == pytest.approx(0.5)
    # An arch built with stochastic depth uses its own schedule; the same numbers.
    from_spec = paths_json("--arch", "resnet110", "--stochastic-depth", "0.5")["stochastic_depth"]
    assert from_spec["expected_depth"] == pytest.approx(40.25)
    assert from_spec["lengths"] == sd["lengths"]


def test_cli_table_shows_the_figures():
    result = paths("--arch", "resnet110", "--range", "19:35", "--survival", "linear:0.5")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "18,014,398,509,481,984" in out and "1,946,939,425,648,112" in out
    assert "20–34" in out and "98.0166%" in out and "40.25" in out


def test_cli_table_gives_a_tiny_range_share_in_scientific_notation():
    # 19-35 of ResNet-1202's 600 blocks: sum C(600, k) for k = 19..35 over 2^600, about 1.55e-124, not "0.0000%"
    share = sum(math.comb(600, k) for k in range(19, 36)) / 2**600
    result = paths("--arch", "resnet1202", "--range", "19:35", "--range", "290:310")
    assert result.exit_code == 0, result.output
    assert f"= {share:.2e}" in result.stdout and "0.0000%" not in result.stdout
    assert "60.8715%" in result.stdout  # ordinary shares keep their percentage


def test_cli_table_groups_lengths_of_deep_nets():
    result = paths("--blocks", 10_000, "--rows", 20)
    assert result.exit_code == 0, result.output
    assert "rows group" in result.stdout and "4902–5098" in result.stdout


def test_cli_list():
    result = paths("--blocks", 3, "--list", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["blocks"] for r in rows] == ["", "0", "1", "2", "0 1", "0 2", "1 2", "0 1 2"]
    data = paths_json("--arch", "resnet110", "--list", "--length", 2, "--limit", 3)
    assert data["available"] == math.comb(54, 2) and data["listed"] == 3
    assert data["paths"][0] == {"length": 2, "blocks": [0, 1], "names": ["layer1.0", "layer1.1"]}
    assert len(data["paths"]) == 3
    table = paths("--arch", "resnet20", "--list", "--length", 9)
    assert table.exit_code == 0 and table.stdout.split() == ["9"] + [f"layer{s}.{j}" for s in (1, 2, 3)
                                                                       for j in range(3)]


def test_cli_list_refuses_huge_enumerations_unless_asked():
    refused = paths("--blocks", 54, "--list")
    assert refused.exit_code == 2 and "2^54" in refused.output and "--force" in refused.output
    assert paths("--blocks", 17, "--list", "--limit", 5).exit_code == 0
    assert paths("--blocks", 17, "--list").exit_code == 2  # 131,072 > 100,000
    forced = paths("--blocks", 17, "--list", "--force", "--format", "csv")
    assert forced.exit_code == 0 and len(forced.stdout.splitlines()) == 2 ** 17 + 1


@pytest.mark.parametrize("limit", [2 ** 64, 10 ** 40])
def test_cli_list_refuses_a_limit_no_lifetime_reaches(limit):
    """`--limit 18446744073709551616` with --force used to stream into a file until killed; a limit past
    P.MAX_LISTING_LIMIT (32 years at a million paths a second) is refused at once, --force or not."""
    result = paths("--blocks", 64, "--list", "--force", "--limit", limit)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "lifetime" in lines[0], lines
    assert result.stdout == ""


@pytest.mark.parametrize("args", [
    ["--blocks", 0], ["--blocks", -5], ["--blocks", "2.5"], ["--blocks", "x"], ["--blocks", 10 ** 9],
    ["--blocks", 54, "--mass", 0], ["--blocks", 54, "--mass", 1.01], ["--blocks", 54, "--mass", "nan"],
    ["--blocks", 54, "--range", "35:19"], ["--blocks", 54, "--range", "50:60"], ["--blocks", 54, "--range", "x"],
    ["--blocks", 54, "--arch", "resnet110"], [], ["--arch", "no_such_net"],
    ["--blocks", 5, "--survival", "linear:0"], ["--blocks", 5, "--survival", "cubic:0.5"],
    ["--arch", "plain20", "--survival", "linear:0.5"],
    ["--blocks", 5, "--list", "--length", 6], ["--blocks", 5, "--list", "--length", -1],
    ["--blocks", 5, "--list", "--limit", 0], ["--blocks", 20_001],
    ["--blocks", 5, "--length", 2], ["--blocks", 5, "--layers", "1,1"],
    ["--blocks", 5, "--plot", "out.xyz"], ["--blocks", 5, "--plot", "no_suffix"],
    ["--blocks", 5, "--plot", "/proc/no/such/dir/p.png"],
])
def test_cli_bad_input_is_one_line_and_exit_2(args):
    result = paths(*args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "Traceback" not in result.output


def test_cli_plot(tmp_path):
    for scale in ("linear", "log"):
        out = tmp_path / f"paths_{scale}.png"
        result = paths("--arch", "resnet110", "--range", "19:35", "--survival", "linear:0.5", "--plot", out,
                     "--scale", scale, "--format", "json")
        assert result.exit_code == 0, result.output
        json.loads(result.stdout)  # the plot does not pollute the JSON
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_paths_never_imports_torch():
    code = ("import sys\n"
            "from resnet_cli.cli import app\n"
            "for args in (['paths', '--blocks', '54', '-f', 'json'], ['paths', '--arch', 'resnet110', '--survival',"
            " 'linear:0.5', '-f', 'csv'], ['paths', '-n', '4', '--list']):\n"
            "    assert app(args, standalone_mode=False) in (0, None)\n"
            "assert 'torch' not in sys.modules, 'paths imported torch'\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_ten_thousand_blocks_exactly_and_quickly():
    import time

    start = time.perf_counter()
    report = P.path_lengths(10_000)
    elapsed = time.perf_counter() - start
    assert sum(report.counts) == 2 ** 10_000 and report.counts[5000] == math.comb(10_000, 5000)
    assert elapsed < 5.0  # ~0.03 s on one core; generous for a loaded CI machine


def test_every_share_column_is_in_one_unit():
    """A share column went 6.15e-05 (a fraction) then 0.02% (a percent) down the same column."""
    table = run("paths", "--arch", "resnet110", "--survival", "linear:0.5").stdout
    rows = [line.split() for line in table.splitlines() if line.split() and line.split()[0].isdigit()]
    assert len(rows) == 55
    for cells in rows:
        share, p_depth, alive = cells[2], cells[-2], cells[-1]
        assert all(c.endswith("%") for c in (share, p_depth, alive)), cells
    assert rows[0][2] == "5.55e-15%"  # 1 of 2^54 paths, in percent: 100 / 2^54
    assert float(rows[27][2].rstrip("%")) == pytest.approx(100 * math.comb(54, 27) / 2**54, abs=0.005)
