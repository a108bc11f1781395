"""
Ranking primitives shared by the evaluators: sklearn-identical average precision, batched counting
in sorted rows, and compressed-row ("CSR") index helpers.
"""

from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

__all__ = ["Csr", "average_precision", "count_below", "expand_ranges", "segment_first_argmax"]


def average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """
    Non-interpolated average precision, identical to
    ``sklearn.metrics.average_precision_score(y_true, y_score)`` for binary labels.

    Items are ranked by descending score; tied scores form one threshold, whose precision counts
    every tied item (so the order inside a tie never matters). AP is the step sum over thresholds
    of ``(R_n - R_{n-1}) * P_n``, computed in the same order as sklearn so that results agree to
    the last bit. Returns 0.0 when there is no positive (sklearn warns and returns 0).

    Args:
        y_true: (M,) binary labels (nonzero = positive).
        y_score: (M,) scores.
    """
    y_true = np.asarray(y_true).ravel() != 0
    y_score = np.asarray(y_score).ravel()
    if y_true.size == 0 or not y_true.any():
        return 0.0
    order = np.argsort(y_score, kind="mergesort")[::-1]
    score = y_score[order]
    true = y_true[order]
    ends = np.r_[np.flatnonzero(np.diff(score)), true.size - 1]
    tps = np.cumsum(true, dtype=np.float64)[ends]
    fps = 1 + ends - tps
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    precision = np.r_[precision[::-1], 1.0]
    recall = np.r_[recall[::-1], 0.0]
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


def count_below(
    sorted_rows: np.ndarray, rows: np.ndarray, values: np.ndarray, strict: bool = True
) -> np.ndarray:
    """
    Batched ``searchsorted``: for each ``k``, how many entries of ``sorted_rows[rows[k]]`` are
    ``< values[k]`` (``strict``) or ``<= values[k]``. Exact comparisons, no arithmetic on values.

    Args:
        sorted_rows: (R, L) rows sorted ascending.
        rows: (K,) row of each query value.
        values: (K,) values.

    Returns:
        (K,) int64 counts in ``[0, L]``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    values = np.asarray(values)
    length = sorted_rows.shape[1]
    lo = np.zeros(len(values), dtype=np.int64)
    hi = np.full(len(values), length, dtype=np.int64)
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        v = sorted_rows[rows, np.minimum(mid, length - 1)]
        right = (v < values) if strict else (v <= values)
        lo = np.where(active & right, mid + 1, lo)
        hi = np.where(active & ~right, mid, hi)


def expand_ranges(starts: np.ndarray, lengths: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """
    Concatenate ``arange(starts[i], starts[i] + lengths[i])`` for all i.

    Returns:
        owner: (S,) int64, the ``i`` each value came from.
        values: (S,) int64, the concatenated ranges.
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    first = np.cumsum(lengths) - lengths  # position of each range's first value in the output
    values = np.arange(len(owner), dtype=np.int64) - first[owner] + starts[owner]
    return owner, values


def segment_first_argmax(values: np.ndarray, segments: np.ndarray, num_segments: int):
    """
    ``np.argmax`` (first maximum) within contiguous segments.

    Args:
        values: (S,) values, grouped so that each segment is contiguous.
        segments: (S,) non-decreasing segment id of each value.
        num_segments: total number of segments (some may be empty).

    Returns:
        (num_segments,) int64 index into ``values`` of each segment's first maximum; -1 for an
        empty segment.
    """
    out = np.full(num_segments, -1, dtype=np.int64)
    if len(values) == 0:
        return out
    starts = np.flatnonzero(np.r_[True, segments[1:] != segments[:-1]])
    seg_max = np.maximum.reduceat(values, starts)
    is_max = values == np.repeat(seg_max, np.diff(np.r_[starts, len(values)]))
    position = np.where(is_max, np.arange(len(values)), len(values))
    out[segments[starts]] = np.minimum.reduceat(position, starts)
    return out


@dataclass
class Csr:
    """
    Variable-length integer lists, one per row, stored flat.

    Attributes:
        offsets: (R + 1,) int64; row ``i`` is ``values[offsets[i]:offsets[i + 1]]``.
        values: (S,) int64.
    """

    offsets: np.ndarray
    values: np.ndarray

    @classmethod
    def from_lists(cls, lists: Sequence[Sequence[int]]) -> "Csr":
        lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
        offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
        values = np.fromiter((v for x in lists for v in x), dtype=np.int64, count=int(offsets[-1]))
        return cls(offsets, values)

    @classmethod
    def from_pairs(cls, rows: np.ndarray, values: np.ndarray, num_rows: int) -> "Csr":
        """Build from (row, value) pairs; values keep their order within a row."""
        rows = np.asarray(rows, dtype=np.int64)
        values = np.asarray(values, dtype=np.int64)
        if len(rows) > 1 and (rows[1:] < rows[:-1]).any():
            order = np.argsort(rows, kind="stable")
            rows, values = rows[order], values[order]
        counts = np.bincount(rows, minlength=num_rows)
        return cls(np.r_[0, np.cumsum(counts)].astype(np.int64), values)

    @property
    def num_rows(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def take(self, rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """
        Flatten the given rows.

        Returns:
            owner: (S,) int64 position in ``rows`` of each value; values: (S,) int64.
        """
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.offsets[rows + 1] - self.offsets[rows]
        if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and (np.diff(rows) == 1).all():
            # consecutive rows: their values are one slice
            owner = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
            return owner, self.values[self.offsets[rows[0]] : self.offsets[rows[-1] + 1]]
        owner, flat = expand_ranges(self.offsets[rows], lengths)
        return owner, self.values[flat]
