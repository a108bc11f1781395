#!/usr/bin/env python
"""
Load every registered dataset split that exists under the datasets root and print its counts next
to the counts published for the real dataset (docs/datasets.md).

    python tools/check_datasets.py                 # real datasets under $HPPS_DATASETS
    python tools/check_datasets.py --prefix synth_ # the synthetic world
    python tools/check_datasets.py --only prw_     # splits whose name starts with prw_
    python tools/check_datasets.py --prefix synth_ --expected datasets/synth/manifest.json

With --expected (the synthetic world's manifest), every count must equal what the generator wrote;
the exit status is 1 otherwise.
"""
import argparse
import json
import logging
import sys

from tabulate import tabulate

import hpps_d2  # noqa: F401  (registers the datasets)
from detectron2.data import DatasetCatalog, MetadataCatalog
from hpps_d2.data.datasets import ALL_SPLITS, DatasetNotFoundError
from hpps_d2.data.datasets.stats import COUNT_KEYS, split_counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--prefix", default="", help="catalog prefix, e.g. synth_")
    parser.add_argument("--only", default="", help="check only splits whose name starts with this")
    parser.add_argument("--expected", default="", help="manifest.json of the synthetic world")
    args = parser.parse_args(argv)
    expected = {}
    if args.expected:
        with open(args.expected, encoding="utf-8") as f:
            expected = json.load(f)["splits"]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    rows, failed = [], 0
    for spec in ALL_SPLITS:
        if not spec.name.startswith(args.only):
            continue
        name = args.prefix + spec.name
        try:
            counts = split_counts(DatasetCatalog.get(name))
        except DatasetNotFoundError as e:
            rows.append([name, "missing"] + [""] * len(COUNT_KEYS) + [str(e).split(": expected ")[-1][:60]])
            continue
        except Exception as e:  # report every broken split, not only the first
            failed += 1
            rows.append([name, "ERROR"] + [""] * len(COUNT_KEYS) + [f"{type(e).__name__}: {e}"[:120]])
            continue
        if expected:
            want = expected.get(spec.name, {})
            wrong = [k for k in COUNT_KEYS if want.get(k) != counts[k]]
            failed += bool(wrong)
            shown = ["-" if counts[k] is None else str(counts[k]) for k in COUNT_KEYS]
            note = "" if not wrong else "MISMATCH " + ", ".join(f"{k}: wrote {want.get(k)}" for k in wrong)
            rows.append([name, "ok" if not wrong else "MISMATCH"] + shown + [note])
            continue
        published = MetadataCatalog.get(name).published
        shown = [
            "-" if counts[k] is None else f"{counts[k]}" + (f" ({published[k]})" if k in published else "")
            for k in COUNT_KEYS
        ]
        rows.append([name, "ok"] + shown + [""])
    print(tabulate(rows, headers=["split", "status", *COUNT_KEYS, "note"], tablefmt="github"))
    if expected:
        print(f"counts compared with {args.expected}: {'all equal' if not failed else f'{failed} splits differ'}")
    else:
        print("(published counts of the real dataset in parentheses; docs/datasets.md)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
