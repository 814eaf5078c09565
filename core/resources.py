"""Memory checks, so a job that cannot fit is refused up front with the size it would need."""

from __future__ import annotations

import os

from .errors import ResourceError


def available_memory_bytes() -> int | None:
    """Memory the OS can give this process now, or None where it cannot be told."""
    try:
        import psutil  # optional; present in most QGIS installs, including Windows

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def require_memory(needed_bytes: int, what: str, available: int | None = None) -> None:
    """Raise :class:`ResourceError` when ``needed_bytes`` exceeds the memory available now."""
    available = available_memory_bytes() if available is None else available
    if available is not None and needed_bytes > available:
        raise ResourceError(
            f"{what} would need about {format_bytes(needed_bytes)} of memory, but only "
            f"{format_bytes(available)} is available. Use a larger pixel size, a smaller extent or fewer fields."
        )


def format_bytes(count: int) -> str:
    """Human-readable size: 1.5 GiB, 20.0 MiB."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} TiB"
