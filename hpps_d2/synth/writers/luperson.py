"""
LUPerson-like unlabeled crops (and the same crops in LUPerson-NL's form, see :func:`write`): ``luperson/lmdb/`` (an LMDB environment whose values are the JPEG
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


def _write_lmdb(folder: str, records: dict, keys_pkl) -> None:
    """``folder/lmdb`` (the values of ``records`` under its keys, in sorted order, one
    transaction) and ``folder/keys.pkl`` (``keys_pkl`` pickled)."""
    os.makedirs(os.path.join(folder, "lmdb"), exist_ok=True)
    total = sum(len(v) for v in records.values())
    env = lmdb.open(
        os.path.join(folder, "lmdb"), map_size=max(1 << 26, 4 * total), lock=False, subdir=True
    )
    with env.begin(write=True) as txn:
        for k in sorted(records):
            txn.put(k.encode("ascii"), records[k])
    env.close()
    write_bytes(os.path.join(folder, "keys.pkl"), pickle.dumps(keys_pkl, protocol=4))


def write(root: str, cfg, bank) -> dict:
    """
    Write ``<root>/luperson`` and, with the same crops, ``<root>/luperson_nl`` in LUPerson-NL's
    form (keys ``{video:05d}_{track:06d}_{frame:07d}_{obj:02d}.jpg`` and a ``keys.pkl`` dict
    ``{"keys", "pids"}``, as LUP-NL's ``convert_lmdb.py`` writes; the track id is the person's
    index in the pool); returns the manifest entries ``luperson_30k``, ``luperson_all`` and
    ``luperson_nl_all``.
    """
    out = os.path.join(root, SUBDIR)
    style = STYLES["luperson"]
    n_ids = cfg.size("luperson", "ids")
    records, nl_records, nl_pids = {}, {}, {}
    pid, video = 0, 0
    while pid < n_ids:
        rng = cfg.rng("luperson", video)
        country, city = video % 7, (video // 7) % 5
        look = camera_looks(style, 1, rng, cfg.knobs.camera_shift)[0]
        quality = int(rng.integers(70, 96))
        n_here = min(int(rng.integers(3, 9)), n_ids - pid)
        people = bank.take("luperson", pid, n_here)
        image = 0
        for j, identity in enumerate(people):
            for _ in range(int(rng.integers(1, 4))):
                shot = render_context(
                    rng, identity, style, look, float(rng.uniform(64, 160)), cfg.knobs, people
                )
                crop = cut(shot, rng, margin=(0.02, 0.15), jitter=0.05)
                image += int(rng.integers(1, 200))
                key = f"{country:02d}_{city:02d}_{video:04d}_{image:08d}"
                records[key] = encode_image(crop, ".jpg", quality)
                nl_key = f"{video:05d}_{pid + j:06d}_{image:07d}_00.jpg"
                nl_records[nl_key], nl_pids[nl_key] = records[key], pid + j
        pid += n_here
        video += 1
    keys = sorted(records)
    _write_lmdb(out, records, keys)
    nl_keys = sorted(nl_records)
    _write_lmdb(os.path.join(root, "luperson_nl"), nl_records, {"keys": nl_keys, "pids": [nl_pids[k] for k in nl_keys]})
    counts = split_counts(len(keys), None, 0)
    return {
        # every key: the world holds fewer than 30,000, so the 30k sample is the whole set too
        "splits": {name: dict(counts) for name in ("luperson_30k", "luperson_all", "luperson_nl_all")},
        "detail": {"videos": video, "source_identities": n_ids},
        "identities": {"all": [bank.get("luperson", i).combo for i in range(n_ids)]},
    }
