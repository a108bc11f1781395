"""Counts of a loaded split, in the terms docs/datasets.md publishes them."""
from typing import Dict, List, Optional

from .common import count_identities

__all__ = ["split_counts", "COUNT_KEYS"]

#: Keys of :func:`split_counts`, in display order.
COUNT_KEYS = ("images", "boxes", "ignore", "identities", "queries")


def split_counts(records: List[dict]) -> Dict[str, Optional[int]]:
    """
    Args:
        records: the records of one split (scene, crop or query records).

    Returns:
        dict with ``images`` (records), ``boxes`` (person boxes of scene records, ignore regions
        excluded), ``ignore`` (ignore regions), ``identities`` (distinct labeled ids) and
        ``queries`` (query records). A count that does not apply to the split's kind is None.
    """
    scenes = [r for r in records if "annotations" in r]
    queries = [r for r in records if "query" in r]
    boxes = sum(1 for r in scenes for a in r["annotations"] if not a.get("iscrowd", 0))
    return {
        "images": len(records),
        "boxes": boxes if scenes else None,
        "ignore": len([a for r in scenes for a in r["annotations"] if a.get("iscrowd", 0)]) if scenes else None,
        "identities": count_identities(records),
        "queries": len(queries) if queries else None,
    }
