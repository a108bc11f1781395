#!/usr/bin/env python
"""
Write the synthetic world: every dataset of the paper in its real on-disk format.

    python tools/make_synth_data.py --out datasets/synth [--seed 0] [--scale 1.0] [--noise 1] ...
    python tools/make_synth_data.py --datasets prw --size prw.train_ids=200 \
        --size prw.train_frames=1000 --size prw.frame_scale=0.5

``--size <dataset>.<key>=<value>`` (repeatable) sets one size of ``hpps_d2.synth.config.SIZES``
to the value itself (not multiplied by ``--scale``), or one lever of ``FACTORS``; it is recorded
in ``manifest.json``.

The datasets are registered from ``$HPPS_DATASETS/synth`` with the prefix ``synth_`` (see
``hpps_d2/data/datasets/builtin.py``). See ``docs/synthetic_world.md`` for what is drawn and why.
"""

import argparse
import dataclasses
import time

from hpps_d2.synth import Knobs, generate_world
from hpps_d2.synth.config import FACTORS, SIZES, parse_size_overrides
from hpps_d2.synth.writers import WRITERS

COLUMNS = ("images", "boxes", "ignore", "identities", "queries")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default="datasets/synth", help="world root (default: datasets/synth)")
    p.add_argument("--seed", type=int, default=0, help="world seed (default: 0)")
    p.add_argument(
        "--scale", type=float, default=1.0, help="multiplies every dataset size (default: 1.0)"
    )
    p.add_argument(
        "--datasets", default=None, help=f"comma-separated subset of {','.join(WRITERS)}"
    )
    p.add_argument("--workers", type=int, default=2, help="parallel processes (default: 2)")
    keys = [f"{d}.{k}" for table in (SIZES, FACTORS) for d in table for k in table[d]]
    p.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="DATASET.KEY=VALUE",
        help="override one dataset size (an integer, not multiplied by --scale) or lever; "
        f"repeatable; keys: {', '.join(keys)}",
    )
    for f in dataclasses.fields(Knobs):
        p.add_argument(
            f"--{f.name.replace('_', '-')}",
            dest=f.name,
            type=float,
            default=f.default,
            help=f"{f.metadata['help']} (default: {f.default})",
        )
    args = p.parse_args(argv)
    try:
        args.sizes = parse_size_overrides(args.size)
    except ValueError as e:
        p.error(f"--size: {e}")
    if args.datasets:
        unwritten = sorted(set(args.sizes) - set(args.datasets.split(",")))
        if unwritten:
            p.error(f"--size: sizes given for {unwritten}, not in --datasets {args.datasets}")
    return args


def summary(manifest: dict) -> str:
    """A fixed-width table of the manifest's split counts."""
    width = max(len(k) for k in manifest["splits"]) + 2
    lines = ["split".ljust(width) + "".join(c.rjust(11) for c in COLUMNS)]
    for name, counts in manifest["splits"].items():
        cells = ("-" if counts[c] is None else str(counts[c]) for c in COLUMNS)
        lines.append(name.ljust(width) + "".join(c.rjust(11) for c in cells))
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    knobs = {f.name: getattr(args, f.name) for f in dataclasses.fields(Knobs)}
    datasets = args.datasets.split(",") if args.datasets else None
    t = time.perf_counter()
    manifest = generate_world(
        args.out,
        seed=args.seed,
        scale=args.scale,
        datasets=datasets,
        workers=args.workers,
        sizes=args.sizes,
        **knobs,
    )
    elapsed = time.perf_counter() - t
    print(summary(manifest))
    per = ", ".join(f"{k} {v:.1f}s" for k, v in manifest["seconds"].items())
    sizes = "".join(f", {d}.{k}={v}" for d, kv in args.sizes.items() for k, v in kv.items())
    settings = f"seed {args.seed}, scale {args.scale}{sizes}"
    print(f"\nwrote {args.out} ({settings}) in {elapsed:.1f} s [{per}]")
    return manifest


if __name__ == "__main__":
    main()
