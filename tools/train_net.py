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

A dataset of your own: ``--register my_datasets.py`` (repeatable) runs that file, in this process
and in every process ``--num-gpus`` starts, before the config is read, so the names it registers in
DatasetCatalog / MetadataCatalog can be used in DATASETS.TRAIN / DATASETS.TEST (README.md, "A
dataset of your own"). A missing file, or one that raises, stops the run with its name.

The project's own log lines (loggers ``hpps_d2.*``: datasets unified, boxes skipped, OIM table
size, initialisation weights) go to the console and OUTPUT_DIR/log.txt with detectron2's.
"""
import hashlib
import importlib.util
import os
import sys
import traceback

import hpps_d2  # noqa: F401  (registers datasets and models)
from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser, default_setup
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger
from hpps_d2.checkpoint.checkpointer import SafeCheckpointer
from hpps_d2.checkpoint.io import require_weights_file
from hpps_d2.config import add_hpps_config
from hpps_d2.config.check import check_test_config
from hpps_d2.engine import launch, trainer_class


class RegisterFileError(RuntimeError):
    """A ``--register`` file is missing or raised while it ran; the message names it."""


#: absolute path -> module, for the files this process already ran
_REGISTERED = {}


def import_register_file(path: str):
    """
    Run the Python file ``path`` once per process (as a module named after its path), so that
    the datasets it registers exist here.

    Raises:
        RegisterFileError: the file does not exist, is not a ``.py`` file, or raised; the message
            names the file and, for an exception, shows the lines of the file that raised it.
    """
    path = os.path.abspath(os.path.expanduser(path))
    if path in _REGISTERED:
        return _REGISTERED[path]
    if not os.path.isfile(path):
        raise RegisterFileError(
            f"--register {path}: no such file (expected a Python file that registers datasets, "
            "see README.md, 'A dataset of your own')"
        )
    if not path.endswith(".py"):
        raise RegisterFileError(f"--register {path}: expected a Python file ending in .py")
    name = "hpps_register_" + hashlib.sha1(path.encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its functions (dataset loaders) can be pickled by reference
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        frames = traceback.extract_tb(e.__traceback__)
        # the user's lines only: from the first frame in the file on (not importlib's)
        first = next((i for i, f in enumerate(frames) if f.filename == path), len(frames))
        shown = "".join(traceback.format_list(frames[first:]))
        raise RegisterFileError(
            f"--register {path}: the file raised {type(e).__name__} while it ran:\n"
            f"{shown}{type(e).__name__}: {e}"
        ) from None
    _REGISTERED[path] = module
    return module


def setup(args):
    cfg = get_cfg()
    add_hpps_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    # default_setup sets up the "detectron2" and "fvcore" loggers only
    setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="hpps_d2")
    return cfg


def main(args):
    # in every process launch() starts (spawned processes do not inherit the parent's imports)
    for path in getattr(args, "register", ()):
        import_register_file(path)
    cfg = setup(args)
    # before any dataset is read or model built (a resumable run does not read MODEL.WEIGHTS)
    if not (args.resume and os.path.exists(os.path.join(cfg.OUTPUT_DIR, "last_checkpoint"))):
        require_weights_file(cfg.MODEL.WEIGHTS)
    trainer_cls = trainer_class(cfg)
    if args.eval_only:
        check_test_config(cfg)  # before the model is built and the weights read
        model = trainer_cls.build_model(cfg)
        checkpointer = SafeCheckpointer(model, save_dir=cfg.OUTPUT_DIR)
        checkpointer.resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        return trainer_cls.test(cfg, model)
    trainer = trainer_cls(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def _shipped_configs() -> str:
    """The YAML configs under configs/, one per line, for --help."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    names = []
    for folder, _, files in sorted(os.walk(os.path.join(root, "configs"))):
        yamls = [f for f in files if f.endswith(".yaml")]
        names += sorted(os.path.relpath(os.path.join(folder, f), root) for f in yamls)
    return "\n".join("  " + n for n in names)


def argument_parser():
    parser = default_argument_parser(epilog=f"configs shipped with hpps_d2:\n{_shipped_configs()}")
    parser.description = __doc__
    parser.add_argument(
        "--register",
        action="append",
        default=[],
        metavar="FILE.py",
        help="a Python file that registers datasets of your own (repeatable); run before the "
        "config is read, in every process",
    )
    return parser


if __name__ == "__main__":
    args = argument_parser().parse_args()
    try:
        # here first, so a bad file stops the run before any process is started
        for p in args.register:
            import_register_file(p)
    except RegisterFileError as e:
        sys.exit(f"train_net.py: error: {e}")
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
