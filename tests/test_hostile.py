"""Hostile files and hostile sizes: every case ends with one ``Error:`` line, the right exit code, no traceback,
within bounded time and memory, and loses nothing already finished.

The corpus is made here (nothing downloaded). Cases run in a few subprocesses, not one each: ``run_cases`` starts
one Python that caps its own address space with ``RLIMIT_AS`` and then runs every case through the CLI's
``main()`` in turn, each with its stdout and stderr on files. Why ``RLIMIT_AS`` at ``MEMORY_LIMIT``: importing
torch, Pillow and numpy takes about 650 MB of address space here (measured with VmPeak), so 1.5 GiB leaves under
900 MB for the work itself, while each bomb below would need 2 GB (a zip record), 7 GB (a resized image strip) or
16 GB (an 8192-pixel eval): a case that tried would die with a ``MemoryError`` (exit 2 "not enough memory"), not
finish with the limit's own message that each case asserts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 1536 * 2**20
CASE_SECONDS = 20  # each case, on a loaded 2-core machine; the refusals themselves take well under a second

DRIVER = textwrap.dedent("""
    import json, os, resource, sys, time
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cases = json.loads(open(sys.argv[2]).read())
    from resnet_cli.cli import main
    results = []
    saved = os.dup(1), os.dup(2)
    for i, case in enumerate(cases):
        out = os.open(case["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        err = os.open(case["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(out, 1); os.dup2(err, 2)
        for name, text in case.get("files", {}).items():  # a file edited between two runs
            with open(name, "w", encoding="utf-8", errors="surrogateescape") as fh:  # "\\udcff": the byte 0xff
                fh.write(text)
        sys.argv = ["resnet-cli", *case["argv"]]
        os.environ.update(case.get("env", {}))
        t0 = time.perf_counter()
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException as exc:  # a failure that escaped main(): what the test must catch
            import traceback
            traceback.print_exc()
            code = "escaped"
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(saved[0], 1); os.dup2(saved[1], 2)
        os.close(out); os.close(err)
        results.append({"code": code, "seconds": time.perf_counter() - t0})
    print(json.dumps(results))
""")


def run_cases(tmp_path: Path, cases: list[dict]) -> list[dict]:
    """Run ``cases`` (dicts with ``argv``, optional ``env`` and ``files`` to write first) in one memory-capped
    subprocess; each result gets ``code``, ``seconds``, ``stdout`` and ``stderr``."""
    for i, case in enumerate(cases):
        case["out"], case["err"] = str(tmp_path / f"case{i}.out"), str(tmp_path / f"case{i}.err")
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(cases))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "COLUMNS": "100"}
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(MEMORY_LIMIT), str(spec)], check=False,
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=CASE_SECONDS * len(cases) + 60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for case, result in zip(cases, results):
        result["stdout"] = Path(case["out"]).read_text(errors="replace")
        result["stderr"] = Path(case["err"]).read_text(errors="replace")
        result["argv"] = case["argv"]
    return results


def assert_refused(result: dict, *words: str, code: int = 2) -> None:
    """Exit ``code``, exactly one stderr line, starting 'Error: ' and naming ``words``, no traceback, in time."""
    where = f"{result['argv']}: {result['stderr'][-2000:]!r}"
    assert result["code"] == code, where
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), where
    assert "Traceback" not in result["stderr"] and "\x1b" not in result["stderr"], where
    for word in words:
        assert word in lines[0], where
    assert result["seconds"] < CASE_SECONDS, where


# --------------------------------------------------------------------------- typed sizes (torch-free commands)
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


# --------------------------------------------------------------------------- stdout that fails
def test_a_full_disk_under_stdout_is_one_line():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "resnet_cli", "params", "--arch", "resnet20", "--format",
                               "json"], check=False, cwd=ROOT, env=env, stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["Error: cannot write the results to standard output: No space left on "
                                        "device"]


@pytest.mark.parametrize("argv", [["paths", "--blocks", "64", "--list", "--force"],
                                  ["paths", "--blocks", "64", "--list", "--force", "--limit", str(10 ** 15)],
                                  ["params", "--arch", "resnet152", "--depth", "3"]])
def test_a_closed_pipe_ends_quietly(argv):
    """`... | head -3`: the reader goes away after three lines; the CLI stops at once, silently, exit 0 (also
    past islice's 2^63-1 with 2^64 paths, and with the largest --limit allowed, which no one could wait for)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "resnet_cli", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = [proc.stdout.readline() for _ in range(3)]
    proc.stdout.close()
    code = proc.wait(timeout=60)
    stderr = proc.stderr.read().decode()
    assert all(lines), lines
    assert code == 0 and stderr == "", (code, stderr)
    assert time.monotonic() - t0 < 60


# --------------------------------------------------------------------------- the corpus of hostile files
TINY = dict(widths="8,16,32", stem_width=8, input_size=12)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A checkpoint written by `train` (2 epochs of a tiny CIFAR ResNet on synthetic data) and its record."""
    from resnet_cli import get_spec
    from resnet_cli.training import TrainConfig, train

    folder = tmp_path_factory.mktemp("trained")
    result = train(get_spec("cifar_resnet8", **TINY), "synthetic", TrainConfig(epochs=2, batch_size=32),
                   device="cpu", train_limit=96, test_limit=32, checkpoint=folder / "net.pt")
    return folder / "net.pt", result


def _payload(path):
    import torch

    return torch.load(path, weights_only=True)


def _save(payload, path):
    import torch

    torch.save(payload, path)
    return path


class Evil:
    """Pickles as a call of os.system: what a checkpoint from a stranger might hold."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def _deflated_zeros(mebibytes: int) -> bytes:
    """A raw deflate stream that inflates to ``mebibytes`` MiB of zero bytes, made in milliseconds: after a full
    flush the compressor starts afresh, so every further MiB of zeros compresses to the same 1 kB, repeated here
    instead of compressed again (deflating 2 GiB took 11 s)."""
    import zlib

    mib = bytes(2**20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert again == first  # what makes the repetition a valid stream
    return first * mebibytes + compressor.flush(zlib.Z_FINISH)


def _write_zip(path: Path, records: list[tuple[str, int, int, bytes, int]]) -> Path:
    """A zip of ``records`` (name, method, CRC-32, data as stored, inflated size), written as the format says."""
    import struct

    body, directory = bytearray(), bytearray()
    for name, method, crc32, data, size in records:
        raw = name.encode()
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc32, len(data),
                                 size, len(raw), 0, 0, 0, 0, 0, len(body)) + raw
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc32, len(data), size, len(raw),
                            0) + raw + data
    count = min(len(records), 0xFFFF)  # past 65,535 the count field is a placeholder (zip64's); zipfile reads on
    path.write_bytes(bytes(body + directory + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count,
                                                          len(directory), len(body), 0)))
    return path


def _zip_bomb(source: Path, path: Path, mebibytes: int = 2048) -> Path:
    """``source`` with its first tensor's record replaced by ``mebibytes`` MiB of deflated zero bytes (2 MB on
    disk), the zip written record by record (zipfile cannot take a stream deflated already)."""
    import zipfile
    import zlib

    assert zlib.decompress(_deflated_zeros(3), -15) == bytes(3 * 2**20)  # the stream inflates to what it claims
    mib, crc = bytes(2**20), 0
    for _ in range(mebibytes):
        crc = zlib.crc32(mib, crc)
    records = []  # (name, method, crc, data, inflated size)
    with zipfile.ZipFile(source) as src:
        for info in src.infolist():
            if info.filename.endswith("/data/0"):
                records.append((info.filename, zipfile.ZIP_DEFLATED, crc, _deflated_zeros(mebibytes),
                                mebibytes * 2**20))
            else:
                data = src.read(info)
                records.append((info.filename, zipfile.ZIP_STORED, zlib.crc32(data), data, len(data)))
    _write_zip(path, records)
    with zipfile.ZipFile(path) as bomb:  # a well-formed zip, as zipfile (and the checkpoint check) reads it
        assert sum(i.file_size for i in bomb.infolist()) > mebibytes * 2**20
    assert path.stat().st_size < 4 * 2**20
    return path


def _legacy_checkpoint(path: Path, pickled: bytes) -> Path:
    """``pickled`` as the object of a checkpoint in torch's format before zip (akamaster's files): torch's own
    first three pickles (magic number, protocol, system information), then ``pickled``, then no storage keys."""
    import io
    import pickle
    import pickletools

    import torch

    buf = io.BytesIO()
    torch.save([], buf, _use_new_zipfile_serialization=False)
    stream = io.BytesIO(buf.getvalue())
    for _ in range(3):
        for _op in pickletools.genops(stream):
            pass
    path.write_bytes(buf.getvalue()[:stream.tell()] + pickled + pickle.dumps([], protocol=2))
    return path


@pytest.fixture(scope="module")
def corpus(trained, tmp_path_factory):
    """name -> a hostile file made from the trained checkpoint."""
    import pickle
    import zlib

    import torch

    good, _ = trained
    folder = tmp_path_factory.mktemp("corpus")
    files = {}
    files["zip_bomb"] = _zip_bomb(good, folder / "bomb.pt")
    files["many_records"] = _write_zip(folder / "many.pt", [(f"many/data/{i}", 0, 0, b"", 0) for i in range(150_000)])
    pickled = b"\x80\x02]" + b"N" * 9 * 2**20 + b"."  # a list of 9,437,184 Nones: past the 8 MiB pickle limit
    files["big_pickle"] = _write_zip(folder / "big_pickle.pt", [("big/data.pkl", 0, zlib.crc32(pickled), pickled,
                                                                  len(pickled))])
    files["legacy_big_pickle"] = _legacy_checkpoint(folder / "legacy_big_pickle.th", pickled)
    files["code_zip"] = _save({"x": Evil()}, folder / "code.pt")
    files["code_legacy"] = folder / "code_legacy.th"  # torch's format before zip: its object is the 4th pickle
    torch.save({"x": Evil()}, files["code_legacy"], _use_new_zipfile_serialization=False)
    files["code_raw"] = folder / "code.pkl"
    files["code_raw"].write_bytes(pickle.dumps({"x": Evil()}, protocol=4))
    files["truncated"] = folder / "truncated.pt"
    files["truncated"].write_bytes(good.read_bytes()[:3000])
    p = _payload(good)
    p["spec"]["layers"] = [1_000_000_000, 1, 1]
    files["spec_bomb"] = _save(p, folder / "spec_bomb.pt")
    p = _payload(good)
    p["spec"]["name"] = "net\x1b]0;owned\x07\x1b[31m"
    files["escape_name"] = _save(p, folder / "escape_name.pt")
    p = _payload(good)
    p["extra"]["config"]["lr"] = "0.1"
    files["string_lr"] = _save(p, folder / "string_lr.pt")
    p = _payload(good)
    p["extra"]["config"]["epochs"] = 10**20  # a resumed run would train for ever
    files["endless_epochs"] = _save(p, folder / "endless_epochs.pt")
    p = _payload(good)
    del p["record"][-1]["wall_time_s"]
    files["record_lacks_key"] = _save(p, folder / "record_lacks_key.pt")
    p = _payload(good)
    del p["record"][0]["test_error"]
    files["record_no_test_error"] = _save(p, folder / "record_no_test_error.pt")
    p = _payload(good)
    p["extra"]["epoch"] = 7
    files["epoch_mismatch"] = _save(p, folder / "epoch_mismatch.pt")
    laughs = [0]
    for _ in range(30):  # 2**30 values to whatever walks it, from a few hundred bytes of pickle ("billion laughs")
        laughs = [laughs, laughs]
    p = _payload(good)
    p["spec"]["description"] = laughs
    files["laughs_spec"] = _save(p, folder / "laughs_spec.pt")
    p = _payload(good)
    p["record"][0]["notes"] = laughs
    files["laughs_record"] = _save(p, folder / "laughs_record.pt")
    p = _payload(good)
    p["state_dict"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                       for k, v in p["state_dict"].items()}
    files["nan_weights"] = _save(p, folder / "nan_weights.pt")
    return files


def test_hostile_checkpoints_are_refused_in_one_line(corpus, tmp_path):
    c = {k: str(v) for k, v in corpus.items()}
    cases = [
        {"argv": ["eval", c["zip_bomb"]]},
        {"argv": ["eval", c["code_zip"]]},
        {"argv": ["eval", c["code_raw"]]},
        {"argv": ["eval", c["truncated"]]},
        {"argv": ["eval", c["spec_bomb"]]},
        {"argv": ["eval", c["escape_name"]]},
        {"argv": ["train", "--resume", c["string_lr"], "-o", str(tmp_path / "a.pt")]},
        {"argv": ["train", "--resume", c["record_lacks_key"], "-o", str(tmp_path / "b.pt")]},
        {"argv": ["plot-record", c["record_no_test_error"], "-o", str(tmp_path / "r.png")]},
        {"argv": ["train", "--resume", c["epoch_mismatch"], "-o", str(tmp_path / "c.pt")]},
        {"argv": ["eval", c["nan_weights"], "--format", "json"]},
        {"argv": ["eval", c["zip_bomb"].replace("bomb", "missing")]},
        {"argv": ["params", "--from", c["laughs_spec"]]},
        {"argv": ["eval", c["many_records"]]},
        {"argv": ["eval", c["big_pickle"]]},
        {"argv": ["train", "--resume", c["laughs_record"], "-o", str(tmp_path / "d.pt")]},
        {"argv": ["eval", c["legacy_big_pickle"]]},
        {"argv": ["train", "--resume", c["endless_epochs"], "-o", str(tmp_path / "e.pt")]},
        {"argv": ["train", "--arch", "resnet20", "--dataset", "digits", "--epochs", "10001", "-o",
                  str(tmp_path / "f.pt")]},
        {"argv": ["eval", c["code_legacy"]]},
    ]
    r = run_cases(tmp_path, cases)
    assert_refused(r[0], "inflate", "limits")
    for result in r[1:3]:
        assert_refused(result, "could run code", "posix.system")
    assert_refused(r[3], "truncated or corrupt")
    assert_refused(r[4], "at most 20,000 blocks")
    assert_refused(r[5], "printable")
    assert_refused(r[6], "damaged", "lr")
    assert_refused(r[7], "lacks wall_time_s")
    assert_refused(r[8], "lacks test_error")
    assert_refused(r[9], "epoch 7")
    assert not any((tmp_path / n).exists() for n in ("a.pt", "b.pt", "c.pt", "r.png"))  # refused before work
    nan = r[10]
    assert nan["code"] == 0, nan["stderr"]
    report = json.loads(nan["stdout"], parse_constant=lambda word: pytest.fail(f"{word} is not strict JSON"))
    assert report["loss"] is None and report["error"] == pytest.approx(0.9, abs=0.2)
    assert "JSON shows null" in nan["stderr"]
    assert_refused(r[11], "no such checkpoint")
    for result in (r[12], r[15]):  # hung for hours (the spec's fields; --resume's copy of the record)
        assert_refused(result, "more than 2,000,000 values", "shared one")
    assert not (tmp_path / "d.pt").exists()
    assert_refused(r[13], "lists 150,000 records", "limit of 100,000")  # zipfile's parse of them took 600 MB
    assert_refused(r[14], "'big/data.pkl': 9,437,188", "8,388,608 for the pickle")
    assert_refused(r[16], "pickled part passes 8,388,608 bytes")  # torch.load took 4 s and 300 MB to build it
    assert_refused(r[17], "1 to 10,000", "checkpoint's when resuming", "21 digits")
    assert_refused(r[18], "10001 is not in the range 1<=x<=10000")  # typed: the option's own range
    assert not (tmp_path / "e.pt").exists() and not (tmp_path / "f.pt").exists()
    assert_refused(r[19], "could run code", "posix.system")  # was "corrupt": only the magic number was read


# --------------------------------------------------------------------------- studies read back, and locks
def _dead_pid() -> int:
    """The pid of a process that has ended (a killed run's lock or temporary file names one)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_an_edited_measurements_json_is_refused_and_the_study_kept(trained, tmp_path, monkeypatch, capsys):
    ckpt, _ = trained
    out = tmp_path / "study"
    study = ["lesion", str(ckpt), "--limit", "16", "--experiments", "single", "--out", str(out), "--format", "json"]
    code, err = _cli(monkeypatch, capsys, study)  # the study itself is no hostile case: in this process
    assert code == 0, err
    kept = {name: (out / name).read_bytes() for name in ("lesion.json", "measurements.json", "measurements.csv")}
    state = json.loads(kept["measurements.json"])
    key = next(iter(state["done"]))

    def edited(**change):
        return json.dumps({**state, **change})

    def entry(**change):
        return edited(done={**state["done"], key: {**state["done"][key], **change}})

    bad = {
        "a list": "[]", "null": "null", "no done": json.dumps({k: v for k, v in state.items() if k != "done"}),
        "string count": entry(correct="12"), "no images": entry(images=0), "999 of 16": entry(correct=999),
        "deep nesting": "[" * 100_000 + "]" * 100_000, "not json": "{", "bool k": entry(k=True),
        "partial of 99": edited(partial={"chunk": "single", "keys": [key], "images_done": 99, "correct": [1]}),
        "not UTF-8": '{"done": "\udcff\udcfe"}',
    }
    state_file = str(out / "measurements.json")
    cases = [{"argv": [*study, "--resume"], "files": {state_file: text}} for text in bad.values()]
    (tmp_path / "resumes").mkdir()
    results = run_cases(tmp_path / "resumes", cases)
    for what, result in zip(bad, results):
        assert_refused(result, "measurements.json")
        assert result["stdout"] == "", what
    for name in ("lesion.json", "measurements.csv"):  # the finished study's results are untouched
        assert (out / name).read_bytes() == kept[name]


def test_a_second_run_on_one_output_refuses_and_a_stale_lock_is_taken_over(trained, tmp_path):
    import socket

    ckpt, _ = trained
    owner = subprocess.Popen(["sleep", "120"])
    try:
        busy, stale = tmp_path / "busy", tmp_path / "stale"
        for folder, pid in ((busy, owner.pid), (stale, _dead_pid())):
            folder.mkdir()
            (folder / ".resnet-cli.lock").write_text(f"{pid} {socket.gethostname()}\n")
        (tmp_path / ".net.pt.lock").write_text(f"{owner.pid} {socket.gethostname()}\n")
        study = ["lesion", str(ckpt), "--limit", "8", "--experiments", "single", "--format", "json", "--out"]
        r = run_cases(tmp_path, [
            {"argv": [*study, str(busy)]},
            {"argv": [*study, str(stale)]},
            {"argv": ["train", "--resume", str(ckpt), "--epochs", "3", "-o", str(tmp_path / "net.pt")]},
            {"argv": ["gradients", str(ckpt), "--limit", "4", "--out", str(busy)]},
        ])
    finally:
        owner.kill()
        owner.wait()
    assert_refused(r[0], "in use by another resnet-cli run", f"pid {owner.pid}")
    assert not (busy / "measurements.json").exists()
    assert r[1]["code"] == 0, r[1]["stderr"]
    assert (stale / "lesion.json").exists() and not (stale / ".resnet-cli.lock").exists()
    assert_refused(r[2], "--output", "in use")
    assert not (tmp_path / "net.pt").exists()
    assert_refused(r[3], "in use")


# --------------------------------------------------------------------------- training: resume what was written
def _tiny_train(tmp_path, name, **kw):
    from resnet_cli import get_spec
    from resnet_cli.training import TrainConfig, train

    config = TrainConfig(epochs=2, batch_size=32, augment=kw.pop("augment", True))
    return train(get_spec("cifar_resnet8", **TINY) if "resume" not in kw else None, "synthetic", config,
                 device="cpu", train_limit=None if "resume" in kw else 160, test_limit=None if "resume" in kw else 32,
                 checkpoint=tmp_path / name, **kw)


@pytest.mark.parametrize("augment", [True, False])
def test_a_stop_at_an_epochs_last_step_resumes_to_the_uninterrupted_run(tmp_path, augment):
    """160 images in batches of 32: 5 steps an epoch. A stop requested at step 5 of epoch 1 (what Ctrl-C in the
    last step does) used to save a checkpoint whose resume stacked an empty batch (or, without augmentation, saw
    the loss of an empty batch: "nan")."""
    import torch

    from resnet_cli.checkpoint import load_checkpoint
    from resnet_cli.training import TrainingInterrupted

    full = _tiny_train(tmp_path, "full.pt", augment=augment)

    def stop_at_last_step(trainer, epoch, step):
        if (epoch, step) == (0, 5):
            trainer.request_stop()

    with pytest.raises(TrainingInterrupted):
        _tiny_train(tmp_path, "cut.pt", augment=augment, on_step=stop_at_last_step)
    assert (load_checkpoint(tmp_path / "cut.pt").extra["step"]) == 5
    resumed = _tiny_train(tmp_path, "cut.pt", augment=augment, resume=tmp_path / "cut.pt")
    drop = ("train_time_s", "epoch_time_s", "wall_time_s", "images_per_s")
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed.record] == \
        [{k: v for k, v in r.items() if k not in drop} for r in full.record]
    a, b = (load_checkpoint(tmp_path / n).state_dict for n in ("full.pt", "cut.pt"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_keeps_data_and_no_best_and_removes_a_killed_saves_temp_file(tmp_path):
    first = tmp_path / "run.pt"
    stale = tmp_path / f".run.pt.{_dead_pid()}.abcd1234.tmp"  # what SIGKILL during a save leaves
    cases = [
        {"argv": ["train", "--arch", "cifar_resnet8", "--widths", "8,16,32", "--set", "stem_width=8",
                  "--input-size", "12", "--epochs", "1", "--limit", "64", "--test-limit", "32", "--no-best",
                  "-o", str(first), "--format", "json"]},
        {"argv": ["train", "--resume", str(first), "--limit", "32"]},
        {"argv": ["train", "--resume", str(first), "--epochs", "2", "--format", "json"],
         "files": {str(stale): "half a checkpoint"}},
    ]
    r = run_cases(tmp_path, cases)
    assert r[0]["code"] == 0, r[0]["stderr"]
    assert_refused(r[1], "--limit 32", "keeps its data")
    assert r[2]["code"] == 0, r[2]["stderr"]
    resumed = json.loads(r[2]["stdout"])
    assert [e["train_images"] for e in resumed["record"]] == [64, 64]  # the first 64 images, both epochs
    assert resumed["best_checkpoint"] is None and not (tmp_path / "run.best.pt").exists()
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.glob(".run.pt*")) == []  # no lock or temporary file left


# --------------------------------------------------------------------------- data files
def _cifar_folder(root: Path, batch: dict) -> Path:
    """A cifar-10-batches-py folder whose test_batch is ``batch`` (pickled as the official files are: bytes
    keys) and whose train batches are one valid image each."""
    import pickle

    import numpy as np

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    valid = {b"data": np.zeros((1, 3072), dtype=np.uint8), b"labels": [0]}
    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(valid, protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps({k.encode(): v for k, v in batch.items()}, protocol=2))
    return root


def _png(path: Path, width: int, height: int) -> Path:
    """A PNG of width x height black pixels, a few hundred bytes however large (zlib squeezes the zeros)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" + bytes(width)  # filter byte + grey pixels
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_hostile_data_is_refused_before_any_work(trained, tmp_path):
    import numpy as np

    ckpt, _ = trained
    row = np.zeros(3072, dtype=np.uint8)
    batches = {
        "refs": {"data": [row] * 200_000, "labels": [0] * 200_000},  # 800 kB of pickle, 600 MB as an array
        "int_labels": {"data": np.zeros((2, 3072), dtype=np.uint8), "labels": 3},
        "str_data": {"data": "pixels", "labels": [0]},
        "pixel_300": {"data": np.full((1, 3072), 300, dtype=np.int64), "labels": [0]},
        "objects": {"data": np.array([[None] * 3072], dtype=object), "labels": [0]},
        "label_99": {"data": np.zeros((1, 3072), dtype=np.uint8), "labels": [99]},
    }
    folders = {name: _cifar_folder(tmp_path / name, batch) for name, batch in batches.items()}
    images = tmp_path / "images"
    for split, classes in (("train", ("cat", "dog")), ("test", ("cat", "emu"))):
        for c in classes:
            _png(images / split / c / "a.png", 16, 16)
    strip = _png(tmp_path / "strip" / "x" / "strip.png", 1, 60_000)
    huge = _png(tmp_path / "huge" / "x" / "huge.png", 14_000, 14_000)
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    evaluate = ["eval", str(ckpt), "--dataset"]
    cases = [{"argv": [*evaluate, "cifar10", "--data-dir", str(folders[name])]} for name in batches]
    cases += [
        {"argv": [*evaluate, "imagefolder", "--data-dir", str(images), "--input-size", "12"]},
        {"argv": [*evaluate, "imagefolder", "--data-dir", str(strip.parent.parent), "--input-size", "224"]},
        {"argv": [*evaluate, "imagefolder", "--data-dir", str(huge.parent.parent)]},
        {"argv": [*evaluate, "cifar10", "--download"], "env": {"RESNET_CLI_DATA": str(a_file)}},
        {"argv": ["eval", str(ckpt), "--input-size", "8192"]},
        {"argv": ["lesion", str(ckpt), "--experiments", "reorder", "--samples", "1000000"]},
        {"argv": ["train", "--arch", "cifar_resnet20", "--input-size", "4096", "--device", "cpu", "-o",
                  str(tmp_path / "big.pt")]},
    ]
    r = run_cases(tmp_path, cases)
    assert_refused(r[0], "uint8 array", "not a list")
    assert_refused(r[1], "expected 2 labels", "got int")
    assert_refused(r[2], "not a str")
    assert_refused(r[3], "not a int64 array")
    assert_refused(r[4], "not a object array")
    assert_refused(r[5], "labels outside 0..9")
    assert_refused(r[6], "has classes", "emu")
    assert_refused(r[7], "resized for --input-size 224", "limit of 67,108,864")
    assert_refused(r[8], "huge.png")
    assert_refused(r[9], "is a file, not a folder")
    assert_refused(r[10], "GiB of memory")
    assert_refused(r[11], "--samples", "10000")
    assert_refused(r[12], "training cifar_resnet20", "GiB of memory")
    assert not (tmp_path / "big.pt").exists()


def test_a_lesion_study_too_large_is_refused_before_a_sample_is_drawn():
    from resnet_cli.analysis.lesion import plan_chunks
    from resnet_cli.errors import ResnetCliError

    with pytest.raises(ResnetCliError, match=r"up to 200,000 measurements .* limit is 100,000"):
        plan_chunks([None] * 54, ["multi", "reorder"], max_k=10, samples=10_000, seed=0)  # ResNet-110's 54 blocks


# --------------------------------------------------------------------------- hostile paths
def test_hostile_paths_are_refused_before_any_work(trained, tmp_path):
    """Names past the file system's 255 bytes, a FIFO or a device where a file is read (reading /dev/zero never
    ends; opening a FIFO blocks), a symlink loop, a folder where a file is expected, 100,000 workers: one line
    each, and an output refused before a training starts, not when its finished checkpoint is saved."""
    ckpt, _ = trained
    long = "a" * 300
    beside_temp = "b" * 240  # fits 255 bytes, but its temporary file ".NAME.PID.XXXXXXXX.tmp" would not
    fifo = tmp_path / "fifo.pt"
    os.mkfifo(fifo)
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(loop)
    train = ["train", "--arch", "cifar_resnet8", "--widths", "8,16,32", "--set", "stem_width=8", "--input-size",
             "12", "--epochs", "1", "--limit", "32", "--test-limit", "16", "-o"]
    made = tmp_path / "outputs"
    cases = [
        {"argv": [*train, str(made / f"{long}.pt")]},
        {"argv": [*train, str(made / f"{beside_temp}.pt")]},
        {"argv": [*train, str(made / "net.pt"), "--best", str(made / f"{beside_temp}.pt")]},
        {"argv": ["train", "--resume", str(ckpt), "--epochs", "3", "-o", str(made / long / "net.pt")]},
        {"argv": ["lesion", str(ckpt), "--limit", "8", "--out", str(made / long)]},
        {"argv": ["eval", str(tmp_path / f"{long}.pt")]},
        {"argv": ["params", "--from", str(tmp_path / f"{long}.pt")]},
        {"argv": ["eval", str(ckpt), "--dataset", "cifar10", "--data-dir", str(tmp_path / long)]},
        {"argv": ["eval", str(fifo)]},
        {"argv": ["lesion", "/dev/zero", "--limit", "8"]},
        {"argv": ["params", "--from", "/dev/zero"]},
        {"argv": ["plot-lesion", str(fifo), "-o", str(made / "plots")]},
        {"argv": ["eval", str(loop)]},
        {"argv": ["eval", str(ckpt), "--dataset", "imagefolder", "--data-dir", str(loop)]},
        {"argv": ["train", "--resume", str(tmp_path)]},
        {"argv": ["eval", str(tmp_path / "x\udcff\udcfe.pt")]},  # bytes that are not UTF-8, as a shell passes them
        {"argv": ["eval", str(ckpt), "--workers", "100000"]},
        {"argv": [*train, str(fifo)]},  # the finished run's rename would have replaced the FIFO (as root: /dev/null)
    ]
    r = run_cases(tmp_path, cases)
    assert_refused(r[0], "--output", "at most 255 bytes", "has 303")
    assert_refused(r[1], "--output", "at most 233 bytes", "22 for its temporary file", "has 243")
    assert_refused(r[2], "--best", "at most 233 bytes")
    assert_refused(r[3], "--output", "at most 255 bytes", "has 300")
    assert_refused(r[4], "--out", "at most 255 bytes")
    for result in r[5:7]:
        assert_refused(result, "a checkpoint", "at most 255 bytes")
    assert_refused(r[7], "--data-dir", "at most 255 bytes")
    assert_refused(r[8], "fifo.pt is a named pipe (FIFO), not a regular file")
    for result in r[9:11]:
        assert_refused(result, "/dev/zero is a device, not a regular file")
    assert_refused(r[11], "named pipe")
    assert_refused(r[12], f"cannot read {loop}")
    assert_refused(r[13], "--data-dir", "cannot be resolved")
    assert_refused(r[14], "is a folder, not a checkpoint file")
    assert_refused(r[15], "no such checkpoint", "x\\udcff\\udcfe.pt")
    assert_refused(r[16], "--workers", "0<=x<=64")
    assert_refused(r[17], "--output", "fifo.pt is a named pipe (FIFO), not a regular file")
    assert fifo.is_fifo()
    assert not made.exists() or not any(made.rglob("*.pt"))  # nothing trained, nothing saved
    for result in r[:4]:
        assert result["seconds"] < 5, result  # refused before torch trains anything


# --------------------------------------------------------------------------- a full disk
class FullDisk:
    """A file on a disk with ``room`` bytes left: a write past it fails as on a full disk (ENOSPC)."""

    def __init__(self, real, room: int) -> None:
        self.real, self.room, self.written = real, room, 0

    def write(self, data):
        fits = max(0, self.room - self.written)
        if len(data) > fits:  # what fits is written, then the disk is full
            import errno

            self.real.write(data[:fits])
            self.written += fits
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.written += len(data)
        return self.real.write(data)

    def __getattr__(self, name):
        return getattr(self.real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.real.close()


def _cli(monkeypatch, capsys, argv: list[str]) -> tuple[int, str]:
    """Run the CLI in this process (where the test's patches apply): its exit code and its stderr."""
    from resnet_cli.cli import main

    monkeypatch.setattr(sys, "argv", ["resnet-cli", *argv])
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code, capsys.readouterr().err


def _fill_the_disk_after(monkeypatch, saves: int, room: int, kinds=("wb",), of: str = "") -> list[Path]:
    """After ``saves`` atomic writes, every later one fails once ``room`` bytes are written (``kinds``: the open
    modes it applies to; ``of``: only writes of files with this in their name). Returns the files whose write
    failed (their temporary files)."""
    from resnet_cli import fileio

    real_fdopen, seen, failed = os.fdopen, [0], []

    def fdopen(fd, mode="r", *args, **kwargs):
        fh = real_fdopen(fd, mode, *args, **kwargs)
        name = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if mode not in kinds or of not in name.name:
            return fh
        seen[0] += 1
        if seen[0] <= saves:
            return fh
        failed.append(name)
        return FullDisk(fh, room)

    monkeypatch.setattr(fileio.os, "fdopen", fdopen)
    return failed


def _torch_fails_writing(monkeypatch, saves: int) -> None:
    """After ``saves`` checkpoints, torch.save writes a little and then fails as its zip writer does on a full
    disk: a RuntimeError, not an OSError."""
    import torch

    real_save, seen = torch.save, [0]

    def save(obj, f, *args, **kwargs):
        seen[0] += 1
        if seen[0] <= saves:
            return real_save(obj, f, *args, **kwargs)
        f.write(b"PK\x03\x04 half a zip")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.setattr(torch, "save", save)


@pytest.mark.parametrize("failure", ["ENOSPC at once", "ENOSPC mid-zip", "torch RuntimeError"])
def test_a_full_disk_while_saving_a_checkpoint_keeps_the_last_one(tmp_path, monkeypatch, capsys, failure):
    """Epoch 1's checkpoint is written; epoch 2's save meets a full disk (the first write fails: OSError; one
    write in: torch reports "unexpected pos" as a RuntimeError; torch's own writer fails). One line, exit 2, no
    temporary file, and epoch 1's checkpoint byte for byte as it was."""
    from resnet_cli.checkpoint import load_checkpoint

    run = tmp_path / "run.pt"
    kept = {}
    if failure == "torch RuntimeError":
        _torch_fails_writing(monkeypatch, saves=1)
    else:
        _fill_the_disk_after(monkeypatch, saves=1, room=0 if failure == "ENOSPC at once" else 5000)
    import torch

    real_save = torch.save

    def snapshot_then_save(obj, f, *args, **kwargs):  # what epoch 1 left, read just before epoch 2 saves
        if run.exists():
            kept.setdefault("bytes", run.read_bytes())
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", snapshot_then_save)
    code, err = _cli(monkeypatch, capsys, [
        "train", "--arch", "cifar_resnet8", "--widths", "8,16,32", "--set", "stem_width=8", "--input-size", "12",
        "--epochs", "2", "--limit", "64", "--test-limit", "32", "--no-best", "-o", str(run), "--quiet"])
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"Error: cannot write the checkpoint {run}: "), err
    assert ("No space left on device" if failure == "ENOSPC at once" else "is the disk full?") in err
    assert err.endswith("run.pt keeps what it held before\n")
    assert "Traceback" not in err
    assert "bytes" in kept and run.read_bytes() == kept["bytes"]
    assert len(load_checkpoint(run).record) == 1  # epoch 1, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]  # no temporary file, no lock


def test_a_full_disk_while_writing_a_study_keeps_the_finished_one(trained, tmp_path, monkeypatch, capsys):
    """A finished study in --out; its --resume (nothing left to measure) rewrites the results on a full disk:
    one line, exit 2, every file of the study byte for byte as it was, no temporary file, no lock."""
    ckpt, _ = trained
    out = tmp_path / "study"
    study = ["lesion", str(ckpt), "--limit", "8", "--experiments", "single", "--out", str(out), "--quiet",
             "--format", "json"]
    code, err = _cli(monkeypatch, capsys, study)
    assert code == 0, err
    kept = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"lesion.json", "measurements.json", "measurements.csv", "single.png"} <= set(kept)
    failed = _fill_the_disk_after(monkeypatch, saves=0, room=10, kinds=("w", "wb"))
    code, err = _cli(monkeypatch, capsys, [*study, "--resume"])
    assert code == 2, err
    assert err.splitlines() == ["Error: no space left on the device (free some space and run again)"], err
    assert failed  # the disk was full for a write of the study
    assert {p.name: p.read_bytes() for p in out.iterdir()} == kept


def test_path_limits_count_bytes_and_leave_room_for_the_temporary_file(tmp_path):
    from resnet_cli.fileio import TEMP_NAME_EXTRA, atomic_write_text
    from resnet_cli.limits import LimitError, check_path_length

    check_path_length("a" * 255, "--out")
    check_path_length("/".join(["d" * 255] * 15), "--out")  # 15 x 256 - 1 = 3839 bytes
    for bad, words in [("é" * 128, "has 256"), ("/".join(["d" * 255] * 17), "a path is at most 4,095 bytes")]:
        with pytest.raises(LimitError, match=words):
            check_path_length(bad, "--out")  # 'é' is two bytes in UTF-8
    fits = "a" * (255 - TEMP_NAME_EXTRA)
    check_path_length(fits, "--output", reserve=TEMP_NAME_EXTRA)
    with pytest.raises(LimitError, match="at most 233 bytes"):
        check_path_length(fits + "a", "--output", reserve=TEMP_NAME_EXTRA)
    atomic_write_text(tmp_path / fits, "whole")  # the longest name allowed, with its real temporary file
    assert (tmp_path / fits).read_text() == "whole"


def test_an_output_that_is_a_device_is_refused_not_replaced():
    """As root, a training's atomic rename onto `-o /dev/null` would replace the device node with a checkpoint."""
    from resnet_cli.errors import ResnetCliError
    from resnet_cli.fileio import check_writable

    for device in ("/dev/null", "/dev/full"):
        with pytest.raises(ResnetCliError, match=r"is a device, not a regular file"):
            check_writable(device, "--output")


@pytest.mark.parametrize("text, words", [
    ('{"baseline_error": "x"}', "no baseline_error between 0 and 1"),
    ('{"baseline_error": 1e999, "single": []}', "no baseline_error between 0 and 1"),
    ('{"baseline_error": 0.1, "single": "garbage"}', "'single' is not a list"),
    ('{"baseline_error": 0.1, "single": [1, 2]}', "'single' row 1 lacks"),
    ('{"baseline_error": 0.1, "multi": [{"k": 1, "mean": 0.5, "std": 0.1}, {"k": "2", "mean": 0.5, "std": 0}]}',
     "'multi' row 2 lacks"),
    ('{"baseline_error": 0.1, "reorder": [{"k": 1, "mean": 50, "std": 0}]}', "'reorder' row 1 lacks"),
    ('{"baseline_error": 0.5}', "no single, multi or reorder measurements to draw"),
    ('{"baseline_error": 0.1, "multi": [{"k": 1, "mean": 0.5, "std": 0.1}], "num_classes": 0}', "num_classes"),
    ("\udcff{}", "not a lesion study"),  # not UTF-8
    ('{"baseline_error": ' + "9" * 5000 + "}", "4300 digits"),  # json refuses it with a ValueError
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_plot_lesion_refuses_a_lesion_json_it_cannot_draw(tmp_path, monkeypatch, capsys, text, words):
    """Each used to end in a TypeError traceback-turned-"internal error" (exit 1), or exit 0 having drawn nothing."""
    study = tmp_path / "lesion.json"
    study.write_text(text, encoding="utf-8", errors="surrogateescape")
    code, err = _cli(monkeypatch, capsys, ["plot-lesion", str(study), "-o", str(tmp_path / "plots")])
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"Error: {study}: not a lesion study") and words in err, err
    assert not (tmp_path / "plots").exists()


def test_a_full_disk_in_the_middle_of_a_study_keeps_what_was_measured(trained, tmp_path, monkeypatch, capsys):
    """The disk fills after the first chunk was written: one line, exit 2, measurements.json holds that chunk whole
    (no temporary file), and --resume on a disk with room again ends with the uninterrupted study's numbers."""
    ckpt, _ = trained
    options = [str(ckpt), "--limit", "8", "--experiments", "single,multi", "--max-k", "2", "--samples", "2",
               "--quiet", "--format", "json"]
    code, err = _cli(monkeypatch, capsys, ["lesion", *options, "--out", str(tmp_path / "whole")])
    assert code == 0, err
    whole = json.loads((tmp_path / "whole" / "lesion.json").read_text())
    out = tmp_path / "cut"
    with monkeypatch.context() as full:
        # the study's state written empty, then after chunk 1; after chunk 2 its first 100 bytes fit
        failed = _fill_the_disk_after(full, saves=2, room=100, kinds=("w",), of="measurements.json")
        code, err = _cli(full, capsys, ["lesion", *options, "--out", str(out)])
    assert code == 2, err
    assert err.splitlines() == ["Error: no space left on the device (free some space and run again)"], err
    assert failed and not any(f.exists() for f in failed)  # the half-written state was removed
    kept = json.loads((out / "measurements.json").read_text())
    assert kept["done"] and kept["partial"] is None  # the first chunk, whole
    assert {p.name for p in out.iterdir()} <= {"measurements.csv", "measurements.json"}  # no temp file, no lock
    code, err = _cli(monkeypatch, capsys, ["lesion", *options, "--out", str(out), "--resume"])
    assert code == 0, err
    resumed = json.loads((out / "lesion.json").read_text())
    for key in ("baseline_error", "single", "multi"):
        assert resumed[key] == whole[key]
