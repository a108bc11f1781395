#!/usr/bin/env python
"""
Train or evaluate a hpps_d2 model: hybrid pre-training (configs/pretrain*.yaml) or person-search
fine-tuning (configs/finetune/*.yaml). detectron2's usual flags:

    python tools/train_net.py --config-file configs/pretrain.yaml --num-gpus 8
    python tools/train_net.py --config-file CFG --resume
    python tools/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS model.pth

Without CUDA, --num-gpus N starts N CPU processes (gloo).

MODEL.WEIGHTS and --resume's checkpoints are read without running code (.pkl restricted to
arrays, torch files with weights_only=True; hpps_d2/checkpoint/io.py); a missing MODEL.WEIGHTS is
reported before any dataset is read. Make the weights with tools/export_weights.py (the whole
hybrid pre-trained model, e.g. weights/hpps_r50_whole.pth) or tools/convert_weights.py (ImageNet
backbones, e.g. weights/R-50-torchvision.pth).
"""
import os

import hpps_d2  # noqa: F401  (registers datasets and models)
from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser, default_setup
from hpps_d2.checkpoint.checkpointer import SafeCheckpointer
from hpps_d2.checkpoint.io import require_weights_file
from hpps_d2.config import add_hpps_config
from hpps_d2.engine import launch, trainer_class


def setup(args):
    cfg = get_cfg()
    add_hpps_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def main(args):
    cfg = setup(args)
    # before any dataset is read or model built (a resumable run does not read MODEL.WEIGHTS)
    if not (args.resume and os.path.exists(os.path.join(cfg.OUTPUT_DIR, "last_checkpoint"))):
        require_weights_file(cfg.MODEL.WEIGHTS)
    trainer_cls = trainer_class(cfg)
    if args.eval_only:
        model = trainer_cls.build_model(cfg)
        checkpointer = SafeCheckpointer(model, save_dir=cfg.OUTPUT_DIR)
        checkpointer.resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        return trainer_cls.test(cfg, model)
    trainer = trainer_cls(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
