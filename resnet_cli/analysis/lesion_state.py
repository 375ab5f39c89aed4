"""A lesion study's state on disk (``measurements.json``): what it measures, what is finished, where it stopped.

The file is one JSON document, rewritten atomically after every finished chunk and at batch boundaries of the
running one::

    {"study":   {"arch", "dataset", "images", "experiments", "max_k", "samples", "seed",
                 "model": sha256 of the weights, "data": the data's fingerprint (data.stream.ImageStream.fingerprint)},
     "done":    {key: {"experiment", "k", "config": {"deleted", "swaps"}, "correct", "images"}, ...},
     "partial": null | {"chunk", "keys", "images_done", "images_measured", "correct": [per key]}}

Resuming continues only the same study (every ``study`` field equal): the same weights, data and options, so a
resumed study ends with exactly the numbers an uninterrupted one gives.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ResnetCliError


class StudyExistsError(ResnetCliError):
    """The state file already holds a study and resuming was not asked for: never overwrite one silently."""


class StudyMismatchError(ResnetCliError):
    """The state file holds another study (other weights, data or options) than the one asked to resume."""


def model_fingerprint(model: Any) -> str:
    """sha256 over the state dict's tensors in order (shapes and bytes; not the key names, so that a wrapper
    around the same network matches): a resumed study must measure the same weights."""
    h = hashlib.sha256()
    for t in model.state_dict().values():
        h.update(str(tuple(t.shape)).encode())
        h.update(_tensor_bytes(t))
    return h.hexdigest()


def _tensor_bytes(t: Any) -> bytes:
    import torch

    return t.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes()


class StudyState:
    """The measurements of one study so far, kept in ``path`` (or in memory only, with ``path`` None)."""

    def __init__(self, study: dict[str, Any], path: str | Path | None = None,
                 done: dict[str, Any] | None = None, partial: dict[str, Any] | None = None) -> None:
        self.study, self.path = study, Path(path) if path is not None else None
        self.done: dict[str, Any] = done if done is not None else {}
        self.partial = partial

    @classmethod
    def open(cls, path: str | Path | None, study: dict[str, Any], resume: bool) -> StudyState:
        """A fresh state for ``study``, or with ``resume`` the one kept in ``path`` (which must be that study)."""
        if path is None or not Path(path).exists():
            return cls(study, path)
        path = Path(path)
        if not resume:
            raise StudyExistsError(f"{path} already holds a lesion study")
        kept = _read_json(path)
        check_kept_state(kept, path, study.get("images", 0))
        old = kept["study"]
        diff = [k for k in study if old.get(k) != study[k]]
        if diff:
            raise StudyMismatchError(f"{path} holds a different study ({', '.join(diff)} differ)")
        return cls(study, path, kept.get("done", {}), kept.get("partial"))

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study, "done": self.done, "partial": self.partial}

    def save(self) -> None:
        if self.path is None:
            return
        from ..fileio import atomic_write_text

        atomic_write_text(self.path, json.dumps(self.to_dict(), indent=1))

    # ------------------------------------------------------------------ chunks
    def is_done(self, keys: Sequence[str]) -> bool:
        return all(k in self.done for k in keys)

    def resume_point(self, chunk: str, keys: Sequence[str]) -> tuple[int, list[int] | None, int]:
        """(images done, correct counts per key, images measured) kept for ``chunk`` when it was interrupted,
        else (0, None, 0). Images measured are those done less any left out as unreadable."""
        p = self.partial
        if p and p["chunk"] == chunk and p["keys"] == list(keys):
            done = int(p["images_done"])
            return done, [int(c) for c in p["correct"]], int(p.get("images_measured", done))
        return 0, None, 0

    def keep_partial(self, chunk: str, keys: Sequence[str], images_done: int, correct: Sequence[int],
                     images_measured: int | None = None) -> None:
        """Record (and write) the running counts of an unfinished chunk."""
        self.partial = {"chunk": chunk, "keys": list(keys), "images_done": images_done,
                        "images_measured": images_done if images_measured is None else int(images_measured),
                        "correct": [int(c) for c in correct]}
        self.save()

    def finish(self, measurements: Sequence[Any], correct: Sequence[int], images: int) -> None:
        """Record (and write) a finished chunk: its measurements' correct counts out of ``images`` (the study's,
        less any left out as unreadable)."""
        for m, c in zip(measurements, correct):
            self.done[m.key] = {"experiment": m.experiment, "k": m.k, "config": m.config.to_dict(),
                                "correct": int(c), "images": images}
        self.partial = None
        self.save()


def _read_json(path: Path) -> Any:
    from ..limits import MAX_JSON_BYTES, check_file_size

    try:
        check_file_size(path, MAX_JSON_BYTES, "a study's state", ResnetCliError)
        return json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ResnetCliError(f"cannot read {path} to resume: it is nested too deeply") from None
    except (OSError, ValueError) as exc:
        raise ResnetCliError(f"cannot read {path} to resume: {exc}") from None


def check_kept_state(kept: Any, path: Path, images: int) -> None:
    """Refuse a ``measurements.json`` that cannot be the state of a study of ``images`` images (edited, damaged
    or from something else): the right shape and types, and counts that can be true (0 <= correct <= images,
    every finished measurement over all ``images``), before any of it is used."""
    def bad(why: str) -> ResnetCliError:
        return ResnetCliError(f"{path} is not a lesion study's state ({why}); move it away to start afresh")

    if not isinstance(kept, dict) or not isinstance(kept.get("study"), dict):
        raise bad("not an object with a 'study'")
    done, partial = kept.get("done"), kept.get("partial")
    if not isinstance(done, dict):
        raise bad("'done' is missing or not an object")
    _check_done(done, images, bad)
    if partial is not None:
        _check_partial(partial, images, bad)


def _check_done(done: dict[str, Any], images: int, bad: Any) -> None:
    for key, entry in done.items():
        if not (isinstance(entry, dict) and _count(entry.get("correct")) and _count(entry.get("images"))
                and isinstance(entry.get("experiment"), str) and _count(entry.get("k"))
                and isinstance(entry.get("config"), dict)):
            raise bad(f"measurement {key!r} lacks a whole 'correct', 'images', 'k', 'experiment' or 'config'")
        if entry["images"] > images or entry["correct"] > entry["images"]:
            raise bad(f"measurement {key!r} has {entry['correct']} correct of {entry['images']} images; the study "
                      f"has {images}")


def _check_partial(partial: Any, images: int, bad: Any) -> None:
    if not (isinstance(partial, dict) and isinstance(partial.get("chunk"), str)
            and isinstance(partial.get("keys"), list) and all(isinstance(k, str) for k in partial["keys"])
            and _count(partial.get("images_done")) and isinstance(partial.get("correct"), list)
            and all(_count(c) for c in partial["correct"])):
        raise bad("'partial' lacks a 'chunk', 'keys', whole 'images_done' or 'correct' counts")
    done_images = partial["images_done"]
    measured = partial.get("images_measured", done_images)
    if not _count(measured) or measured > done_images or done_images > images or \
            len(partial["correct"]) != len(partial["keys"]) or any(c > measured for c in partial["correct"]):
        raise bad(f"'partial' counts do not fit {done_images} of {images} images")


def _count(value: Any) -> bool:
    """A whole number >= 0 (not a bool, a float or a string)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# --------------------------------------------------------------------------- lesion.json, read back to be drawn
def check_saved_study(data: Any, path: Path) -> dict[str, Any]:
    """``data``, a study's ``lesion.json`` read back (``plot-lesion``), refused unless it can be drawn as it says:
    an object with errors that are fractions in [0, 1], rows of ``single`` and ``skipped`` that name a block by
    its index, rows of ``multi`` and ``reorder`` with a whole k and a mean and std, and something to draw."""
    def bad(why: str) -> ResnetCliError:
        return ResnetCliError(f"{path}: not a lesion study written by 'lesion' ({why})")

    if not isinstance(data, dict) or not _fraction(data.get("baseline_error")):
        raise bad("no baseline_error between 0 and 1")
    rules = {
        "single": lambda r: _count(r.get("index")) and isinstance(r.get("block"), str) and _fraction(r.get("error")),
        "skipped": lambda r: _count(r.get("index")) and isinstance(r.get("block"), str),
        "multi": lambda r: _count(r.get("k")) and _fraction(r.get("mean")) and _fraction(r.get("std")),
    }
    rules["reorder"] = rules["multi"]
    for name, fits in rules.items():
        rows = data.get(name, [])
        if not isinstance(rows, list):
            raise bad(f"{name!r} is not a list")
        wrong = next((i for i, r in enumerate(rows) if not (isinstance(r, dict) and fits(r))), None)
        if wrong is not None:
            raise bad(f"{name!r} row {wrong + 1} lacks a whole index or k, a block name, or an error in [0, 1]")
    if not any(data.get(name) for name in ("single", "multi", "reorder")):
        raise bad("no single, multi or reorder measurements to draw")
    classes = data.get("num_classes")
    if classes is not None and not (_count(classes) and classes >= 1):
        raise bad("num_classes is not a whole number >= 1")
    return data


def _fraction(value: Any) -> bool:
    """A number in [0, 1] (an error; also a std of errors): not a bool, a string, NaN or an infinity."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
