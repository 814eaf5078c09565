"""Arrays left in their file and read a few rows at a time, for training sets larger than memory.

An ``.npz`` written uncompressed (``np.savez``) holds each array as a plain ``.npy`` file inside the zip, so its
rows lie at a fixed offset and can be read directly. Rows are read with ordinary reads rather than through a
long-lived memory map: a map keeps every page it touched resident in the process (its RSS grows to the file's
size over an epoch), where reads leave only the rows asked for, the rest staying in the system's file cache.
"""

from __future__ import annotations

import math
import os
import zipfile

import numpy as np

_LOCAL_HEADER = b"PK\x03\x04"
_LOCAL_HEADER_SIZE = 30
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


class StoredArray:
    """A read-only C-ordered array at ``offset`` in the file ``path``, read on indexing.

    Index the first axis only (an int, a slice, an index or boolean array): the rows asked for are read (runs
    of consecutive rows in one read) into an ordinary array.
    """

    def __init__(self, path: str, offset: int, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.path, self.offset, self.dtype, self.shape = path, int(offset), np.dtype(dtype), tuple(shape)
        self._row_bytes = self.dtype.itemsize * math.prod(self.shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, index) -> np.ndarray:
        rows, single = self._rows(index)
        out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        if len(rows):
            self._read(rows, out.reshape(-1).view(np.uint8))
        return out[0] if single else out

    def _read(self, rows: np.ndarray, raw: np.ndarray) -> None:
        """Read ``rows`` into the bytes ``raw``, one read per run of consecutive rows."""
        size = self._row_bytes
        cuts = (np.flatnonzero(np.diff(rows) != 1) + 1).tolist()
        with open(self.path, "rb", buffering=0) as handle:
            for start, stop in zip([0, *cuts], [*cuts, len(rows)]):
                handle.seek(self.offset + int(rows[start]) * size)
                if handle.readinto(raw[start * size:stop * size]) != (stop - start) * size:
                    raise OSError(f"{self.path} ends before row {int(rows[stop - 1])}: the file is truncated")

    def _rows(self, index) -> tuple[np.ndarray, bool]:
        """The rows an index selects, and whether it selects one row (an integer)."""
        n = self.shape[0]
        if isinstance(index, slice):
            return np.arange(*index.indices(n)), False
        if isinstance(index, tuple):
            raise IndexError("A stored array is indexed along its first axis only; index the rows it returns.")
        rows = np.asarray(index)
        if rows.dtype == bool:
            if rows.shape != (n,):
                raise IndexError(f"A boolean index of shape {rows.shape} does not match {n} rows.")
            return np.flatnonzero(rows), False
        if rows.ndim > 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
            raise IndexError("Index the rows with an integer, a slice, or a 1-D integer or boolean array.")
        rows = rows.astype(np.int64).reshape(-1)
        rows = np.where(rows < 0, rows + n, rows)
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise IndexError(f"Row index out of range for {n} rows.")
        return rows, np.ndim(index) == 0


def stored_member(path: str, archive: zipfile.ZipFile, name: str) -> StoredArray | None:
    """Array ``name`` of the .npz ``path`` left in the file, or None when it cannot be read in place (a compressed
    or Fortran-ordered member), so the caller reads it whole.

    A stored (uncompressed) zip member is the ``.npy`` file byte for byte after its local header; numpy reads
    only whole ``.npy`` files in place, so the array's offset is found here from the two headers.
    """
    info = archive.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(_LOCAL_HEADER_SIZE)
        if local[:4] != _LOCAL_HEADER:
            raise ValueError(f"the zip entry of {name} is damaged")
        handle.seek(int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little"), os.SEEK_CUR)
        version = np.lib.format.read_magic(handle)
        if version not in _NPY_HEADERS:
            return None
        shape, fortran_order, dtype = _NPY_HEADERS[version](handle)
        offset = handle.tell()
    return None if fortran_order or dtype.hasobject else StoredArray(path, offset, dtype, shape)
