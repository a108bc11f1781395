"""
Orchestration: write every dataset of the world and its ``manifest.json``.

The datasets are independent (each has its own identity pool and random generators), so they
are written by a pool of worker processes without changing a single byte of the output.
"""

import json
import multiprocessing
import os
import shutil
import time
from typing import Dict, Iterable, Optional

import cv2

from .config import Knobs, WorldConfig
from .identity import POOLS, PRETRAIN_POOLS, SEARCH_POOLS, IdentityBank
from .writers import WRITERS

__all__ = ["generate_world", "GENERATOR", "MANIFEST", "IDENTITIES"]

GENERATOR = "hpps_d2.synth"
MANIFEST = "manifest.json"
IDENTITIES = "identities.json"
FORMAT_VERSION = 1


def _top(subdir: str) -> str:
    return subdir.split(os.sep)[0].split("/")[0]


def _read_manifest(out_dir: str) -> Optional[dict]:
    path = os.path.join(out_dir, MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        m = json.load(f)
    return m if m.get("generator") == GENERATOR else None


def _prepare(out_dir: str, names: Iterable[str]) -> Optional[dict]:
    """Clear the folders about to be written; refuse folders this generator did not make."""
    old = _read_manifest(out_dir)
    for name in names:
        path = os.path.join(out_dir, _top(WRITERS[name].SUBDIR))
        if os.path.isdir(path) and os.listdir(path):
            if old is None:
                raise FileExistsError(
                    f"'{path}' exists and is not part of a synthetic world (no {MANIFEST} written "
                    f"by {GENERATOR} in '{out_dir}'); refusing to overwrite it."
                )
            shutil.rmtree(path)
    return old


def _run(name: str, out_dir: str, cfg: WorldConfig) -> dict:
    cv2.setNumThreads(1)
    t = time.perf_counter()
    bank = IdentityBank(cfg.seed)
    result = WRITERS[name].write(out_dir, cfg, bank)
    result["seconds"] = time.perf_counter() - t
    result.setdefault("identities", {})["used"] = {
        p: sorted(c) for p, c in sorted(bank.used.items())
    }
    return result


def generate_world(
    out_dir: str,
    seed: int = 0,
    scale: float = 1.0,
    datasets: Optional[Iterable[str]] = None,
    workers: int = 2,
    sizes: Optional[dict] = None,
    **knobs,
) -> dict:
    """
    Write the synthetic world under ``out_dir``.

    Args:
        out_dir: world root; datasets go to the same sub-folders as the real ones
            (``CrowdHuman/``, ``ECP/``, ``msmt17/``, ``cuhk03/``, ``luperson/``, ``PRW/``,
            ``CUHK-SYSU/``, ``PoseTrack21/``).
        seed: world seed; the same seed, scale and knobs give byte-identical files.
        scale: multiplies every dataset size (see :data:`~.config.SIZES`).
        datasets: names among :data:`~.writers.WRITERS` (default: all). When a subset is
            regenerated with unchanged settings, the other datasets' manifest entries are kept;
            with changed settings the manifest lists only the datasets just written (``sizes``
            are per dataset: a dataset not rewritten keeps the sizes it was written with).
        workers: processes writing datasets in parallel (does not change the output).
        sizes: per-dataset size overrides ``{dataset: {key: value}}``
            (:func:`~.config.parse_size_overrides`), recorded in the manifest.
        **knobs: difficulty knobs, fields of :class:`~.config.Knobs`.

    Returns:
        dict: the manifest as written to ``out_dir/manifest.json``, plus ``"seconds"`` (wall time
        per dataset, not written, since it would break byte-identity).
    """
    cfg = WorldConfig(seed=int(seed), scale=float(scale), knobs=Knobs(**knobs), sizes=sizes or {})
    names = list(WRITERS) if datasets is None else [n for n in WRITERS if n in set(datasets)]
    unknown = set(datasets or ()) - set(WRITERS)
    if unknown:
        raise ValueError(f"unknown datasets {sorted(unknown)}; choose among {list(WRITERS)}")
    unwritten = sorted(set(cfg.sizes) - set(names))
    if unwritten:
        raise ValueError(f"sizes given for {unwritten}, which are not written (datasets: {names})")
    os.makedirs(out_dir, exist_ok=True)
    old = _prepare(out_dir, names)
    if workers > 1 and len(names) > 1:
        # "spawn", not "fork": a forked child of a process whose thread pools already run (torch,
        # OpenCV; e.g. inside a test session) can deadlock on a lock copied in the held state.
        with multiprocessing.get_context("spawn").Pool(min(workers, len(names))) as pool:
            results = pool.starmap(_run, [(n, out_dir, cfg) for n in names])
    else:
        results = [_run(n, out_dir, cfg) for n in names]
    by_name: Dict[str, dict] = dict(zip(names, results))
    settings = cfg.to_dict()
    # Sizes are per dataset: a dataset not rewritten keeps its entry and the sizes it was
    # written with.
    if old is not None and all(old.get(k) == v for k, v in settings.items() if k != "sizes"):
        kept = {
            n: old["datasets"][n]
            for n in old.get("datasets", {})
            if n not in by_name and n in WRITERS
        }
    else:
        kept = {}
    datasets_out = {
        **kept,
        **{
            n: {"subdir": WRITERS[n].SUBDIR, "splits": r["splits"], "detail": r.get("detail", {})}
            for n, r in by_name.items()
        },
    }
    # identity pools first, then datasets without people (the ImageNet stand-in)
    order = POOLS + tuple(n for n in WRITERS if n not in POOLS)
    datasets_out = {n: datasets_out[n] for n in order if n in datasets_out}
    old_sizes = (old or {}).get("sizes", {})
    written_with = {
        n: (settings["sizes"] if n in by_name else old_sizes).get(n) for n in datasets_out
    }
    settings["sizes"] = {n: v for n, v in written_with.items() if v}
    manifest = {
        "generator": GENERATOR,
        "format_version": FORMAT_VERSION,
        **settings,
        "datasets": datasets_out,
        "splits": {k: v for d in datasets_out.values() for k, v in d["splits"].items()},
        "identity_partition": {"pretrain": list(PRETRAIN_POOLS), "search": list(SEARCH_POOLS)},
    }
    with open(os.path.join(out_dir, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    ids_path = os.path.join(out_dir, IDENTITIES)
    ids = {}
    if kept and os.path.isfile(ids_path):
        with open(ids_path, encoding="utf-8") as f:
            ids = {k: v for k, v in json.load(f).items() if k in kept}
    ids.update({n: r["identities"] for n, r in by_name.items()})
    with open(ids_path, "w", encoding="utf-8") as f:
        json.dump({n: ids[n] for n in POOLS if n in ids}, f, sort_keys=True)
        f.write("\n")
    return {**manifest, "seconds": {n: round(r["seconds"], 2) for n, r in by_name.items()}}
