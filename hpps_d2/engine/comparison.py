"""
Paired comparisons of two study arms, and a verdict on the paper's claim about them.

Two arms of the study (e.g. fine-tuning from the ImageNet stand-in vs from the hybrid pre-trained
model) are run with the same fine-tuning seeds; a seed fixes the data order, the augmentation and
the new heads' initialisation, so the runs of one seed form a pair and their difference removes
the share of the seed-to-seed spread the arms have in common. For ``n`` pairs with differences
``d_i = b_i - a_i``:

* mean ``d̄``, sample standard deviation ``s`` (``ddof = 1``);
* the 95% interval of the mean difference from Student's t with ``n - 1`` degrees of freedom:
  ``d̄ ± t_{0.975, n-1} · s / sqrt(n)`` (the interval of a paired t-test, as
  ``scipy.stats.ttest_rel(b, a).confidence_interval()`` gives it; tests compare with scipy).

The verdict compares that interval with the direction the paper reports (``paper_sign`` +1: the
paper finds ``b`` above ``a``; -1: below): **agrees** when the whole interval lies on the paper's
side of 0, **disagrees** when it lies wholly on the other side, **not resolved** when it contains
0 or when fewer than 2 pairs exist. It is never judged by eye from two means.

Where an arm has several pre-training seeds, its runs are keyed ``(pre-training seed,
fine-tuning seed)``. Against an arm keyed by fine-tuning seed alone (the stand-in baseline), its
runs are first averaged over the pre-training seeds of each fine-tuning seed, then paired: each
baseline run serves every pre-training seed, so the independent units are the fine-tuning seeds
and ``n`` is their count (counting every (pre-training, fine-tuning) run as its own pair would
reuse each baseline run and overstate the degrees of freedom). Two arms that both have
pre-training seeds pair run for run: each pair is one draw of both pipelines.
"""
import dataclasses
import math
from typing import Dict, Hashable

import numpy as np
from scipy import stats

__all__ = ["PairedDifference", "paired_difference", "verdict", "VERDICTS"]

VERDICTS = ("agrees", "disagrees", "not resolved")


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """
    ``b - a`` over paired runs.

    Attributes:
        n: number of pairs.
        mean: mean difference (NaN when ``n == 0``).
        std: sample standard deviation of the differences (NaN when ``n < 2``).
        low, high: the 95% t interval of the mean difference (NaN when ``n < 2``).
        relative: ``mean / mean(a over the pairs)`` (NaN when that mean is 0).
    """

    n: int
    mean: float
    std: float
    low: float
    high: float
    relative: float

    def __str__(self) -> str:
        if self.n == 0:
            return "not run"
        if self.n < 2:
            return f"{self.mean:+.2f} (1 pair)"
        return f"{self.mean:+.2f} [{self.low:+.2f}, {self.high:+.2f}] (n={self.n})"


def _by_finetuning_seed(x: Dict[Hashable, float], other: Dict[Hashable, float]) -> Dict[Hashable, float]:
    """``x`` averaged over pre-training seeds per fine-tuning seed when ``x`` is keyed
    ``(pre seed, ft seed)`` and ``other`` by fine-tuning seed alone (module docstring); else ``x``."""
    if not any(isinstance(k, tuple) for k in x) or any(isinstance(k, tuple) for k in other):
        return x
    groups: Dict[Hashable, list] = {}
    for k, v in x.items():
        groups.setdefault(k[-1] if isinstance(k, tuple) else k, []).append(v)
    return {k: float(np.mean(v)) for k, v in groups.items()}


def paired_difference(
    a: Dict[Hashable, float], b: Dict[Hashable, float], confidence: float = 0.95
) -> PairedDifference:
    """
    Args:
        a, b: run value (e.g. search mAP) per seed key of the two arms: a fine-tuning seed, or
            ``(pre-training seed, fine-tuning seed)`` for an arm with several pre-training runs.
            Runs pair by equal key, after :func:`_by_finetuning_seed`; unpaired runs are left out.
        confidence: of the interval.

    Returns:
        PairedDifference of ``b - a``.
    """
    a, b = _by_finetuning_seed(a, b), _by_finetuning_seed(b, a)
    pairs = [(a[k], v) for k, v in b.items() if k in a]
    n = len(pairs)
    if n == 0:
        nan = float("nan")
        return PairedDifference(0, nan, nan, nan, nan, nan)
    base = np.array([p[0] for p in pairs], dtype=np.float64)
    d = np.array([p[1] - p[0] for p in pairs], dtype=np.float64)
    mean = float(d.mean())
    relative = mean / float(base.mean()) if base.mean() != 0 else float("nan")
    if n < 2:
        nan = float("nan")
        return PairedDifference(1, mean, nan, nan, nan, relative)
    std = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return PairedDifference(n, mean, std, mean - half, mean + half, relative)


def verdict(diff: PairedDifference, paper_sign: int) -> str:
    """
    One of :data:`VERDICTS` for the paper's claim that ``b - a`` has sign ``paper_sign``.
    """
    if paper_sign not in (1, -1):
        raise ValueError(f"paper_sign must be +1 or -1, got {paper_sign}")
    if diff.n < 2 or math.isnan(diff.low):
        return "not resolved"
    if diff.low > 0:
        return "agrees" if paper_sign > 0 else "disagrees"
    if diff.high < 0:
        return "agrees" if paper_sign < 0 else "disagrees"
    return "not resolved"
