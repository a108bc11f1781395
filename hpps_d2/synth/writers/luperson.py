"""
LUPerson-like unlabeled crops: ``luperson/lmdb/`` (an LMDB environment whose values are the JPEG
bytes of person crops) and ``luperson/keys.pkl`` (a plain pickled list of key strings
``{country:02d}_{city:02d}_{video:04d}_{image:08d}``, as LUPerson's ``convert_lmdb.py`` writes).

Crops come from "street videos" in many cities: each video has its own look and JPEG quality
and shows 3-8 identities of the LUPerson pool, each cut 1-3 times at arbitrary sizes (persons
64-160 pixels tall). Keys are written in sorted order, in one transaction, so the LMDB file is
byte-identical for the same seed.
"""

import os
import pickle

import lmdb

from ..crops import cut, render_context
from ..styles import STYLES, camera_looks, encode_image
from .common import split_counts, write_bytes

__all__ = ["write"]

SUBDIR = "luperson"


def write(root: str, cfg, bank) -> dict:
    """Write ``<root>/luperson``; returns the manifest entries ``luperson_30k`` and ``luperson_all``."""
    out = os.path.join(root, SUBDIR)
    style = STYLES["luperson"]
    n_ids = cfg.size("luperson", "ids")
    records = {}
    pid, video = 0, 0
    while pid < n_ids:
        rng = cfg.rng("luperson", video)
        country, city = video % 7, (video // 7) % 5
        look = camera_looks(style, 1, rng, cfg.knobs.camera_shift)[0]
        quality = int(rng.integers(70, 96))
        n_here = min(int(rng.integers(3, 9)), n_ids - pid)
        people = bank.take("luperson", pid, n_here)
        image = 0
        for identity in people:
            for _ in range(int(rng.integers(1, 4))):
                shot = render_context(
                    rng, identity, style, look, float(rng.uniform(64, 160)), cfg.knobs, people
                )
                crop = cut(shot, rng, margin=(0.02, 0.15), jitter=0.05)
                image += int(rng.integers(1, 200))
                key = f"{country:02d}_{city:02d}_{video:04d}_{image:08d}"
                records[key] = encode_image(crop, ".jpg", quality)
        pid += n_here
        video += 1
    keys = sorted(records)
    os.makedirs(os.path.join(out, "lmdb"), exist_ok=True)
    total = sum(len(v) for v in records.values())
    env = lmdb.open(
        os.path.join(out, "lmdb"), map_size=max(1 << 26, 4 * total), lock=False, subdir=True
    )
    with env.begin(write=True) as txn:
        for k in keys:
            txn.put(k.encode("ascii"), records[k])
    env.close()
    write_bytes(os.path.join(out, "keys.pkl"), pickle.dumps(keys, protocol=4))
    return {
        # every key: the world holds fewer than 30,000, so the 30k sample is the whole set too
        "splits": {name: split_counts(len(keys), None, 0) for name in ("luperson_30k", "luperson_all")},
        "detail": {"videos": video, "source_identities": n_ids},
        "identities": {"all": [bank.get("luperson", i).combo for i in range(n_ids)]},
    }
