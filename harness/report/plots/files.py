"""Figures as files and bytes: PNG (palette-compressed) and SVG (coordinates rounded)."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

from harness.report.plots.style import RC

if TYPE_CHECKING:
    from pathlib import Path

    from matplotlib.figure import Figure


def save_figure(fig: Figure, out_dir: Path, stem: str, *, dpi: int = 100) -> tuple[Path, Path]:
    """Write ``out_dir/stem.png`` (palette-compressed) and ``stem.svg``; returns both paths."""
    import matplotlib
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    buf = io.BytesIO()
    text = io.StringIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
        fig.savefig(text, format="svg", facecolor="white", metadata={"Date": None})
    # 1/100 pt is finer than any screen or printer: rounding coordinates halves the file
    svg.write_text(re.sub(r"(\d\.\d\d)\d+", r"\1", text.getvalue()))
    buf.seek(0)
    with Image.open(buf) as image:
        image.convert("RGB").quantize(colors=128, dither=Image.Dither.NONE).save(png, optimize=True)
    return png, svg


def png_bytes(fig: Figure, *, dpi: int = 100) -> bytes:
    """A figure as PNG bytes (for notebooks and embedding)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()
