"""Sizes as people read them."""
from __future__ import annotations


def size_text(size: float) -> str:
    """Bytes as a short figure: 512 B, 3.4 kB, 12.0 MB."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(size) < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
