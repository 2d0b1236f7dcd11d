"""Cognition: the Thought Engine and its stages."""
from .engine import StageStats, ThoughtEngine
from .stages import DTR, Imperator, Outcome, Stage, Turn

__all__ = ["DTR", "Imperator", "Outcome", "Stage", "StageStats", "ThoughtEngine", "Turn"]
