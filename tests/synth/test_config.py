"""Sizes scale up with --scale and never fall below the minimums that keep formats valid."""

import dataclasses
import re

import pytest

from hpps_d2.synth.config import MINIMUM_SIZES, SIZES, Knobs, WorldConfig, parse_size_overrides


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


def test_size_overrides_are_absolute_and_checked():
    sizes = parse_size_overrides(["prw.train_ids=200", "prw.train_frames=1000"])
    cfg = WorldConfig(scale=0.1, sizes=sizes)
    assert cfg.size("prw", "train_ids") == 200 and cfg.size("prw", "train_frames") == 1000
    assert cfg.size("prw", "test_ids") == max(5, MINIMUM_SIZES["prw"]["test_ids"])  # 50 * 0.1
    assert cfg.factor("prw", "frame_scale") == 1.0
    assert WorldConfig(sizes={"prw": {"frame_scale": 0.5}}).factor("prw", "frame_scale") == 0.5
    assert cfg.to_dict()["sizes"] == {"prw": {"train_frames": 1000, "train_ids": 200}}
    assert WorldConfig().to_dict()["sizes"] == {}
    # later items win
    later = parse_size_overrides(["prw.train_ids=9", "prw.train_ids=12"])
    assert later == {"prw": {"train_ids": 12}}


@pytest.mark.parametrize(
    "item, message",
    [
        ("prw.train_ids=3", "prw.train_ids must be at least 4 (MINIMUM_SIZES"),
        ("prw.train_ids=20.5", "prw.train_ids must be an integer, got 20.5"),
        ("prw.train_ids=many", "prw.train_ids must be a number, got 'many'"),
        ("prw.train_idz=20", "unknown key 'train_idz' of prw; expected one of ['frame_scale'"),
        ("prv.train_ids=20", "unknown dataset 'prv'; expected one of ["),
        ("prw.frame_scale=0.1", "prw.frame_scale must be in [0.25, 4.0], got 0.1"),
        ("prw.train_ids", "expected <dataset>.<key>=<value>"),
        ("train_ids=20", "expected <dataset>.<key>=<value>"),
    ],
)
def test_bad_size_overrides_are_clear_errors(item, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_size_overrides([item])


def test_world_config_checks_overrides_given_directly():
    with pytest.raises(ValueError, match="at least 12"):
        WorldConfig(sizes={"prw": {"train_frames": 5}})
