"""Trains a few iterations in each of N CPU processes and saves every rank's state (test helper).

    python -m tests.engine.ddp_worker OUT_DIR NUM_PROCS CONFIG [overrides...]
"""
import os
import sys

import torch

import hpps_d2  # noqa: F401
from detectron2.config import get_cfg
from detectron2.utils import comm
from hpps_d2.config import add_hpps_config
from hpps_d2.engine import HybridPretrainTrainer, launch
from hpps_d2.engine.trainer import unwrap


def main(out_dir, config, opts):
    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(config)
    cfg.merge_from_list(opts)
    cfg.OUTPUT_DIR = os.path.join(out_dir, "train")
    cfg.freeze()
    trainer = HybridPretrainTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    state = unwrap(trainer.model).state_dict()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, os.path.join(out_dir, f"rank{comm.get_rank()}.pth"))


if __name__ == "__main__":
    out, n, config, *opts = sys.argv[1:]
    launch(main, int(n), dist_url="auto", args=(out, config, opts))
