"""Launch past one machine (issue 13): 2 "machines" x 1 process on 127.0.0.1, joined through
--num-machines / --machine-rank / --dist-url, end with the same weights as 1 machine x 2
processes (gloo on the CPU)."""
import os
import socket
import subprocess
import sys

import pytest
import torch

from tests.engine.conftest import FAST, REPO

SYNTH_CFG = os.path.join(REPO, "configs", "synth", "pretrain_shufflenet.yaml")
COMMON = ["--config-file", SYNTH_CFG, *FAST, "SOLVER.IMS_PER_BATCH", "4", "SOLVER.MAX_ITER", "2", "SOLVER.CHECKPOINT_PERIOD", "100"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(datasets_root):
    # one thread per process in every layout: launch gives each process cores // processes per
    # machine, and a different thread count changes float summation order
    return dict(os.environ, HPPS_DATASETS=datasets_root, PYTHONPATH=REPO, OMP_NUM_THREADS="1")


def _train(cmd, env, timeout=600):
    res = subprocess.run([sys.executable, *cmd], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-3000:]


def _weights(out_dir):
    return torch.load(os.path.join(out_dir, "model_final.pth"), weights_only=True)["model"]


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def one_machine_of_two(datasets_root, tmp_path_factory):
    """The reference both launches are compared with: --num-gpus 2, trained once per module."""
    out = str(tmp_path_factory.mktemp("one_machine"))
    _train(["tools/train_net.py", "--num-gpus", "2", *COMMON, "OUTPUT_DIR", out], _env(datasets_root))
    return _weights(out)


def test_two_machines_of_one_process_equal_one_machine_of_two(datasets_root, tmp_path, one_machine_of_two):
    env = _env(datasets_root)
    two = str(tmp_path / "two_machines")
    url = f"tcp://127.0.0.1:{_free_port()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "tools/train_net.py", "--num-gpus", "1", "--num-machines", "2", "--machine-rank", str(r),
             "--dist-url", url, *COMMON, "OUTPUT_DIR", two],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for r in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    _assert_same_weights(one_machine_of_two, _weights(two))
    assert one_machine_of_two["roi_heads.oim.lut"].abs().sum() > 0


def test_torchrun_joins_its_processes_and_matches_num_gpus(datasets_root, tmp_path, one_machine_of_two):
    """torchrun starts the processes; train_net joins them (env://) instead of spawning its own."""
    env = _env(datasets_root)
    launched = str(tmp_path / "torchrun")
    _train(["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
            "tools/train_net.py", *COMMON, "OUTPUT_DIR", launched], env)
    _assert_same_weights(one_machine_of_two, _weights(launched))
    # a --num-gpus that disagrees with torchrun's world size is refused, naming both
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
         "tools/train_net.py", "--num-gpus", "4", *COMMON, "OUTPUT_DIR", str(tmp_path / "bad")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert res.returncode != 0 and "--num-gpus x --num-machines = 4, but the launcher (torchrun) started WORLD_SIZE=2" in res.stderr
