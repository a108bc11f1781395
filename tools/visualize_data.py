#!/usr/bin/env python
"""
Write PNGs of dataset records with their boxes and identities, and of unified two-view inputs.

    python tools/visualize_data.py --dataset synth_prw_train --out vis/ --num 4
    python tools/visualize_data.py --dataset synth_msmt17_train --unified --out vis/

Each picture has a legend strip at the bottom naming the colours: labeled person (green, its id),
unlabeled person (orange-yellow, "?"), ignore region (magenta, dashed and hatched).
With --unified, the records go through data unification (global/pseudo identities) and the hybrid
mapper (canvas for re-ID crops, two augmented views), as in pre-training.
"""
import argparse
import os

import cv2
import numpy as np

import hpps_d2  # noqa: F401  (registers the datasets)
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from hpps_d2.config import add_hpps_config
from hpps_d2.data.hybrid_mapper import HybridDatasetMapper
from hpps_d2.data.image_io import read_image
from hpps_d2.data.unify import unify
from hpps_d2.utils.visualize import add_legend, draw_record, draw_views, side_by_side


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", required=True, help="catalog name, e.g. synth_prw_train")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num", type=int, default=4, help="number of records to draw")
    p.add_argument("--unified", action="store_true", help="draw unified two-view inputs")
    p.add_argument("--config-file", default="", help="config for the mapper (default: built-in defaults)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    cfg = get_cfg()
    add_hpps_config(cfg)
    if args.config_file:
        cfg.merge_from_file(args.config_file)
    os.makedirs(args.out, exist_ok=True)
    records = DatasetCatalog.get(args.dataset)
    rng = np.random.default_rng(args.seed)
    picks = sorted(rng.choice(len(records), size=min(args.num, len(records)), replace=False).tolist())
    written = []
    if args.unified:
        meta = MetadataCatalog.get(args.dataset)
        records = unify([(args.dataset, records, meta.task, meta.labeled)]).records
        np.random.seed(args.seed)
        mapper = HybridDatasetMapper(cfg)
    for i in picks:
        r = records[i]
        if args.unified:
            picture = add_legend(side_by_side(draw_views(mapper(r), cfg.INPUT.FORMAT)))
            name = f"{args.dataset}_{i:05d}_views.png"
        else:  # draw_record adds the legend strip itself
            picture = draw_record(r, read_image(r, cfg.INPUT.FORMAT), cfg.INPUT.FORMAT)
            name = f"{args.dataset}_{i:05d}.png"
        path = os.path.join(args.out, name)
        cv2.imwrite(path, picture[:, :, ::-1])
        written.append(path)
    print("\n".join(written))


if __name__ == "__main__":
    main()
