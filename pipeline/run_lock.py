"""One run at a time per dataset prefix: `D/_dhs_run.lock`, created only if absent.

The plan of a run takes the lock before any Spark step starts; the run's teardown releases it,
whatever happened in between. A second run on the same prefix is refused with the holder's name
(its writes would interleave with the first run's: inject rewrites D/phase4c, promotion moves
D/CURRENT). Works on local disk (O_EXCL) and S3 (If-None-Match) alike: pipeline.conditional_io.

A lock left by a run that died without its teardown (a killed worker) is removed by hand:
`dhs unlock D --run <holder>` after checking that run is over.
"""

from __future__ import annotations

import json
import os
import socket

from pipeline import conditional_io, storage
from pipeline.dataset import utc_now
from pipeline.errors import InputError

LOCK_FILE = "_dhs_run.lock"


class LockHeld(InputError):
    """Another run holds the dataset prefix."""


def lock_uri(root: str) -> str:
    return storage.join(root, LOCK_FILE)


def holder(root: str) -> dict | None:
    data, _ = conditional_io.read_versioned(lock_uri(root))
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return {"run": "(unreadable lock file)"}


def acquire(root: str, run: str) -> dict:
    """Take the lock for `run` (again, for a retry of the same run). LockHeld otherwise."""
    doc = {"run": run, "acquired_utc": utc_now(), "host": socket.gethostname(), "pid": os.getpid()}
    try:
        conditional_io.create_exclusive(lock_uri(root), json.dumps(doc).encode())
        return doc
    except conditional_io.ConflictError:
        current = holder(root) or {}
        if current.get("run") == run:
            return current
        raise LockHeld(root, f"run {current.get('run')!r} holds this dataset prefix (since {current.get('acquired_utc')}, "
                             f"{lock_uri(root)}); two runs on one prefix would overwrite each other's data. Wait for it "
                             f"to end, or, if it is dead, `dhs unlock {root} --run {current.get('run')}`") from None


def release(root: str, run: str) -> bool:
    """Release the lock if `run` holds it; True when it was released."""
    data, version = conditional_io.read_versioned(lock_uri(root))
    if data is None:
        return False
    try:
        owner = json.loads(data).get("run")
    except ValueError:
        owner = None
    if owner != run:
        return False
    return conditional_io.delete_if_version(lock_uri(root), version)
