"""configs/pretrain_lup4m.yaml (issue 13) trains end to end on the synthetic world: every LUPerson
crop held compactly (luperson_all), the OIM table sharded, a data-loader worker reading them."""
import json
import os

from tests.engine.conftest import REPO, run_tool


def test_lup4m_yaml_runs_on_cpu_with_synth_datasets(datasets_root, tmp_path):
    names = ("crowdhuman_train", "ecp_day_train", "msmt17_train", "cuhk03_labeled_train", "luperson_all")
    res = run_tool(
        [
            "tools/train_net.py", "--config-file", os.path.join(REPO, "configs", "pretrain_lup4m.yaml"),
            "DATASETS.TRAIN", "(" + ",".join(f'"synth_{n}"' for n in names) + ")", "MODEL.DEVICE", "cpu",
            "MODEL.WEIGHTS", "", "MODEL.RESNETS.NORM", "BN", "SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "2",
            "INPUT.MIN_SIZE_TRAIN", "(160,)", "INPUT.MAX_SIZE_TRAIN", "256", "HPPS.UNIFY.CANVAS_SIZE", "(160,213)",
            "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "16", "DATALOADER.NUM_WORKERS", "1", "OUTPUT_DIR", str(tmp_path),
        ],
        datasets_root,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    log = open(tmp_path / "log.txt").read()
    manifest = json.load(open(os.path.join(datasets_root, "synth", "manifest.json")))
    crops = manifest["splits"]["luperson_all"]["images"]
    assert f"unified synth_luperson_all: task=reid domain=2 images={crops} " in log
    assert "shard 0 of 1" in log  # the model's OIM is the sharded one
    last = [json.loads(x) for x in open(tmp_path / "metrics.json")][-1]
    assert last["iteration"] == 1 and all(last[k] == last[k] for k in ("reid_oim", "det_cls", "adv_reid_ins"))


def test_full_scale_yamls_pass_the_config_check():
    from detectron2.config import get_cfg

    from hpps_d2.config import add_hpps_config
    from hpps_d2.config.check import check_train_config

    for name, lup in (("pretrain_lup4m.yaml", "luperson_all"), ("pretrain_lupnl10m.yaml", "luperson_nl_all")):
        cfg = add_hpps_config(get_cfg())
        cfg.merge_from_file(os.path.join(REPO, "configs", name))
        cfg.MODEL.DEVICE = "cpu"  # the yamls are for GPUs; this host may have none
        check_train_config(cfg, pretraining=True)
        assert cfg.DATASETS.TRAIN[-1] == lup and cfg.MODEL.OIM.SHARDED
        # the schedule is 2 epochs of the data at 64 images per iteration, decayed at 2/3 and 11/12
        images = {"luperson_all": 4_257_027, "luperson_nl_all": 10_760_500}[lup]
        assert abs(cfg.SOLVER.MAX_ITER - 2 * images / cfg.SOLVER.IMS_PER_BATCH) / cfg.SOLVER.MAX_ITER < 0.01
        assert [round(s / cfg.SOLVER.MAX_ITER, 3) for s in cfg.SOLVER.STEPS] == [0.667, 0.917]
