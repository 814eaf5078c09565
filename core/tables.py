"""Small CSV tables written atomically (a failed or cancelled run leaves no file)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence

from .outputs import atomic_path


def write_csv(path: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Write ``header`` and ``rows`` to the CSV file ``path`` through a temporary file renamed into place."""
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
