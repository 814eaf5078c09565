"""The plugin's own metadata.txt (version for model cards, homepage for help links)."""

from __future__ import annotations

import configparser
import os
from functools import cache

METADATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "metadata.txt")


@cache
def plugin_metadata(key: str) -> str:
    """The value of ``key`` in metadata.txt's [general] section; 'unknown' when the file or key is missing."""
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read(METADATA, encoding="utf-8")
    return metadata.get("general", key, fallback="unknown")
