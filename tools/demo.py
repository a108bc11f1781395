#!/usr/bin/env python
"""
The main job on the synthetic world, end to end on the CPU (``make demo``):

1. write the synthetic world (skipped when ``datasets/synth/manifest.json`` exists);
2. the ImageNet stand-in: a person-free classification pre-training of the ShuffleNet backbone
   on the synthetic ``imagenet`` set, exported and converted like torchvision ImageNet weights;
3. hybrid pre-training of a ShuffleNet NAE model on the five synthetic sub-task datasets,
   started from the stand-in (the paper's setting: pre-training from ImageNet weights);
4. export the whole pre-trained model for fine-tuning;
5. fine-tune NAE on synthetic PRW twice with the same schedule: from the stand-in (the paper's
   ImageNet baseline) and from the hybrid pre-trained model, side by side on one CPU thread each
   (``--jobs 1``: one after the other); evaluate both with the PRW protocol;
6. print a table of mAP / top-1 (and detection AP), and write a search picture.

Stages that already finished in ``--out`` are reused, so an interrupted demo continues. The stages
are the first four runs of the study (``tools/run_study.py``: ``gen_shufflenet``,
``pre_shufflenet_d5_p0``, ``ft_shufflenet_gen_f100_s0``, ``ft_shufflenet_pre_shufflenet_d5_p0_whole_f100_s0``)
with the same configs and seeds.

    python tools/demo.py [--out output/demo] [--generic-iters N] [--pretrain-iters N] [--finetune-iters N] [--jobs 2]
"""
import argparse
import concurrent.futures
import json
import logging
import os
import subprocess
import sys
import time

from tabulate import tabulate

from hpps_d2.engine.runs import REPO, export_generic, export_whole, run_stage

SYNTH = os.path.join("datasets", "synth")
GENERIC_CFG = "configs/synth/generic_pretrain_shufflenet.yaml"
PRETRAIN_CFG = "configs/synth/pretrain_shufflenet.yaml"
FINETUNE_CFG = "configs/synth/finetune_prw_shufflenet.yaml"
TEST = "synth_prw_query"


def _schedule(iters: int) -> list:
    return ["SOLVER.MAX_ITER", str(iters), "SOLVER.STEPS", f"({int(iters * 0.8)},)", "SOLVER.CHECKPOINT_PERIOD", str(iters)]


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default="demo_output/runs")
    p.add_argument("--generic-iters", type=int, default=None, help="default: the config's")
    p.add_argument("--pretrain-iters", type=int, default=None, help="default: the config's")
    p.add_argument("--finetune-iters", type=int, default=None, help="default: the config's")
    p.add_argument("--jobs", type=int, default=2, choices=(1, 2),
                   help="2 (default): the two fine-tunes side by side, one CPU thread each (about 1.8x the "
                   "throughput of one 2-thread run on 2 cores); 1: one after the other")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t0 = time.time()
    times = {}

    if not os.path.exists(os.path.join(SYNTH, "manifest.json")):
        subprocess.run([sys.executable, "tools/make_synth_data.py", "--out", SYNTH], cwd=REPO, check=True)
    times["synthetic world"] = time.time() - t0

    def stage(name, cfg, opts, env=None):
        start = time.time()
        print(f"[demo] {name} ...", flush=True)
        res = run_stage(cfg, os.path.join(args.out, name), opts, env=env)
        times[name] = time.time() - start
        print(f"[demo] {name} done in {times[name]:.0f} s", flush=True)
        return res

    gen_opts = _schedule(args.generic_iters) if args.generic_iters else []
    pre_opts = _schedule(args.pretrain_iters) if args.pretrain_iters else []
    ft_opts = _schedule(args.finetune_iters) if args.finetune_iters else []
    stage("generic", GENERIC_CFG, gen_opts)
    generic = export_generic(os.path.join(args.out, "generic", "model_final.pth"), os.path.join(args.out, "generic", "init.pth"))
    stage("pretrain", PRETRAIN_CFG, pre_opts + ["MODEL.WEIGHTS", generic])
    whole = export_whole(os.path.join(args.out, "pretrain", "model_final.pth"), os.path.join(args.out, "pretrain", "whole.pth"))
    finetunes = {
        "ImageNet stand-in": ("finetune_generic", generic),
        "hybrid pre-trained": ("finetune_pretrained", whole),
    }
    env = {"OMP_NUM_THREADS": "1"} if args.jobs == 2 else None
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {
            label: pool.submit(stage, name, FINETUNE_CFG, ft_opts + ["MODEL.WEIGHTS", weights], env)
            for label, (name, weights) in finetunes.items()
        }
        runs = {label: f.result() for label, f in futures.items()}

    rows = []
    for name, res in runs.items():
        rows.append([name] + [res.get(f"{TEST}/{k}", float("nan")) for k in ("search/mAP", "search/top1", "detection/AP", "detection/recall")])
    base = rows[0][1]
    print("\nNAE (ShuffleNetV2 x0.5) fine-tuned on synthetic PRW, same schedule; PRW protocol (all other frames):")
    print(tabulate(rows, headers=["init", "mAP", "top-1", "det AP", "det recall"], floatfmt=".2f", tablefmt="github"))
    if base == base and base > 0:
        print(f"relative mAP gain of hybrid pre-training over the ImageNet stand-in: {100 * (rows[1][1] - base) / base:+.1f}%")

    # One search, with the pre-trained, fine-tuned model, on a query of the synthetic PRW test split.
    from detectron2.data import DatasetCatalog  # after the stages: importing hpps_d2 is slow

    import hpps_d2  # noqa: F401

    query = DatasetCatalog.get(TEST)[0]
    picture = os.path.join(args.out, "search.png")
    cmd = [
        sys.executable, "tools/search_demo.py", "--config-file", FINETUNE_CFG,
        "--query", query["file_name"], "--box", *[str(v) for v in query["query"]["bbox"]],
        "--gallery", "synth_prw_gallery", "--query-pid", str(query["query"]["person_id"]),
        "--topk", "5", "--out", picture,
        "MODEL.WEIGHTS", os.path.join(args.out, "finetune_pretrained", "model_final.pth"),
    ]
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times["total"] = time.time() - t0
    print("\npictures:")
    print(f"  search result (query crop, top-5 gallery matches): {picture}")
    print(f"  data (records and unified two-view inputs, make demo): {os.path.join(os.path.dirname(args.out), 'data')}")
    print("wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
    with open(os.path.join(args.out, "demo_results.json"), "w", encoding="utf-8") as f:
        json.dump({"runs": runs, "seconds": times}, f, indent=1)


if __name__ == "__main__":
    main()
