"""hpps_d2: hybrid pre-training for person search, as a detectron2 project."""
from . import compat

compat.apply()

from . import data  # noqa: E402,F401  (registers the datasets at import, for spawned workers too)

__version__ = "0.1.0"
