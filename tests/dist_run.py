"""``python -m dist_run``: several resnet-cli commands in one torchrun launch, for test_distributed (a launch
costs three torch start-ups; the 2-core CI machine pays them once).

``$COMMANDS``: a JSON list of argument lists; each rank runs them in turn and writes command i's stdout to
``$OUT_DIR/i.out.RANK``. ``$DIE_AT_CHUNK=n``: rank 1 kills itself (SIGKILL) as it starts its n-th lesion chunk.
``$READ_LOG=PREFIX``: every image an image folder decodes is appended to ``PREFIX.RANK`` (by the rank's data
workers too). Test code only: the package has no fault hooks.
"""

import contextlib
import json
import os
import signal
from pathlib import Path

from resnet_cli.analysis import lesion
from resnet_cli.cli import app

_chunks = {"n": 0}
_run = lesion.ChunkRunner.run


def _run_or_die(self, chunk):
    _chunks["n"] += 1
    if self.world.rank == 1 and _chunks["n"] == int(os.environ["DIE_AT_CHUNK"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return _run(self, chunk)


def _log_reads(prefix):
    from resnet_cli.data import imagefolder

    read = imagefolder.ImageFolderDataset.__getitem__

    def logged(self, i):
        with open(f"{prefix}.{os.environ['RANK']}", "a") as log:
            log.write(f"{self.items[i][0].parent.name}/{self.items[i][0].name}\n")
        return read(self, i)

    imagefolder.ImageFolderDataset.__getitem__ = logged


def main():
    if "DIE_AT_CHUNK" in os.environ:
        lesion.ChunkRunner.run = _run_or_die
    if "READ_LOG" in os.environ:
        _log_reads(os.environ["READ_LOG"])
    out_dir = Path(os.environ["OUT_DIR"])
    for i, args in enumerate(json.loads(os.environ["COMMANDS"])):
        with open(out_dir / f"{i}.out.{os.environ['RANK']}", "w") as out, contextlib.redirect_stdout(out):
            code = app(args, prog_name="resnet-cli", standalone_mode=False)
        if code:
            raise SystemExit(code)


if __name__ == "__main__":
    main()
