"""Identities are attribute combinations; pre-training and search identities are disjoint."""

import json
import os

import numpy as np

from hpps_d2.synth.identity import (
    ATTRIBUTES,
    NUM_COMBINATIONS,
    POOLS,
    PRETRAIN_POOLS,
    SEARCH_POOLS,
    Identity,
    IdentityBank,
)


def _used(world) -> dict:
    root, _ = world
    with open(os.path.join(root, "identities.json"), encoding="utf-8") as f:
        ids = json.load(f)
    assert sorted(ids) == sorted(POOLS)
    for name, entry in ids.items():  # each dataset draws only from its own pool
        assert list(entry["used"]) == [name]
    return {name: set(entry["used"][name]) for name, entry in ids.items()}


def test_pretrain_and_search_worlds_are_disjoint(world):
    used = _used(world)
    pretrain = set().union(*(used[p] for p in PRETRAIN_POOLS))
    search = set().union(*(used[p] for p in SEARCH_POOLS))
    assert pretrain and search and not pretrain & search
    for i, a in enumerate(SEARCH_POOLS):
        for b in SEARCH_POOLS[i + 1 :]:
            assert not used[a] & used[b]


def test_splits_are_disjoint_within_datasets(world):
    root, _ = world
    with open(os.path.join(root, "identities.json"), encoding="utf-8") as f:
        ids = json.load(f)
    assert not set(ids["msmt17"]["train"]) & set(ids["msmt17"]["test"])
    for name in ("prw", "cuhk_sysu"):
        assert not set(ids[name]["train"]) & set(ids[name]["test"])
    assert not set(ids["posetrack21"]["train"]) & set(ids["posetrack21"]["val"])


def test_bank_pools_are_disjoint_and_seeded():
    bank = IdentityBank(0)
    seen = {}
    for pool in POOLS:
        for i in range(300):
            seen.setdefault(bank.get(pool, i).combo, set()).add(pool)
    assert all(len(p) == 1 for p in seen.values())
    assert [bank.get("prw", i).combo for i in range(5)] == [
        IdentityBank(0).get("prw", i).combo for i in range(5)
    ]
    assert [bank.get("prw", i).combo for i in range(5)] != [
        IdentityBank(1).get("prw", i).combo for i in range(5)
    ]


def test_attributes_are_a_combination():
    """Distinct combos differ in at least one attribute and every value is shared by many."""
    assert NUM_COMBINATIONS == int(np.prod([len(v) for _, v in ATTRIBUTES]))
    rng = np.random.default_rng(0)
    combos = rng.choice(NUM_COMBINATIONS, 2000, replace=False)
    decoded = {tuple(Identity(int(c)).attributes.values()) for c in combos}
    assert len(decoded) == len(combos)
    uppers = [Identity(int(c)).attributes["upper_colour"] for c in combos]
    assert max(uppers.count(u) for u in set(uppers)) < 0.2 * len(combos)
