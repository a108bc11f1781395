#!/usr/bin/env python
"""
Search mAP / top-k of a colour-histogram feature on the ground-truth boxes of a PRW-style split:
how hard the synthetic world is for re-ID before any model is trained on it (a calibration
instrument; logic in hpps_d2/synth/difficulty.py). Calibrate on the validation split, never on
the test split:

    python tools/world_difficulty.py                                  # synth_prw_val_query
    HPPS_DATASETS=/tmp/world python tools/world_difficulty.py --query synth_prw_val_query
"""
import argparse
import json

import hpps_d2  # noqa: F401  (registers the datasets)
from detectron2.data import DatasetCatalog, MetadataCatalog

from hpps_d2.synth.difficulty import histogram_search


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--query", default="synth_prw_val_query", help="a PRW-style query split (its gallery from the metadata)")
    args = p.parse_args(argv)
    gallery = MetadataCatalog.get(args.query).get("gallery", None)
    if gallery is None:
        p.error(f"{args.query!r} is not a query split with a registered gallery")
    result = histogram_search(DatasetCatalog.get(args.query), DatasetCatalog.get(gallery))
    print(json.dumps({mode: {k: round(v, 2) for k, v in m.items()} for mode, m in result.items()}))
    return result


if __name__ == "__main__":
    main()
