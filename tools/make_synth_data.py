#!/usr/bin/env python
"""
Write the synthetic world: every dataset of the paper in its real on-disk format.

    python tools/make_synth_data.py --out datasets/synth [--seed 0] [--scale 1.0] [--noise 1] ...

The datasets are registered from ``$HPPS_DATASETS/synth`` with the prefix ``synth_`` (see
``hpps_d2/data/datasets/builtin.py``). See ``docs/synthetic_world.md`` for what is drawn and why.
"""

import argparse
import dataclasses
import time

from hpps_d2.synth import Knobs, generate_world
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
    for f in dataclasses.fields(Knobs):
        p.add_argument(
            f"--{f.name.replace('_', '-')}",
            dest=f.name,
            type=float,
            default=f.default,
            help=f"{f.metadata['help']} (default: {f.default})",
        )
    return p.parse_args(argv)


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
        args.out, seed=args.seed, scale=args.scale, datasets=datasets, workers=args.workers, **knobs
    )
    elapsed = time.perf_counter() - t
    print(summary(manifest))
    per = ", ".join(f"{k} {v:.1f}s" for k, v in manifest["seconds"].items())
    print(f"\nwrote {args.out} (seed {args.seed}, scale {args.scale}) in {elapsed:.1f} s [{per}]")
    return manifest


if __name__ == "__main__":
    main()
