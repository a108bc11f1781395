"""Data: dataset loaders and catalog registration, data unification, mappers."""
from . import datasets  # noqa: F401  (registers every dataset in detectron2's catalogs)
