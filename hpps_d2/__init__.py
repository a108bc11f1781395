"""hpps_d2: hybrid pre-training for person search, as a detectron2 project."""
from . import compat

compat.apply()

from . import data, modeling  # noqa: E402,F401  (registers datasets and models at import)

__version__ = "0.1.0"
