"""Memory guard: a step that still needs a large buffer is refused up front, with the size it would need.

:func:`check_memory` compares an estimate with the memory the OS can give now and raises a
:class:`~.errors.ResourceError` saying what needs how much, what is free, and which parameter lowers it,
instead of letting the operating system kill QGIS half-way. :func:`check_disk` does the same for an output
written block by block, whose size no longer shows in memory.
"""

from __future__ import annotations

import os
import shutil

from .errors import ResourceError


def available_memory_bytes() -> int | None:
    """Memory the OS can give this process now, or None where it cannot be told.

    Linux: ``MemAvailable`` of /proc/meminfo (page cache that can be dropped counts as free); elsewhere
    psutil when it is installed (it is not a dependency), else the free pages from ``os.sysconf``.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil  # optional: present in most QGIS installs, including Windows and macOS

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(needed_bytes: int, what: str, lower_with: str, available: int | None = None) -> None:
    """Raise :class:`ResourceError` when ``needed_bytes`` exceeds the memory available now.

    Args:
        needed_bytes: the estimate of the buffers the step is about to allocate.
        what: the step and its size, e.g. "A 20000 × 20000 grid of 40 field(s)".
        lower_with: what the user can change, as an instruction naming the parameter, e.g.
            "Use a larger pixel size (PIXEL_SIZE) or a smaller extent (EXTENT)".
        available: the free memory in bytes (default: asked from the OS now).
    """
    available = available_memory_bytes() if available is None else available
    if available is not None and needed_bytes > available:
        raise ResourceError(
            f"{what} would need about {format_bytes(needed_bytes)} of memory, but only {format_bytes(available)} "
            f"is available. {lower_with}, or close other programs.")


def check_disk(needed_bytes: int, path: str, what: str, lower_with: str, free: int | None = None) -> None:
    """Raise :class:`ResourceError` when writing ``needed_bytes`` beside ``path`` would not fit on its disk.

    Args:
        needed_bytes: the size of the output, uncompressed (an upper estimate of the compressed file).
        path: the output path (its folder must exist).
        what: the output and its size, e.g. "A 20000 × 20000 grid of 40 field(s)".
        lower_with: what the user can change, as an instruction naming the parameter.
        free: the free disk space in bytes (default: asked from the OS now).
    """
    folder = os.path.dirname(os.path.abspath(path))
    free = shutil.disk_usage(folder).free if free is None else free
    if needed_bytes > free:
        raise ResourceError(
            f"{what} would need about {format_bytes(needed_bytes)} of disk space (uncompressed), but only "
            f"{format_bytes(free)} is free in {folder}. {lower_with}, or write to another disk.")


def format_bytes(count: int) -> str:
    """Human-readable size: 1.5 GiB, 20.0 MiB."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} TiB"
