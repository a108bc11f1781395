"""Sizes scale up with --scale and never fall below the minimums that keep formats valid."""

import dataclasses

from hpps_d2.synth.config import MINIMUM_SIZES, SIZES, Knobs, WorldConfig


def test_sizes_grow_with_scale_and_respect_minimums():
    small, one, big = WorldConfig(scale=0.01), WorldConfig(scale=1.0), WorldConfig(scale=3.0)
    for dataset, sizes in SIZES.items():
        for key, n in sizes.items():
            assert small.size(dataset, key) == MINIMUM_SIZES[dataset][key]
            assert one.size(dataset, key) == max(n, MINIMUM_SIZES[dataset][key])
            assert big.size(dataset, key) >= one.size(dataset, key)


def test_every_knob_has_help_and_a_default():
    for f in dataclasses.fields(Knobs):
        assert f.metadata["help"] and isinstance(f.default, float)


def test_generators_are_private_per_dataset():
    cfg = WorldConfig(seed=3)
    assert cfg.rng("prw", 0, 1).random() == WorldConfig(seed=3).rng("prw", 0, 1).random()
    assert cfg.rng("prw", 0, 1).random() != cfg.rng("cuhk_sysu", 0, 1).random()
