#!/usr/bin/env python
"""
Load every requested dataset split, print its counts next to the published ones, and fail on
anything wrong.

    python tools/check_datasets.py                      # every split, under $HPPS_DATASETS
    python tools/check_datasets.py --only prw_ msmt17_  # splits starting with prw_ or msmt17_
    python tools/check_datasets.py --only prw_ --decode # also decode every image (4 workers)
    python tools/check_datasets.py --prefix synth_      # the synthetic world
    python tools/check_datasets.py --prefix synth_ --expected datasets/synth/manifest.json

Every split selected by --only (all splits without it) is requested. The exit status is 1, with
one whole line per problem after the table, when a requested split is missing (MISSING), fails
to load (ERROR), loads 0 records (EMPTY), has other counts than the manifest given by --expected
(MISMATCH), or, with --decode, holds an image the training reader cannot read (UNREADABLE) or
that decodes at another size than its record says (MIS-SIZED).
"""
import argparse
import json
import logging
import sys
import time

from tabulate import tabulate

import hpps_d2  # noqa: F401  (registers the datasets)
from detectron2.data import DatasetCatalog, MetadataCatalog
from hpps_d2.data.check import count_images, decode_splits, default_workers
from hpps_d2.data.datasets import ALL_SPLITS, DatasetNotFoundError
from hpps_d2.data.datasets.stats import COUNT_KEYS, split_counts


def _n(count, word):
    return f"{count} {word}" + ("" if count == 1 else "s")


def _parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prefix", default="", help="catalog prefix, e.g. synth_")
    parser.add_argument(
        "--only", nargs="+", default=[""], metavar="START",
        help="check only splits whose name starts with one of these (e.g. prw_ msmt17_train)",
    )
    parser.add_argument("--expected", default="", help="manifest.json of the synthetic world")
    parser.add_argument(
        "--decode", action="store_true",
        help="decode every image of every requested split with the training reader",
    )
    parser.add_argument(
        "--workers", type=int, default=default_workers(),
        help="processes decoding images (default: min(4, CPU cores))",
    )
    return parser


def _load(name, spec, expected, problems):
    """The split's records and its table row; appends its problem lines."""
    meta = MetadataCatalog.get(name)
    blank = [""] * len(COUNT_KEYS)
    try:
        records = DatasetCatalog.get(name)
    except DatasetNotFoundError as e:
        problems.append(f"MISSING {name}: {e}")
        return None, [name, "missing"] + blank
    except Exception as e:  # report every broken split, not only the first
        problems.append(f"ERROR {name}: {type(e).__name__}: {e}")
        return None, [name, "ERROR"] + blank
    counts = split_counts(records)
    published = meta.published
    if expected:
        want = expected.get(spec.name, {})
        wrong = [k for k in COUNT_KEYS if want.get(k) != counts[k]]
        problems += [
            f"MISMATCH {name}: {k} {counts[k]}, the generator wrote {want.get(k)}" for k in wrong
        ]
        shown = ["-" if counts[k] is None else str(counts[k]) for k in COUNT_KEYS]
        status = "MISMATCH" if wrong else "ok"
    else:
        shown = [
            "-"
            if counts[k] is None
            else f"{counts[k]}" + (f" ({published[k]})" if k in published else "")
            for k in COUNT_KEYS
        ]
        status = "ok"
    if not records:
        real = ""
        if "images" in published:
            real = f" (the real dataset has {published['images']} images)"
        problems.append(f"EMPTY {name}: loaded 0 records from {meta.dataset_dir}{real}")
        status = "EMPTY"
    return records, [name, status] + shown


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    expected = {}
    if args.expected:
        try:
            with open(args.expected, encoding="utf-8") as f:
                expected = json.load(f)["splits"]
        except OSError as e:
            parser.error(f"--expected {args.expected}: {e.strerror}")
        except (ValueError, KeyError, TypeError):
            parser.error(
                f"--expected {args.expected}: not a JSON manifest with a 'splits' object "
                "(tools/make_synth_data.py writes one as <out>/manifest.json)"
            )
        if not isinstance(expected, dict):
            parser.error(f"--expected {args.expected}: not a JSON manifest with a 'splits' object")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    problems = [
        f"ERROR --only {start!r}: no registered split starts with {start!r}"
        for start in args.only
        if not any(spec.name.startswith(start) for spec in ALL_SPLITS)
    ]
    rows, loaded = [], []
    for spec in ALL_SPLITS:
        if not any(spec.name.startswith(start) for start in args.only):
            continue
        name = args.prefix + spec.name
        records, row = _load(name, spec, expected, problems)
        rows.append(row)
        if records:
            loaded.append((name, records, row))

    decoded = None
    if args.decode:
        start = time.perf_counter()
        n_images = sum(count_images(records) for _, records, _ in loaded)
        bad = decode_splits(
            {name: records for name, records, _ in loaded},
            workers=args.workers,
            progress=sys.stderr.isatty(),
        )
        problems += [str(p) for p in bad]
        for name, _, row in loaded:
            n_bad = sum(p.split == name for p in bad)
            if n_bad and row[1] == "ok":
                row[1] = _n(n_bad, "bad image")
        decoded = (
            f"decoded {_n(n_images, 'image')} of {_n(len(loaded), 'split')} in "
            f"{time.perf_counter() - start:.1f} s ({_n(args.workers, 'worker')}): "
            f"{_n(len(bad), 'problem')}"
        )

    print(tabulate(rows, headers=["split", "status", *COUNT_KEYS], tablefmt="github"))
    if expected:
        print(f"counts compared with {args.expected}")
    else:
        print("(published counts of the real dataset in parentheses; docs/datasets.md)")
    for line in problems:
        print(line)
    if decoded:
        print(decoded)
    if problems:
        print(f"FAILED: {_n(len(problems), 'problem')}, one line each above")
        if any(line.startswith("MISSING") for line in problems) and args.only == [""]:
            print("(to check only the datasets in place, name them: --only prw_ cuhk_sysu_ ...)")
        return 1
    print(f"all {_n(len(rows), 'requested split')} ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
