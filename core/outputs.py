"""Output files that appear whole or not at all: temporary files beside the target, renamed into place when done.

Inside :func:`output_set` (one per algorithm run) the renames wait until the whole run has succeeded, so a failed
or cancelled run leaves no output at all. Standard library only, so the plugin's Processing scaffolding loads in
a QGIS without the plugin's packages (and can offer to install them).
"""

from __future__ import annotations

import glob
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import InputError


def check_writable(path: str) -> None:
    """Fail early, with the path in the message, when ``path`` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise InputError(f"The output folder does not exist: {folder}. Create it or choose another output path.")
    if not os.access(folder, os.W_OK):
        raise InputError(f"The output folder is not writable: {folder}. Choose a folder you can write to.")
    if os.path.isdir(path):
        raise InputError(f"The output path is a folder: {path}. Give a file name ending in .tif.")


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    Inside :func:`output_set` the rename waits for the end of the run.
    """
    temporary = temporary_beside(path)
    try:
        yield temporary
        os.chmod(temporary, _new_file_mode())  # mkstemp makes private files; outputs get the usual mode
        pending = getattr(_RUN, "outputs", None)
        if pending is None:
            _move_into_place(temporary, path)
        else:
            pending.add(temporary, path)
    except BaseException:
        _remove_quietly(temporary)
        raise


def temporary_beside(path: str) -> str:
    """A fresh, empty temporary file in the folder of ``path`` with its extension (the folder must be writable)."""
    check_writable(path)
    folder = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1] or ".tmp"
    handle, temporary = tempfile.mkstemp(prefix=".deepprospect-", suffix=suffix, dir=folder)
    os.close(handle)
    return temporary


_RUN = threading.local()  # the OutputSet of the run in progress on this thread, if any


class OutputSet:
    """The outputs of one run, written to temporaries and moved into place together once the run succeeds."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, str]] = []

    def add(self, temporary: str, path: str) -> None:
        """Move ``temporary`` (and its companion files, e.g. a shapefile's .dbf) to ``path`` at commit."""
        self.pending.append((temporary, path))

    def commit(self) -> None:
        for temporary, path in self.pending:
            _move_into_place(temporary, path)
        self.pending = []

    def discard(self) -> None:
        for temporary, _ in self.pending:
            _remove_quietly(temporary)
        self.pending = []


@contextmanager
def output_set() -> Iterator[OutputSet]:
    """Collect the outputs written by :func:`atomic_path` on this thread; all appear at the end or none do."""
    outputs, previous = OutputSet(), getattr(_RUN, "outputs", None)
    _RUN.outputs = outputs
    try:
        yield outputs
    except BaseException:
        outputs.discard()
        raise
    finally:
        _RUN.outputs = previous
    outputs.commit()


def pending_outputs() -> OutputSet:
    """The output set of the run in progress on this thread (see :func:`output_set`)."""
    outputs = getattr(_RUN, "outputs", None)
    if outputs is None:
        raise RuntimeError("No run in progress: output files are collected only inside output_set().")
    return outputs


def _companions(temporary: str) -> list[str]:
    """``temporary`` and the files that belong to it: same name plus more (a.tif.aux.xml) or another extension
    of a multi-file format (a.dbf beside a.shp)."""
    stem = os.path.splitext(temporary)[0]
    return sorted(set(glob.glob(glob.escape(stem) + ".*")) | {temporary})


def _move_into_place(temporary: str, path: str) -> None:
    """Rename ``temporary`` and its companions to ``path``; a stale ``path.aux.xml`` (old statistics) goes."""
    stem, target_stem = os.path.splitext(temporary)[0], os.path.splitext(path)[0]
    companions = _companions(temporary)
    if temporary + ".aux.xml" not in companions:
        _remove_file(path + ".aux.xml")
    for companion in companions:
        if companion.startswith(temporary):  # the file itself, or a.tif.aux.xml
            os.replace(companion, path + companion[len(temporary):])
        else:  # a.dbf beside a.shp
            os.replace(companion, target_stem + companion[len(stem):])


def _read_umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


# Read once at import: os.umask is process-wide, so flipping it while Processing runs threads would be a race.
_UMASK = _read_umask()


def _new_file_mode() -> int:
    """The mode a newly created file gets under the process umask (0o644 with the usual 022)."""
    return 0o666 & ~_UMASK


def _remove_quietly(path: str) -> None:
    for companion in _companions(path):
        _remove_file(companion)


def _remove_file(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
