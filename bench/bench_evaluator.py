"""
Benchmark the vectorised person-search evaluation against the plain per-image oracle
(tests/evaluation/oracle.py) on full-size synthetic protocols built in memory:

* CUHK-SYSU: 2,900 queries, a pool of 6,978 images, protocol lists of 100 and 4,000 images
  (with the real files' quirks: a repeated image, the query image in its own list);
* PRW: 2,057 queries, 6,112 frames from 6 cameras, about 10 kept detections per frame, both camera
  modes.

The production code runs on every query; the oracle runs on a subset of queries and its time is
extrapolated per query (said so in the table). On that subset the per-query AP, top-k, count_gt
and count_tp of both must agree. Each variant is timed alone, then all variants of a benchmark in
one call, which is how the evaluator runs them (the query x detection similarity matrix is
computed once and shared; alone, a short list such as g100 pays that whole product for ~1% of
its columns, so its ratio is the lowest). Finally ``PersonSearchEvaluator.evaluate()`` is timed
end to end (single process, search at every listed variant plus detection AP and recall, all
boxes and labeled only), after its ``process()`` has been fed the same fake model outputs.

Timings on a shared machine vary by +-30%. Run from the repository root:
``python bench/bench_evaluator.py`` (about 20-30 s on 2 cores; ``--scale 0.2`` for a quick run).
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# isort: off
import hpps_d2  # noqa: F401  (first: applies the compat patches before detectron2.data)
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Boxes, Instances
from tabulate import tabulate

from hpps_d2.evaluation import PersonSearchEvaluator
from hpps_d2.evaluation.search_galleries import search_cuhk_sysu, search_prw
from hpps_d2.evaluation.search_protocol import GalleryDetections
from hpps_d2.evaluation.test_mapper import search_eval_records
from tests.evaluation import oracle

# isort: on

DET_THRESH = 0.5


def _normalize(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _person_boxes(rng, n, width, height):
    h = rng.uniform(60, 300, n)
    w = h * rng.uniform(0.3, 0.5, n)
    x = rng.uniform(0, width - w)
    y = rng.uniform(0, height - h)
    return np.stack([x, y, x + w, y + h], axis=1)


def _scene_outputs(rng, gt, identity, protos, noise, fp_rate, width, height):
    """Detections of one image: jittered ground truth (90% found) plus false positives."""
    found = rng.random(len(gt)) < 0.9
    det = gt[found] + rng.normal(0, 4, (int(found.sum()), 4))
    dim = protos.shape[1]
    feat = protos[identity[found]] + noise / np.sqrt(dim) * rng.standard_normal((len(det), dim))
    nfp = int(rng.poisson(fp_rate))
    det = np.concatenate([det, _person_boxes(rng, nfp, width, height)])
    feat = np.concatenate([feat, rng.standard_normal((nfp, protos.shape[1]))])
    scores = np.r_[rng.uniform(0.55, 1.0, int(found.sum())), rng.uniform(0.2, 0.9, nfp)]
    return det.astype(np.float32), scores.astype(np.float32), _normalize(feat)


def _scene(name, gt, pids, camera, width, height):
    annos = [
        {"bbox": b.tolist(), "bbox_mode": 0, "category_id": 0, "person_id": int(p), "iscrowd": 0}
        for b, p in zip(gt, pids)
    ]
    record = {"file_name": name, "image_id": name, "height": height, "width": width}
    record["annotations"] = annos
    if camera is not None:
        record["camera_id"] = camera
    return record


def make_cuhk_sysu(rng, num_images=6978, num_queries=2900, sizes=(100, 4000), dim=256, noise=2.0):
    """The CUHK-SYSU test protocol: persons of query q carry pid q; lists are TestG-style."""
    width, height = 800, 600
    persons = np.maximum(1, rng.poisson(5, num_images))
    first = np.r_[0, np.cumsum(persons)][:-1]
    total = int(persons.sum())
    pid = np.full(total, -1)
    # each query identity appears in 2 to 5 distinct images, at one person slot each
    appear = {}
    for q in range(num_queries):
        images = np.zeros(0, dtype=np.int64)
        while len(images) < 2:  # retry until 2 free person slots are found
            images = rng.choice(num_images, int(rng.integers(2, 6)), replace=False)
            slots = first[images] + rng.integers(0, persons[images])
            free = pid[slots] < 0
            images, slots = images[free], slots[free]
        pid[slots] = q
        appear[q] = (images, slots)
    identity = np.where(pid >= 0, pid, num_queries + np.arange(total))
    protos = _normalize(rng.standard_normal((num_queries + total, dim)))
    boxes_all = _person_boxes(rng, total, width, height)
    gallery, outputs = [], []
    for i in range(num_images):
        s = slice(first[i], first[i] + persons[i])
        gallery.append(_scene(f"s{i}.jpg", boxes_all[s], pid[s], None, width, height))
        outputs.append(
            _scene_outputs(rng, boxes_all[s], identity[s], protos, noise, 3.0, width, height)
        )
    queries, qfeat = [], []
    for q, (images, slots) in appear.items():
        qi, pos = images[0], images[1:]
        pos_boxes = boxes_all[slots[1:]]
        lists = {}
        for k in sizes:
            cand = rng.choice(num_images, min(num_images, k + 20), replace=False)
            cand = cand[~np.isin(cand, images)][: k - len(pos)]
            lists[k] = {
                "images": np.r_[pos, cand].astype(np.int32),
                "pos_index": np.arange(len(pos), dtype=np.int32),
                "pos_boxes": pos_boxes.astype(np.float32),
            }
        queries.append(
            {
                "file_name": f"s{qi}.jpg",
                "image_id": f"s{qi}.jpg",
                "height": height,
                "width": width,
                "query": {"bbox": boxes_all[slots[0]].tolist(), "person_id": q},
                "gallery_lists": lists,
            }
        )
        qfeat.append(protos[q] + noise / np.sqrt(dim) * rng.standard_normal(dim))
    # the quirks of the real TestG files: a repeated positive, the query image in its own list
    for q in range(0, len(queries), 500):
        for gl in queries[q]["gallery_lists"].values():
            gl["images"][-1] = gl["images"][0]
            gl["pos_index"] = np.r_[gl["pos_index"], len(gl["images"]) - 1].astype(np.int32)
            gl["pos_boxes"] = np.r_[gl["pos_boxes"], gl["pos_boxes"][:1]]
            gl["images"][-2] = int(queries[q]["image_id"][1:-4])
    return gallery, queries, outputs, _normalize(np.asarray(qfeat))


def make_prw(
    rng, num_frames=6112, num_queries=2057, num_ids=544, query_ids=450, dim=256, noise=1.9
):
    """The PRW test protocol: 6 cameras, labeled ids in many frames, queries of 450 ids."""
    width, height = 1920, 1080
    protos = _normalize(rng.standard_normal((num_ids + 10 * num_frames, dim)))
    gallery, outputs, labeled = [], [], []
    unlabeled = num_ids
    for i in range(num_frames):
        camera = int(rng.integers(1, 7))
        n = int(rng.poisson(4))
        gt = _person_boxes(rng, n, width, height)
        pids = rng.choice(num_ids, n, replace=False)
        pids[rng.random(n) < 0.25] = -1
        identity = pids.copy()
        identity[pids < 0] = unlabeled + np.arange(int((pids < 0).sum()))
        unlabeled += int((pids < 0).sum())
        gallery.append(_scene(f"c{camera}s1_{i:06d}.jpg", gt, pids, camera, width, height))
        outputs.append(_scene_outputs(rng, gt, identity, protos, noise, 11.0, width, height))
        labeled += [(i, j) for j in np.flatnonzero((pids >= 0) & (pids < query_ids))]
    queries, qfeat = [], []
    for k in rng.choice(len(labeled), num_queries, replace=False):
        i, j = labeled[k]
        a = gallery[i]["annotations"][j]
        queries.append(
            {
                "file_name": gallery[i]["file_name"],
                "image_id": gallery[i]["image_id"],
                "height": height,
                "width": width,
                "query": {"bbox": a["bbox"], "person_id": a["person_id"]},
                "camera_id": gallery[i]["camera_id"],
            }
        )
        qfeat.append(protos[a["person_id"]] + noise / np.sqrt(dim) * rng.standard_normal(dim))
    return gallery, queries, outputs, _normalize(np.asarray(qfeat))


def _rounded(metrics, prefix=""):
    return {k: round(v, 2) for k, v in metrics.items() if k.startswith(prefix)}


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def _compare(result, reference, subset):
    """Max |AP difference| on the subset, or an error message when anything else differs."""
    worst = 0.0
    for q, ref in zip(subset, reference):
        if ref is None:
            assert not result.valid[q], f"query {q}: valid here, skipped by the oracle"
            continue
        assert (result.count_gt[q], result.count_tp[q]) == (ref["count_gt"], ref["count_tp"]), q
        assert result.hits[q].tolist() == ref["hits"], f"query {q}: top-k differs"
        worst = max(worst, abs(result.ap[q] - ref["ap"]))
    assert worst < 1e-9, f"AP differs by {worst}"
    return worst


def _evaluator_time(name, gallery, queries, outputs, qfeat, domain, **options):
    """Feed PersonSearchEvaluator.process() the fake outputs; time evaluate()."""
    gname, qname = f"_bench_{name}_gallery", f"_bench_{name}_query"
    for n, records in ((gname, gallery), (qname, queries)):
        if n in DatasetCatalog.list():
            DatasetCatalog.remove(n)
            MetadataCatalog.remove(n)
        DatasetCatalog.register(n, lambda r=records: r)
        MetadataCatalog.get(n).set(domain=domain)
    evaluator = PersonSearchEvaluator(
        qname, gname, det_thresh=DET_THRESH, distributed=False, **options
    )
    evaluator.reset()
    for rec in search_eval_records(queries, gallery):
        out = {}
        if "gallery_index" in rec:
            boxes, scores, feats = outputs[rec["gallery_index"]]
            inst = Instances((rec["height"], rec["width"]))
            inst.pred_boxes = Boxes(torch.from_numpy(boxes))
            inst.scores = torch.from_numpy(scores)
            inst.pred_embeddings = torch.from_numpy(feats)
            out["instances"] = inst
        if "query_indices" in rec:
            out["query_embeddings"] = torch.from_numpy(qfeat[rec["query_indices"]])
        evaluator.process([rec], [out])
    results, seconds = _timed(evaluator.evaluate)
    return results, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--oracle-queries",
        type=int,
        default=0,
        help="oracle subset size per variant (0 = 200 for CUHK g100, 12 otherwise)",
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="shrink the protocols (quick runs)"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    s = args.scale
    rows, checks = [], []

    t0 = time.perf_counter()
    cuhk = make_cuhk_sysu(rng, int(6978 * s), int(2900 * s), sizes=(100, int(4000 * s) or 1))
    prw = make_prw(rng, int(6112 * s), int(2057 * s), query_ids=max(1, int(450 * s)))
    print(f"built the synthetic protocols in {time.perf_counter() - t0:.1f} s")

    for name, (gallery, queries, outputs, qfeat) in (("CUHK-SYSU", cuhk), ("PRW", prw)):
        boxes, scores, feats = zip(*outputs)
        dets_prod = GalleryDetections.from_outputs(boxes, scores, feats, DET_THRESH, cws=True)
        dets_oracle = oracle.kept_detections(boxes, scores, feats, DET_THRESH, cws=True)
        kept = len(dets_prod.boxes) / len(gallery)
        if name == "CUHK-SYSU":
            sizes = sorted(queries[0]["gallery_lists"])
            variants = [(f"g{k}", {"sizes": [k]}, k) for k in sizes]
            shared = {"sizes": sizes}
            search = search_cuhk_sysu
        else:
            variants = [
                ("all", {"cam_modes": (True,)}, True),
                ("cross_cam", {"cam_modes": (False,)}, False),
            ]
            shared = {"cam_modes": (True, False)}
            search = search_prw
        total_oracle = 0.0
        for variant, kwargs, key in variants:
            result, prod = _timed(search, queries, gallery, qfeat, dets_prod, **kwargs)
            result = result[variant]
            n = args.oracle_queries or (200 if variant == "g100" else 12)
            subset = rng.choice(len(queries), min(n, len(queries)), replace=False)
            if name == "CUHK-SYSU":
                ref, secs = _timed(
                    oracle.cuhk_sysu, queries, gallery, qfeat, dets_oracle, key, subset
                )
            else:
                ref, secs = _timed(
                    oracle.pid_search, queries, gallery, qfeat, dets_oracle, key, subset
                )
            worst = _compare(result, ref, subset)
            extrapolated = secs / len(subset) * len(queries)
            total_oracle += extrapolated
            summary = result.summary()
            rows.append(
                [
                    f"{name} {variant}",
                    len(queries),
                    f"{kept:.1f}",
                    f"{prod:.2f}",
                    f"{secs:.2f} / {len(subset)} q",
                    f"{extrapolated:.1f}",
                    f"{extrapolated / prod:.0f}x",
                    f"{100 * summary['mAP']:.2f} / {100 * summary['top1']:.2f}",
                    f"yes ({worst:.1e})",
                ]
            )
        _, prod = _timed(search, queries, gallery, qfeat, dets_prod, **shared)
        rows.append(
            [
                f"{name} all variants, one call",
                len(queries),
                f"{kept:.1f}",
                f"{prod:.2f}",
                "",
                f"{total_oracle:.1f}",
                f"{total_oracle / prod:.0f}x",
                "",
                "",
            ]
        )
        domain = "cuhk_sysu" if name == "CUHK-SYSU" else "prw"
        options = {"gallery_sizes": shared["sizes"]} if name == "CUHK-SYSU" else {}
        results, secs = _evaluator_time(domain, gallery, queries, outputs, qfeat, domain, **options)
        checks.append(
            f"{name}: PersonSearchEvaluator.evaluate() {secs:.2f} s "
            f"(search at every variant + detection AP/recall, all and labeled): "
            f"{_rounded(results['search'], 'mAP')}, detection {_rounded(results['detection'])}"
        )

    headers = [
        "protocol",
        "queries",
        "kept dets/img",
        "production s (all queries)",
        "oracle s (subset)",
        "oracle s (extrapolated per query)",
        "speed-up",
        "mAP / top-1 (%)",
        "identical on subset (max |dAP|)",
    ]
    print(tabulate(rows, headers=headers, tablefmt="pipe"))
    print(
        "The oracle ran on a random subset of queries; its full-set time is extrapolated per query."
    )
    for line in checks:
        print(line)


if __name__ == "__main__":
    main()
