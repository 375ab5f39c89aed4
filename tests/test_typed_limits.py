"""Typed sizes and names: each size past its limit is refused by that limit in one line, before any work;
a name is printed as typed (markup and emoji codes are text)."""

from __future__ import annotations

from hostile_runner import assert_refused, run_cases


def test_typed_sizes_are_refused_by_the_limit_they_pass(tmp_path):
    cases = [
        {"argv": ["params", "--arch", "densenet1000000000_12"]},
        {"argv": ["params", "--arch", "resnet20", "--set", "layers=1000000000,1,1"]},
        {"argv": ["compare", "resnet20", "cifar_resnet6000000002"]},
        {"argv": ["params", "--arch", "resnet18", "--widths", "100000,1,1,1"]},
        {"argv": ["params", "--arch", "resnet20", "--set", "name=" + "x" * 300]},
        {"argv": ["params", "--arch", "resnet20", "--set", "name=a\x1b]0;pwned\x07b\x1b[2J"]},
        {"argv": ["paths", "--arch", "resnet20", "--set", f"layers={10**6},1,1"]},
        {"argv": ["params", "--arch", "resnet18", "--input-size", "100000"]},
        {"argv": ["params", "--arch", "resnet18", "--input-size", "9" * 5000]},  # past int()'s 4,300 digits
    ]
    results = run_cases(tmp_path, cases)
    for result in results[:3]:
        assert_refused(result, "at most 20,000 blocks")
    assert_refused(results[3], "at most 16,384")
    assert_refused(results[4], "200 printable characters")
    assert_refused(results[5], "printable", "\\x1b")  # shown escaped, never sent
    assert_refused(results[6], "20,000 blocks")
    assert_refused(results[7], "8192 pixels")
    assert_refused(results[8], "8192 pixels")
    assert len(results[8]["stderr"]) < 200  # the typed value is cut, not printed whole


def test_markup_in_a_name_is_printed_as_typed(tmp_path):
    [result] = run_cases(tmp_path, [{"argv": ["params", "--arch", "resnet20", "--set", "name=[/bold]x[red]"]}])
    assert result["code"] == 0, result["stderr"]
    assert "[/bold]x[red]" in result["stdout"]


def test_an_emoji_code_in_a_name_is_printed_as_typed(tmp_path):
    [result] = run_cases(tmp_path, [{"argv": ["params", "--arch", "resnet20", "--set", "name=net:fire:x"]}])
    assert result["code"] == 0, result["stderr"]
    assert "net:fire:x" in result["stdout"]  # rich's default would print net🔥x
