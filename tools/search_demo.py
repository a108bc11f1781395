#!/usr/bin/env python
"""
Search one query person in a gallery and write one PNG: the query crop and the top-k gallery
images with the matched box and its similarity. Works on the CPU.

    python tools/search_demo.py --config-file configs/synth/finetune_prw_shufflenet.yaml \\
        MODEL.WEIGHTS output/synth/finetune_prw/model_final.pth \\
        --query datasets/synth/PRW/frames/c1s1_000100.jpg --box 10 20 60 150 \\
        --gallery synth_prw_gallery --topk 5 --out result.png

--gallery is a folder of images or a registered dataset. With a dataset whose records carry
annotations and --query-pid (the query's identity), a match is drawn green when it overlaps
(IoU >= 0.5) a box of that identity, red otherwise.
"""
import argparse
import os

import cv2

import hpps_d2  # noqa: F401  (registers datasets and models)
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from hpps_d2.config import add_hpps_config
from hpps_d2.data.image_io import read_image
from hpps_d2.engine.searcher import PersonSearcher, list_gallery_images
from hpps_d2.utils.visualize import draw_search_result


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config-file", required=True)
    p.add_argument("--query", required=True, help="query image file")
    p.add_argument("--box", nargs=4, type=float, required=True, metavar=("X1", "Y1", "X2", "Y2"))
    p.add_argument("--gallery", required=True, help="image folder or registered dataset name")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--det-thresh", type=float, default=0.5)
    p.add_argument("--max-gallery", type=int, default=0, help="search at most this many images (0: all)")
    p.add_argument("--query-pid", type=int, default=None, help="identity of the query, to mark matches")
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, e.g. MODEL.WEIGHTS w.pth")
    args = p.parse_args(argv)
    x1, y1, x2, y2 = args.box
    if not (x2 > x1 and y2 > y1):
        p.error(f"--box: expected X1 Y1 X2 Y2 with X2 > X1 and Y2 > Y1 (the query person's box), got {args.box}")

    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.MODEL.DEVICE = cfg.MODEL.DEVICE if cfg.MODEL.DEVICE != "cuda" or _cuda() else "cpu"
    cfg.freeze()
    searcher = PersonSearcher(cfg)
    fmt = cfg.INPUT.FORMAT

    query_img = read_image({"file_name": args.query}, fmt)
    query = searcher.embed_query(query_img, args.box)
    if os.path.isdir(args.gallery):
        records = [{"file_name": f, "image_id": os.path.basename(f)} for f in list_gallery_images(args.gallery)]
    else:
        records = DatasetCatalog.get(args.gallery)
    query_name = os.path.basename(args.query)
    records = [r for r in records if os.path.basename(r["file_name"]) != query_name]
    if args.max_gallery:
        records = records[: args.max_gallery]
    by_name = {r["image_id"]: r for r in records}
    matches = searcher.search(query, ((r["image_id"], read_image(r, fmt)) for r in records), args.det_thresh, args.topk)

    def rgb(img):
        return img[:, :, ::-1] if fmt == "BGR" else img

    panels = [
        (rgb(read_image(by_name[m.name], fmt)), m.box, m.similarity, _correct(by_name[m.name], m.box, args.query_pid))
        for m in matches
    ]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    cv2.imwrite(args.out, draw_search_result(rgb(query_img), args.box, panels)[:, :, ::-1])
    for rank, m in enumerate(matches, 1):
        print(f"#{rank} {m.name} box={[round(v, 1) for v in m.box]} similarity={m.similarity:.3f} score={m.score:.2f}")
    print(f"wrote {args.out}")


def _correct(record, box, pid):
    """True/False when the record's annotations tell whether ``box`` is identity ``pid``."""
    if pid is None or "annotations" not in record:
        return None
    import torch
    from detectron2.structures import Boxes, pairwise_iou

    same = [a["bbox"] for a in record["annotations"] if a.get("person_id") == pid]
    if not same:
        return False
    iou = pairwise_iou(Boxes(torch.tensor([box])), Boxes(torch.tensor(same, dtype=torch.float32)))
    return bool((iou >= 0.5).any())


def _cuda():
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
