#!/usr/bin/env python
"""
Rerun the paper's experiments on the synthetic world and write results/README.md with tables and
PNG plots (see hpps_d2/engine/study.py for what each part runs). Resumable: finished runs are
reused.

    python tools/run_study.py --out results/                       # every part, ShuffleNet, 2 seeds
    python tools/run_study.py --out results/ --parts tab1 --backbones shufflenet,r18,r50
    python tools/run_study.py --out results/ --parts fig5,fig6 --fractions 0.2,1 --fig6-datasets 2,5
    python tools/run_study.py --out results/ --report-only          # tables from finished runs
"""
import argparse
import json
import logging
import os

from hpps_d2.engine.study import DATASETS, FRACTIONS, PARTS, execute, plan, write_report


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default="results", help="report, plots and results.json (committed)")
    p.add_argument("--work", default="output/study", help="runs: checkpoints and logs (not committed)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    p.add_argument("--backbones", default="shufflenet", help="for tab1: shufflenet,r18,r50")
    p.add_argument("--seeds", type=int, default=2, help="fine-tuning seeds per arm")
    p.add_argument("--fractions", default=",".join(map(str, FRACTIONS)), help="fig5: fractions of the target training images")
    p.add_argument("--fig6-datasets", default=",".join(str(k) for k in range(2, len(DATASETS) + 1)), help="fig6: numbers of pre-training datasets")
    p.add_argument("--report-only", action="store_true", help="only rewrite the report")
    p.add_argument("--list", action="store_true", help="print the runs and exit")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    fractions = [float(f) for f in args.fractions.split(",")]
    counts = [int(k) for k in args.fig6_datasets.split(",")]
    runs = plan(args.parts.split(","), args.backbones.split(","), args.seeds, fractions, counts)
    if args.list:
        print("\n".join(f"{r.kind:9s} {r.key}" for r in runs))
        return
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "results.json")
    if args.report_only:
        with open(path, encoding="utf-8") as f:
            results = json.load(f)
    else:
        results = execute(runs, args.out, args.work)
    notes_path = os.path.join(args.out, "notes.md")
    notes = open(notes_path, encoding="utf-8").read() if os.path.exists(notes_path) else ""
    print(f"wrote {write_report(results, args.out, args.seeds, notes)}")


if __name__ == "__main__":
    main()
