"""Progress and cancel callbacks that core functions accept instead of QGIS feedback objects."""

from __future__ import annotations

from typing import Callable, Optional

from .errors import Cancelled

ProgressFn = Optional[Callable[[float], None]]
CancelFn = Optional[Callable[[], bool]]
LogFn = Optional[Callable[[str], None]]


def report(progress: ProgressFn, percent: float) -> None:
    """Send a 0–100 progress figure to the caller, if it asked for one."""
    if progress is not None:
        progress(float(percent))


def check_cancelled(is_cancelled: CancelFn) -> None:
    """Raise :class:`Cancelled` when the caller's cancel flag is set."""
    if is_cancelled is not None and is_cancelled():
        raise Cancelled()


def log_message(log: LogFn, message: str) -> None:
    """Send a line to the caller's log (e.g. the Processing log), if it gave one."""
    if log is not None:
        log(message)
