"""Optimizer and gradient clipping of the trainers (detectron2's ``solver`` package, extended)."""
from .build import build_optimizer
from .clip import CLIP_TYPES, build_gradient_clipper

__all__ = ["build_optimizer", "build_gradient_clipper", "CLIP_TYPES"]
