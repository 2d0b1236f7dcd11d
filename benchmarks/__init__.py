"""Benchmarks: figures measured as ratios against a baseline in the same run (`python -m benchmarks`).

A later figure is one more module in this package that uses `@figure`; `load_figures()`
imports every module here, so nothing else needs to change.
"""
from __future__ import annotations

import importlib
import pkgutil

from .harness import REGISTRY, Figure, Registry, Sample, Settings, figure, measure, percentile, run_figures

__all__ = [
    "REGISTRY", "Figure", "Registry", "Sample", "Settings", "figure", "load_figures", "measure",
    "percentile", "run_figures",
]

_NOT_FIGURES = {"harness", "__main__", "cli", "evaluation", "mutation"}


def load_figures() -> Registry:
    """Import every figure module of the package; returns the registry they filled."""
    for info in pkgutil.iter_modules(__path__):
        if info.name not in _NOT_FIGURES and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return REGISTRY
