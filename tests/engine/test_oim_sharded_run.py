"""Sharded OIM in real training runs: 2 CPU processes (gloo) against the replicated table, and a
checkpoint saved on 2 processes resumed on 1 (issue 13)."""
import os
import shutil

import torch

from tests.engine.conftest import FAST, REPO, run_tool

SYNTH_CFG = os.path.join(REPO, "configs", "synth", "pretrain_shufflenet.yaml")
COMMON = [SYNTH_CFG, *FAST, "SOLVER.IMS_PER_BATCH", "4", "SOLVER.MAX_ITER", "2", "SOLVER.CHECKPOINT_PERIOD", "1"]


def _train(datasets_root, out, sharded, *extra, processes=2):
    args = ["tools/train_net.py", "--num-gpus", str(processes), "--config-file", *COMMON,
            "MODEL.OIM.SHARDED", str(sharded), "MODEL.OIM.CHUNK_ROWS", "100", *extra, "OUTPUT_DIR", out]
    res = run_tool(args, datasets_root)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def test_sharded_training_matches_the_replicated_table(datasets_root, tmp_path):
    replicated, sharded = str(tmp_path / "replicated"), str(tmp_path / "sharded")
    _train(datasets_root, replicated, False)
    _train(datasets_root, sharded, True)
    for name in ("model_0000000.pth", "model_final.pth"):
        a = torch.load(os.path.join(replicated, name), weights_only=True)["model"]
        b = torch.load(os.path.join(sharded, name), weights_only=True)["model"]
        assert a.keys() == b.keys()
        # the checkpoint holds the whole table, gathered from both processes
        lut = "roi_heads.oim.lut"
        assert b[lut].shape == a[lut].shape and a[lut].abs().sum() > 0
        for k in a:
            if a[k].is_floating_point():
                # float32 summation order only (blockwise log-sum-exp vs one softmax)
                torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=f"{name} {k}")
            else:
                assert torch.equal(a[k], b[k]), f"{name} {k}"


def test_checkpoint_of_two_processes_resumes_on_one(datasets_root, tmp_path):
    two = str(tmp_path / "two")
    _train(datasets_root, two, True)
    one = str(tmp_path / "one")
    os.makedirs(one)
    shutil.copy(os.path.join(two, "model_0000000.pth"), one)
    with open(os.path.join(one, "last_checkpoint"), "w") as f:
        f.write("model_0000000.pth")
    saved = torch.load(os.path.join(one, "model_0000000.pth"), weights_only=True)["model"]["roi_heads.oim.lut"]
    res = run_tool(["tools/train_net.py", "--resume", "--config-file", *COMMON, "MODEL.OIM.SHARDED", "True",
                    "OUTPUT_DIR", one], datasets_root)
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stdout + res.stderr
    assert "Starting training from iteration 1" in log, log[-2000:]
    # One more iteration of 4 images updates only the rows of the identities it saw; every other
    # row is the saved (gathered, re-loaded) one, bit for bit.
    final = torch.load(os.path.join(one, "model_final.pth"), weights_only=True)["model"]["roi_heads.oim.lut"]
    assert final.shape == saved.shape
    same = (final == saved).all(dim=1)
    assert same.float().mean() > 0.8 and not same.all(), f"{int(same.sum())} of {len(same)} rows unchanged"
