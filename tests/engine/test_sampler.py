import itertools

import numpy as np
import pytest

from hpps_d2.data.samplers import BLOCK, RatioSampler


def _take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def test_stream_is_a_function_of_seed_and_position():
    a = _take(RatioSampler([5, 7, 3], seed=1), 300)
    assert a == _take(RatioSampler([5, 7, 3], seed=1), 300)
    assert a != _take(RatioSampler([5, 7, 3], seed=2), 300)
    assert [k for k, _ in a] == list(range(300))
    # resuming anywhere (inside a block or across blocks) continues the same stream
    for start in (1, 17, BLOCK - 1, BLOCK, 2 * BLOCK + 5):
        full = _take(RatioSampler([5, 7, 3], seed=1), start + 50)
        assert _take(RatioSampler([5, 7, 3], seed=1, start=start), 50) == full[start:]


def test_ranks_partition_the_global_stream():
    full = _take(RatioSampler([4, 9], seed=3), 120)
    r0 = _take(RatioSampler([4, 9], seed=3, rank=0, world_size=3), 40)
    r1 = _take(RatioSampler([4, 9], seed=3, rank=1, world_size=3), 40)
    r2 = _take(RatioSampler([4, 9], seed=3, rank=2, world_size=3), 40)
    assert sorted(r0 + r1 + r2) == full
    assert all(k % 3 == 1 for k, _ in r1)
    assert _take(RatioSampler([4, 9], seed=3, rank=1, world_size=3, start=30), 10) == [x for x in r1 if x[0] >= 30][:10]


def test_ratios_and_epochs():
    sizes = [10, 100, 30]
    s = RatioSampler(sizes, ratios=[1, 1, 2], seed=0)
    idx = np.array([i for _, i in _take(s, 8000)])
    src = np.searchsorted(s.offsets, idx, side="right") - 1
    share = np.bincount(src, minlength=3) / len(src)
    np.testing.assert_allclose(share, [0.25, 0.25, 0.5], atol=0.02)
    # within one source epoch every record appears exactly once
    first_epoch = idx[src == 0][:10]
    assert sorted(first_epoch.tolist()) == list(range(10))
    # proportional by default: uniform over all 140 records
    s = RatioSampler(sizes, seed=0)
    src = np.searchsorted(s.offsets, np.array([i for _, i in _take(s, 14000)]), side="right") - 1
    np.testing.assert_allclose(np.bincount(src) / 14000, np.array(sizes) / 140, atol=0.02)


def test_bad_sizes_and_ratios():
    with pytest.raises(ValueError, match="at least one record"):
        RatioSampler([3, 0])
    with pytest.raises(ValueError, match="do not fit"):
        RatioSampler([3, 4], ratios=[1.0])
