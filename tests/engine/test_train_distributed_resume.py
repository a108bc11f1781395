"""End-to-end training runs on the CPU: 2-process DDP, kill-and-resume, configs/pretrain.yaml."""
import os
import signal
import subprocess
import sys
import time

import torch

from tests.engine.conftest import FAST, REPO, run_tool

SYNTH_CFG = os.path.join(REPO, "configs", "synth", "pretrain_shufflenet.yaml")


def test_two_cpu_processes_keep_identical_parameters_and_oim_tables(datasets_root, tmp_path):
    res = run_tool(
        ["-m", "tests.engine.ddp_worker", str(tmp_path), "2", SYNTH_CFG, *FAST, "SOLVER.MAX_ITER", "3", "SOLVER.IMS_PER_BATCH", "4"],
        datasets_root,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pth", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pth", weights_only=True)
    assert r0.keys() == r1.keys()
    lut = "roi_heads.oim.lut"
    assert r0[lut].abs().sum() > 0  # the tables were updated
    for k in r0:
        if "running_" in k or "num_batches_tracked" in k:
            continue  # BN statistics are per rank (no SyncBN), as in detectron2
        assert torch.equal(r0[k], r1[k]), k


def _final_weights(out_dir):
    return torch.load(os.path.join(out_dir, "model_final.pth"), weights_only=True)


def test_killed_run_resumes_to_the_same_weights(datasets_root, tmp_path):
    common = [SYNTH_CFG, *FAST, "SOLVER.MAX_ITER", "8", "SOLVER.CHECKPOINT_PERIOD", "2", "DATALOADER.NUM_WORKERS", "1"]
    straight = str(tmp_path / "straight")
    res = run_tool(["tools/train_net.py", "--config-file", *common, "OUTPUT_DIR", straight], datasets_root)
    assert res.returncode == 0, res.stderr[-3000:]

    killed = str(tmp_path / "killed")
    env = dict(os.environ, HPPS_DATASETS=datasets_root, PYTHONPATH=REPO)
    proc = subprocess.Popen(
        [sys.executable, "tools/train_net.py", "--config-file", *common, "OUTPUT_DIR", killed],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    first = os.path.join(killed, "model_0000001.pth")
    deadline = time.time() + 300
    while not os.path.exists(first) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # let the checkpoint file be complete, then kill mid-run
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not os.path.exists(os.path.join(killed, "model_final.pth")), "the run ended before it was killed"
    res = run_tool(["tools/train_net.py", "--resume", "--config-file", *common, "OUTPUT_DIR", killed], datasets_root)
    assert res.returncode == 0, res.stderr[-3000:]
    started = [x for x in res.stdout.splitlines() if "Starting training from iteration" in x]
    assert started and not started[0].endswith("iteration 0"), started
    a, b = _final_weights(straight), _final_weights(killed)
    assert a["iteration"] == b["iteration"] == 7
    assert a["data_loader"] == b["data_loader"] == {"seed": 0, "consumed": 16}
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k in ("roi_heads.oim.lut", "backbone.stage3.0.branch1.0.weight"):
        assert a["model"][k].abs().sum() > 0


def test_pretrain_yaml_runs_on_cpu_with_synth_datasets(datasets_root, tmp_path):
    synth = "(" + ",".join(f'"synth_{n}"' for n in ("crowdhuman_train", "ecp_day_train", "msmt17_train", "cuhk03_labeled_train", "luperson_30k")) + ")"
    res = run_tool(
        [
            "tools/train_net.py", "--config-file", os.path.join(REPO, "configs", "pretrain.yaml"),
            "DATASETS.TRAIN", synth, "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "MODEL.RESNETS.NORM", "BN",
            "SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "2", "INPUT.MIN_SIZE_TRAIN", "(160,)",
            "INPUT.MAX_SIZE_TRAIN", "256", "HPPS.UNIFY.CANVAS_SIZE", "(160,213)",
            "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "16", "DATALOADER.NUM_WORKERS", "0",
            "OUTPUT_DIR", str(tmp_path),
        ],
        datasets_root,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    import json

    lines = [json.loads(x) for x in open(tmp_path / "metrics.json")]
    last = lines[-1]
    assert last["iteration"] == 1
    for key in ("det_rpn_cls", "det_cls", "det_box_reg", "reid_oim", "adv_det_img", "adv_reid_ins"):
        assert key in last and last[key] == last[key]  # present and not NaN
