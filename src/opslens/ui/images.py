"""Figures shown inside the page itself: a PNG written into the page as a data URL.

``st.image`` and ``st.pyplot`` serve an image from the server's media store, which forgets
the images of a page's previous run once a new run ends; a browser still fetching one (a
page left quickly, a full-page screenshot) then gets 404 and a broken image. A data URL
has nothing to fetch, so it cannot go missing.

Example:
    >>> data_url(b"\\x89PNG")
    'data:image/png;base64,iVBORw=='
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import streamlit as st

__all__ = ["data_url", "png", "show_figure", "show_png"]

_PNG: dict[int, tuple[Any, bytes]] = {}


def png(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes, drawn once per figure (a rerun shows it at once)."""
    held = _PNG.get(id(fig))
    if held is None or held[0] is not fig:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        if len(_PNG) > 256:
            _PNG.clear()
        held = _PNG[id(fig)] = (fig, buffer.getvalue())
    return held[1]


def data_url(data: bytes) -> str:
    """PNG bytes as a ``data:`` URL."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def show_png(data: bytes, *, caption: str | None = None) -> None:
    """Show PNG bytes in the page (no media-store URL), with an optional caption below."""
    alt = html.escape(caption or "figure", quote=True)
    st.html(f'<img src="{data_url(data)}" alt="{alt}" style="max-width:100%;height:auto">')
    if caption:
        st.caption(caption)


def show_figure(fig: Any, *, caption: str | None = None) -> None:
    """Show a matplotlib figure in the page (see :func:`show_png`)."""
    show_png(png(fig), caption=caption)
