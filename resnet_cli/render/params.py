"""Tables and CSV for ``archs``, ``params`` and ``compare``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from . import fmt_int, fmt_shape, fmt_si, print_table, safe


def params_table(report: Any, console: Any, memory: bool = True) -> None:
    """The size table, then its notes; ``memory``: the memory estimates' table too (when the report has them)."""
    from rich import box  # here, not at the top: JSON and CSV start faster without rich
    from rich.table import Table

    h, w = report.input_hw or (report.input_size, report.input_size)
    title = (f"{safe(report.label)}  ·  input {h}x{w}  ·  "
             f"{report.num_classes} classes  ·  engine: {report.engine}")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    # the receptive field (px) with the blocks (--depth 2 and more): the stages alone keep their familiar table
    with_rf = any(row.level == 2 for row in report.rows) and any(r.receptive_field for r in report.rows)
    rows = [("  " * (row.level - 1) + row.name, fmt_shape(row.out_shape), fmt_int(row.params), fmt_int(row.macs),
             f"{100 * row.share:.1f}%", *([fmt_int(row.receptive_field)] if with_rf else []), row.detail)
            for row in report.rows]
    total = ("total", "", fmt_int(report.params), fmt_int(report.macs), "100.0%", *([""] if with_rf else []), "")
    columns = [("name", "left"), ("output", "right"), ("params", "right"), ("MACs", "right"), ("share", "right"),
               *([("RF px", "right")] if with_rf else []), ("", "left")]
    _add_uncut_columns(table, columns, [*rows, total], text_columns={0: 16, len(columns) - 1: 10},
                       width=console.width)
    table.columns[-1].style = "dim"
    for row, cells in zip(report.rows, rows):
        table.add_row(*cells, style="bold" if row.level == 1 else ("" if row.level == 2 else "dim"))
    table.add_section()
    table.add_row(*total, style="bold")
    print_table(console, table)
    console.print(
        f"params {fmt_int(report.params)} ({fmt_si(report.params)}; trainable {fmt_int(report.trainable_params)})"
        f"  ·  buffers {fmt_int(report.buffers)} (BN running statistics)"
        f"  ·  MACs {fmt_int(report.macs)} ({fmt_si(report.macs)})"
        f"  ·  FLOPs {fmt_int(report.flops)} ({fmt_si(report.flops)}) = 2 x MACs"
        f"  ·  {report.residual_blocks} {_blocks_word(report)}, depth {report.depth}"
    )
    if report.stochastic_depth is not None:
        sd = report.stochastic_depth
        console.print(
            f"stochastic depth p_L = {sd['p_last']}: {sd['expected_blocks']:g} of {sd['blocks']} blocks run in a "
            f"training step on average; expected training MACs {sd['expected_training_macs']:,.0f} "
            f"({100 * sd['expected_training_macs_share']:.1f}% of the full net's)"
        )
    if with_rf:
        console.print("[dim]RF px = theoretical receptive field in input pixels (r <- r + (k - 1) j, j <- j s over "
                      "the kernels k and strides s of the stem, the blocks' branches and the transitions)[/dim]")
    if memory and report.memory is not None:
        _memory_table(report.memory, console)
    if report.fvcore is not None:
        fv = report.fvcore
        _fvcore_modules_table(fv, console)
        console.print(
            f"fvcore: {fmt_int(fv['total'])} flops by its default handles (1 'flop' = 1 fused multiply-add; "
            f"includes batch norm and pooling); conv+linear {fmt_int(fv['conv_linear'])}"
            f"{' = analytic MACs' if fv['conv_linear'] == report.macs else ''}"
        )
        if fv.get("not_counted"):
            console.print(f"[dim]fvcore did not count: {fv['not_counted']}[/dim]")
    console.print(f"[dim]{report.conventions}[/dim]")


def _blocks_word(report: Any) -> str:
    """What the blocks are: a plain net's (``residual=False``: plain twins, VGG) have no shortcut."""
    return "residual blocks" if report.spec.get("residual", True) else "blocks without shortcuts"


def fmt_bytes(n: int) -> str:
    """Bytes in MB (10^6, as torchinfo prints them), KB below a megabyte, bytes below a kilobyte."""
    if n < 1e3:
        return f"{n} B"
    return f"{n / 1e6:,.2f} MB" if n >= 1e6 else f"{n / 1e3:,.1f} KB"


def _memory_table(mem: dict[str, Any], console: Any) -> None:
    from rich import box
    from rich.table import Table

    # the heading on a line of its own: as the table's title it would wrap at the narrow table's width
    console.print(f"memory (estimates) at batch {mem['batch_size']}, {mem['dtype']} ({mem['bytes_per_element']} "
                  f"bytes per element)", style="italic")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col, just in (("stage", "left"), ("params", "right"), ("forward", "right"), ("forward+backward", "right")):
        table.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    for row in mem["stages"]:
        table.add_row(row["name"], fmt_bytes(row["params_bytes"]), fmt_bytes(row["forward_bytes"]),
                      fmt_bytes(row["forward_backward_bytes"]))
    table.add_section()
    table.add_row("total", fmt_bytes(mem["params_bytes"]), fmt_bytes(mem["forward_bytes"]),
                  fmt_bytes(mem["forward_backward_bytes"]), style="bold")
    print_table(console, table)
    console.print(f"input {fmt_bytes(mem['input_bytes'])}  ·  estimated total for training "
                  f"{fmt_bytes(mem['input_bytes'] + mem['params_bytes'] + mem['forward_backward_bytes'])} "
                  f"(input + params + forward+backward, torchinfo's 'Estimated Total Size')")
    console.print(f"[dim]{mem['rule']}[/dim]")


def _fvcore_modules_table(fv: dict[str, Any], console: Any) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title="fvcore, per module (flops = fused multiply-adds by fvcore's default handles)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    modules = fv.get("modules", [])
    rows = [("  " * (row["level"] - 1) + row["module"], row["type"], fmt_int(row["params"]), fmt_int(row["flops"]),
             fmt_int(row["conv_linear"])) for row in modules]
    total = ("total", "", "", fmt_int(fv["total"]), fmt_int(fv["conv_linear"]))
    _add_uncut_columns(table, [("module", "left"), ("type", "left"), ("params", "right"), ("fvcore flops", "right"),
                               ("conv+linear", "right")], [*rows, total], text_columns={0: 16, 1: 11},
                       width=console.width)
    for row, cells in zip(modules, rows):
        table.add_row(*cells, style="bold" if row["level"] == 1 else ("" if row["level"] == 2 else "dim"))
    table.add_section()
    table.add_row(*total, style="bold")
    print_table(console, table)


def _add_uncut_columns(table: Any, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]],
                       text_columns: dict[int, int], width: int) -> None:
    """Number columns as wide as their widest cell, so a number is never cut ("1,040,449,…" on 80 columns);
    the text columns share what is left of ``width``, none narrower than its floor ``text_columns[i]``, and
    fold a long name onto more lines instead of cutting it."""
    widest = [max(len(name), *(len(str(r[i])) for r in rows)) for i, (name, _) in enumerate(columns)]
    # Besides the cells, the table draws two characters per column (an edge or separator and a padding; measured).
    spare = width - 2 * len(columns) - sum(w for i, w in enumerate(widest) if i not in text_columns)
    text_width = {i: widest[i] for i in text_columns}
    while sum(text_width.values()) > spare:
        shrinkable = [i for i in text_columns if text_width[i] > text_columns[i]]
        if not shrinkable:  # even the floors do not fit (80 columns at --depth 3): below them, down to 4,
            shrinkable = [i for i in text_columns if text_width[i] > 4]  # since a table wider than the
            if not shrinkable:  # terminal would be cropped at its edge, losing characters of the last column
                break
        text_width[max(shrinkable, key=lambda i: text_width[i] - text_columns[i])] -= 1
    for i, (name, justify) in enumerate(columns):
        if i in text_columns:
            table.add_column(name, justify=justify, overflow="fold", width=text_width[i])
        else:
            table.add_column(name, justify=justify, no_wrap=True, min_width=widest[i])


def params_csv(report: Any) -> tuple[Sequence[str], Iterable[Sequence[Any]]]:
    header = ["arch", "name", "kind", "level", "out_shape", "params", "macs", "share", "detail"]
    rows = [[report.arch, r.name, r.kind, r.level, fmt_shape(r.out_shape), r.params, r.macs,
             f"{r.share:.6f}", r.detail] for r in report.rows]
    rows.append([report.arch, "total", "total", 0, "", report.params, report.macs, "1.000000", ""])
    return header, rows


def block_table(report: Any, console: Any) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title=f"{report.block} block, {report.channels} channels, "
                        f"{report.feature_size}x{report.feature_size} feature map", title_justify="left",
                  box=box.SIMPLE_HEAD)
    for col, just in (("layer", "left"), ("", "left"), ("params", "right"), ("MACs", "right")):
        table.add_column(col, justify=just)
    for lc in report.layers:
        table.add_row(lc.name, lc.detail, fmt_int(lc.params), fmt_int(lc.macs))
    table.add_section()
    table.add_row("conv weights", "", fmt_int(report.conv_params), fmt_int(report.macs), style="bold")
    table.add_row("batch norm", "", fmt_int(report.bn_params), "0")
    print_table(console, table)
    other = report.other
    if other:
        console.print(f"{other['block']} block at the same width: {fmt_int(other['conv_params'])} conv weights; "
                      f"basic / bottleneck = {other['basic_to_bottleneck_ratio']:.1f}x")


def block_csv(report: Any) -> tuple[Sequence[str], Iterable[Sequence[Any]]]:
    header = ["block", "channels", "feature_size", "layer", "kind", "detail", "params", "macs"]
    rows = [[report.block, report.channels, report.feature_size, lc.name, lc.kind, lc.detail, lc.params, lc.macs]
            for lc in report.layers]
    return header, rows


def compare_table(report: Any, console: Any) -> None:
    from rich import box
    from rich.table import Table

    data = report.to_dict()
    table = Table(title=f"compared with {safe(data['baseline'])} (× = ratio to it; MACs in multiply-adds)",
                  title_justify="left",
                  box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True)
    # Names are never cut: the arch column is as wide as the longest name, the numbers are short (SI units;
    # the exact integers are in --format json/csv).
    rows = [[safe(a["label"]), str(a["depth"]), str(a["residual_blocks"]), _input_px(a["input_hw"]),
             fmt_si(a["params"]), f"{a['params_ratio']:.2f}", fmt_si(a["macs"]), f"{a['macs_ratio']:.2f}"]
            for a in data["archs"]]
    # Numbers are never cut: each number column is as wide as its widest cell ("470.…" on 80 columns before).
    # Names are never cut either: on a terminal too narrow for everything, the arch column folds its names.
    table.add_column("arch", overflow="fold", min_width=min(12, max(len(r[0]) for r in rows)))
    for i, col in enumerate(("depth", "blocks", "input px", "params", "×", "MACs", "×"), start=1):
        table.add_column(col, justify="right", no_wrap=True, min_width=max(len(col), *(len(r[i]) for r in rows)))
    for row in rows:
        table.add_row(*row)
    print_table(console, table)
    console.print(f"[dim]{data['conventions']}[/dim]")


def _input_px(hw: Sequence[int]) -> str:
    """224 for a square input, 224x320 (height x width) otherwise."""
    return str(hw[0]) if hw[0] == hw[1] else fmt_shape(hw)


def compare_csv(report: Any) -> tuple[Sequence[str], Iterable[Sequence[Any]]]:
    data = report.to_dict()["archs"]
    header = [h for h in data[0] if h != "overrides"]  # the label says them in a cell; JSON has them as data
    return header, [[fmt_shape(a[h]) if h == "input_hw" else a[h] for h in header] for a in data]


def archs_table(report: Any, console: Any) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{len(report.rows)} architectures (MACs at each one's default input)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    widest = max((len(r["name"]) for r in report.rows), default=4)
    table.add_column("name", no_wrap=True, min_width=widest)
    table.add_column("family")  # the one column that wraps, so the numbers always fit an 80-column terminal
    for col in ("depth", "blocks", "input px", "params", "MACs"):
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    wide = console.width >= 120  # the description only where it fits on one line
    if wide:
        table.add_column("description", style="dim", no_wrap=True, overflow="ellipsis",
                         max_width=max(20, console.width - 110))  # leave the numbers their room
    for r in report.rows:
        cells = [r["name"], r["kind"], str(r["depth"]), str(r["residual_blocks"]), str(r["input_size"]),
                 fmt_si(r["params"]), fmt_si(r["macs"]), *([r["description"]] if wide else [])]
        # As Text: the registry's own names and labels, never markup, so rich need not parse the ~500 cells for it
        # (a quarter of the table's time).
        table.add_row(*map(Text, cells))
    if report.rows:  # a pattern may match parametric names only ('cifar')
        print_table(console, table)
    if report.parametric:
        console.print("parametric names: " + "; ".join(f"{p['template']} ({p['help']})" for p in report.parametric))


def archs_csv(report: Any) -> tuple[Sequence[str], Iterable[Sequence[Any]]]:
    header = ["name", "family", "kind", "depth", "residual_blocks", "input_size", "num_classes", "params", "macs"]
    return header, [[r[h] for h in header] for r in report.rows]
