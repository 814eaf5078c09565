"""Tiles of a grid, computed in this process or on a Dask cluster, and written window by window.

A tiled step splits its output grid into :class:`Tile` windows (:func:`grid_tiles`), describes each tile by a
picklable task, and hands :func:`map_tiles` a function that turns one task into that tile's values:

* without a scheduler address, the tasks run here one after the other, in order (every step's behaviour
  before Dask);
* with one — the ``scheduler`` argument, else the environment variable :data:`SCHEDULER_ENV` for headless
  runs — they are submitted to that ``dask.distributed`` scheduler, a few per worker thread at a time, and
  their results are gathered as they complete (``as_completed``); a cancel cancels the futures.

The same function runs on the same task either way, so the values are the same bits wherever a tile runs (on
workers with the same packages and CPU kind). :func:`write_tiles` writes the results into a tiled GeoTIFF as
they arrive, through :func:`.outputs.atomic_path`, so memory holds a few tiles, never the map, and a failure or
a cancel leaves no file.

**Hooking a step in.** Write a module-level function ``compute(task) -> np.ndarray`` (importable on the workers:
module-level, not a closure; bind shared settings with ``functools.partial``), a generator of tasks that carry
their :class:`Tile` and only the inputs that tile needs (paths to read windows from, or the features near it),
then ``write_tiles(path, raster_io.grid_profile(grid, len(names)), names, tags, ((task.tile, values) for task,
values in map_tiles(compute, tasks, len(tiles), scheduler=...)))``; a tile's values are (height, width) or (bands,
height, width). Inputs every tile needs and that are large (search trees of all the samples) go in ``shared``:
``compute(shared, task)`` then gets them, and on Dask they are sent to each worker once (``Client.scatter``)
instead of with every task. Dask itself is imported only when an address is given, so the plugin runs without it.

**Workers** must import this plugin as the package ``deepprospect`` with the same version and Python packages
(e.g. start them with ``PYTHONPATH`` holding the folder that contains the plugin folder) and read inputs at the
same paths as the client (a shared file system). Each worker thread runs one tile at a time with one thread of
its own, so the cluster's threads are the parallelism.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import numpy as np
from rasterio.windows import Window

from .errors import InputError, ResourceError
from .progress import CancelFn, LogFn, ProgressFn, check_cancelled, log_message, report
from .raster_io import profile_writer

SCHEDULER_ENV = "DEEPPROSPECT_DASK_SCHEDULER"
IN_FLIGHT_PER_THREAD = 2
"""Tasks submitted ahead per worker thread: keeps every thread busy while results are written."""
MAX_IN_FLIGHT = 64
"""At most this many tasks submitted ahead, whatever the cluster's size: bounds the results waiting here to be
written (64 tiles of 512 × 512 float32: 64 MiB)."""
CONNECT_TIMEOUT_S = 20
POLL_S = 0.01  # how often the cancel flag is read while no tile is ready
PACKAGE = __name__.split(".")[0]  # the plugin's package name, as the workers must import it

Task = TypeVar("Task")


@dataclass(frozen=True)
class Tile:
    """A window of a grid: first row and column, height and width, in cells."""

    row: int
    col: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """(rows, cols) slices of the tile in an array of the whole grid."""
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)

    @property
    def window(self) -> Window:
        """The tile as a rasterio window."""
        return Window(self.col, self.row, self.width, self.height)


def grid_tiles(rows: int, cols: int, side: int) -> list[Tile]:
    """Tiles of ``side`` × ``side`` cells covering a ``rows`` × ``cols`` grid (smaller at the right and bottom),
    row-major: tile ``i`` is in tile row ``i // ⌈cols/side⌉``, tile column ``i % ⌈cols/side⌉``."""
    if side < 1:
        raise InputError(f"The tile size must be at least 1, not {side}.")
    return [Tile(r, c, min(side, rows - r), min(side, cols - c))
            for r in range(0, rows, side) for c in range(0, cols, side)]


def tile_members(ranges: np.ndarray, rows: int, cols: int, side: int) -> Callable[[int], np.ndarray]:
    """Which items reach which tile of :func:`grid_tiles` (``rows``, ``cols``, ``side``).

    Args:
        ranges: (n, 4) int cell ranges ``row_start, row_stop, col_start, col_stop`` (stops exclusive, any values:
            they are clipped to the grid) of the cells each item reaches.

    Returns:
        A function of a tile's index giving the items that reach it, in ascending order.
    """
    ranges = np.asarray(ranges, dtype=np.int64).reshape(-1, 4)
    r0, r1 = ranges[:, 0].clip(0, rows), ranges[:, 1].clip(0, rows)
    c0, c1 = ranges[:, 2].clip(0, cols), ranges[:, 3].clip(0, cols)
    item = np.flatnonzero((r1 > r0) & (c1 > c0))
    tr0, tc0 = r0[item] // side, c0[item] // side
    n_r, n_c = (r1[item] - 1) // side - tr0 + 1, (c1[item] - 1) // side - tc0 + 1
    counts = n_r * n_c
    owner = np.repeat(np.arange(len(item)), counts)
    k = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    tile = (tr0[owner] + k // n_c[owner]) * math.ceil(cols / side) + tc0[owner] + k % n_c[owner]
    order = np.lexsort((owner, tile))
    tile, member = tile[order], item[owner[order]]

    def members(index: int) -> np.ndarray:
        return member[np.searchsorted(tile, index, "left"):np.searchsorted(tile, index, "right")]

    return members


def scheduler_address(address: str | None = None) -> str | None:
    """The Dask scheduler to use: ``address``, else :data:`SCHEDULER_ENV`, else None (run in this process)."""
    chosen = (address or "").strip() or os.environ.get(SCHEDULER_ENV, "").strip()
    return chosen or None


def map_tiles(
    function: Callable[[Task], Any],
    tasks: Iterable[Task],
    count: int,
    *,
    shared: Any = None,
    scheduler: str | None = None,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
    log: LogFn = None,
) -> Iterator[tuple[Task, Any]]:
    """``(task, function(task))`` (``function(shared, task)`` when ``shared`` is given) for each of the ``count``
    tasks: in order here, as they complete on Dask.

    Args:
        function: computes one task; on Dask it must be importable by the workers (module level or a partial).
        tasks: the tasks, consumed lazily (only those in flight are held).
        count: how many tasks there are (for progress).
        shared: inputs of every task, passed first; on Dask sent to every worker once before the tasks.
        scheduler: a dask.distributed scheduler address (``tcp://host:8786``); None or empty: the
            environment variable :data:`SCHEDULER_ENV`, else this process.
        progress, is_cancelled, log: 0–100 progress by tiles done, cancel flag (between tiles; on Dask it
            cancels the futures), messages.

    Raises:
        InputError: an address is given but dask.distributed is missing, or the scheduler cannot be reached.
        Cancelled: the cancel flag was set.
    """
    address = scheduler_address(scheduler)
    if address is None:
        if shared is not None:
            function = partial(function, shared)
        return _in_process(function, tasks, count, progress, is_cancelled)
    return _on_dask(function, tasks, count, shared, address, progress, is_cancelled, log)


def write_tiles(path: str, profile: Mapping[str, Any], band_names: Sequence[str], tags: Mapping[str, str],
                results: Iterable[tuple[Tile, np.ndarray]], *,
                band_metadata: Sequence[Mapping[str, str]] | None = None) -> int:
    """Write ``results`` (tile, values with NaN = nodata) into a GeoTIFF as they come.

    Args:
        path: the output; written to a temporary name renamed into place only when every tile is written.
        profile: the creation profile (:func:`.raster_io.grid_profile`, :func:`.raster_io.geotiff_profile`), one
            band per name.
        band_names: the band descriptions.
        tags: dataset tags.
        results: the tiles and their values, (height, width) for one band or (bands, height, width), in any
            order.
        band_metadata: tags of each band.

    Returns:
        The number of values that are not nodata.
    """
    with profile_writer(path, profile, band_names, metadata=tags, band_metadata=band_metadata) as writer:
        for tile, values in results:
            writer.write(values.reshape(-1, tile.height, tile.width), window=tile.window)
    return writer.valid


def assemble(shape: tuple[int, int], results: Iterable[tuple[Tile, np.ndarray]],
             dtype: str = "float32") -> np.ndarray:
    """The whole (rows, cols) array of tiled results (for grids that fit in memory)."""
    out = np.empty(shape, dtype=dtype)
    for tile, values in results:
        out[tile.slices] = values
    return out


def _in_process(function, tasks, count, progress, is_cancelled) -> Iterator[tuple[Any, Any]]:
    for done, task in enumerate(tasks, start=1):
        check_cancelled(is_cancelled)
        yield task, function(task)
        report(progress, 100.0 * done / max(count, 1))


def _on_dask(function, tasks, count, shared, address, progress, is_cancelled, log) -> Iterator[tuple[Any, Any]]:
    """Send ``shared`` to every worker once, then submit the tasks to the scheduler at ``address``, a bounded number
    at a time; yield them as they complete."""
    distributed = _distributed(address)
    client = _connect(distributed, address)
    try:
        threads = sum(client.nthreads().values())
        log_message(log, f"Tiles run on the Dask cluster at {address}: {len(client.nthreads())} worker(s), "
                         f"{threads} thread(s).")
        pending: dict[str, tuple[Any, Any]] = {}  # future key -> (future, task)
        completed = distributed.as_completed(loop=client.loop, with_results=True)
        queue = iter(tasks)
        leading = () if shared is None else (client.scatter([shared], broadcast=True, hash=False)[0],)

        def submit() -> None:
            for task in queue:
                future = client.submit(function, *leading, task, pure=False)
                pending[future.key] = (future, task)
                completed.add(future)
                return

        for _ in range(min(IN_FLIGHT_PER_THREAD * max(threads, 1), MAX_IN_FLIGHT)):
            submit()
        done = 0
        try:
            while not completed.is_empty():
                check_cancelled(is_cancelled)
                if not completed.has_ready():
                    time.sleep(POLL_S)
                    continue
                future, result = _next_result(distributed, completed, address)
                _, task = pending.pop(future.key)
                submit()
                yield task, result
                done += 1
                report(progress, 100.0 * done / max(count, 1))
        finally:
            if pending:  # cancelled or failed: the remaining tiles are not needed
                client.cancel([future for future, _ in pending.values()])
    finally:
        client.close()


def _next_result(distributed, completed, address: str) -> tuple[Any, Any]:
    """The next completed (future, result); a tile that failed raises its error (ours come through as they are)."""
    try:
        future, result = next(completed)
    except ImportError as error:
        raise InputError(f"The Dask workers at {address} cannot import the code of a tile ({error}). Install "
                         f"DeepProspect's Python packages on them and put the folder that holds the plugin folder "
                         f"'{PACKAGE}' on their PYTHONPATH.") from error
    except distributed.KilledWorker as error:
        raise ResourceError(f"A Dask worker at {address} died while computing a tile ({error}); most often it "
                            "ran out of memory. Give the workers more memory or use smaller tiles.") from error
    if future.status != "finished":
        raise ResourceError(f"The Dask cluster at {address} dropped a tile ({future.status}: {result!r}); run "
                            "again, or run in this process.")
    return future, result


def _distributed(address: str):
    """The dask.distributed module, or a message saying how to install it or run without it."""
    try:
        import distributed
    except ImportError as error:
        raise InputError(
            f"A Dask scheduler address was given ({address}, from the parameter or {SCHEDULER_ENV}) but "
            "dask.distributed is not installed. Install the packages 'dask' and 'distributed' into QGIS's Python, "
            f"or leave the address empty and unset {SCHEDULER_ENV} to run in this process.") from error
    return distributed


def _connect(distributed, address: str):
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise InputError(f"Cannot reach the Dask scheduler at {address} ({error}). Check the address and that the "
                         f"scheduler runs, or leave the address empty and unset {SCHEDULER_ENV} to run in this "
                         "process.") from error
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except TimeoutError as error:
        client.close()
        raise InputError(f"The Dask scheduler at {address} has no worker (waited {CONNECT_TIMEOUT_S} s). Start "
                         "workers (dask worker " + address + ") or run in this process.") from error
    return client
