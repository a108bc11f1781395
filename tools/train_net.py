#!/usr/bin/env python
"""
Train or evaluate a hpps_d2 model: hybrid pre-training (configs/pretrain*.yaml) or person-search
fine-tuning (configs/finetune/*.yaml). detectron2's usual flags:

    python tools/train_net.py --config-file configs/pretrain.yaml --num-gpus 8
    python tools/train_net.py --config-file CFG --resume
    python tools/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS model.pth

Without CUDA, --num-gpus N starts N CPU processes (gloo).
"""
import hpps_d2  # noqa: F401  (registers datasets and models)
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser, default_setup
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
    trainer_cls = trainer_class(cfg)
    if args.eval_only:
        model = trainer_cls.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
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
