"""Matplotlib figures rendered off-screen to PNG bytes, and their embedding in self-contained HTML reports."""

from __future__ import annotations

import base64
import html
import io


def new_figure(width: float, height: float):
    """A matplotlib Figure on the Agg canvas (no GUI backend, safe inside QGIS and headless runs)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure) -> bytes:
    """The figure, laid out tightly, as PNG bytes."""
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def html_figure(png: bytes, caption: str) -> str:
    """An HTML <figure> with the PNG embedded as base64, so the page needs no other file."""
    text = html.escape(caption)
    return (f'<figure><img alt="{text}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
            f"<figcaption>{text}</figcaption></figure>")
