"""Checkpoints: one file with everything needed to rebuild, evaluate and continue training a network, and the
bare state dicts of other code.

Three rooms, each one job:

- ``format``: the file format and the training record's schema (``Checkpoint``, ``save_checkpoint``,
  ``load_checkpoint``, ``EpochRecord``, ``check_record``);
- ``safety``: the hostile-file defence (paths, sizes, zip records, legacy pickles, opcode walks), run before
  and around torch's weights-only reader: a checkpoint never runs code;
- ``inference``: which registered architecture a bare state dict is, read by each family's entry in the family
  table (``families.StateDictKeys``).

``CheckpointError`` lives in ``errors.py``; it is re-exported here for the callers that import it from here.
"""

from __future__ import annotations

from ..errors import CheckpointError
from .format import (
    FORMAT,
    RECORD_FIELDS,
    RECORD_NUMBERS,
    RECORD_REQUIRED,
    RECORD_WRITTEN,
    VERSION,
    Checkpoint,
    EpochRecord,
    check_record,
    load_checkpoint,
    save_checkpoint,
)
from .inference import ArchChoice, infer_arch
from .safety import check_checkpoint_path

__all__ = ["FORMAT", "RECORD_FIELDS", "RECORD_NUMBERS", "RECORD_REQUIRED", "RECORD_WRITTEN", "VERSION", "ArchChoice",
           "Checkpoint", "CheckpointError", "EpochRecord", "check_checkpoint_path", "check_record", "infer_arch",
           "load_checkpoint", "save_checkpoint"]
