"""Launch past one machine (issue 13): 2 "machines" x 1 process on 127.0.0.1, joined through
--num-machines / --machine-rank / --dist-url, end with the same weights as 1 machine x 2
processes (gloo on the CPU)."""
import os
import socket
import subprocess
import sys

import torch

from tests.engine.conftest import FAST, REPO

SYNTH_CFG = os.path.join(REPO, "configs", "synth", "pretrain_shufflenet.yaml")
COMMON = ["--config-file", SYNTH_CFG, *FAST, "SOLVER.IMS_PER_BATCH", "4", "SOLVER.MAX_ITER", "2", "SOLVER.CHECKPOINT_PERIOD", "100"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_machines_of_one_process_equal_one_machine_of_two(datasets_root, tmp_path):
    # one thread per process in both layouts: launch gives each process cores // processes per
    # machine, and a different thread count changes float summation order
    env = dict(os.environ, HPPS_DATASETS=datasets_root, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    one = str(tmp_path / "one_machine")
    res = subprocess.run([sys.executable, "tools/train_net.py", "--num-gpus", "2", *COMMON, "OUTPUT_DIR", one],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
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
    a = torch.load(os.path.join(one, "model_final.pth"), weights_only=True)["model"]
    b = torch.load(os.path.join(two, "model_final.pth"), weights_only=True)["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert a["roi_heads.oim.lut"].abs().sum() > 0


def test_torchrun_joins_its_processes_and_matches_num_gpus(datasets_root, tmp_path):
    """torchrun starts the processes; train_net joins them (env://) instead of spawning its own."""
    env = dict(os.environ, HPPS_DATASETS=datasets_root, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    spawned = str(tmp_path / "spawned")
    res = subprocess.run([sys.executable, "tools/train_net.py", "--num-gpus", "2", *COMMON, "OUTPUT_DIR", spawned],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    launched = str(tmp_path / "torchrun")
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
         "tools/train_net.py", *COMMON, "OUTPUT_DIR", launched],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    a = torch.load(os.path.join(spawned, "model_final.pth"), weights_only=True)["model"]
    b = torch.load(os.path.join(launched, "model_final.pth"), weights_only=True)["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # a --num-gpus that disagrees with torchrun's world size is refused, naming both
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
         "tools/train_net.py", "--num-gpus", "4", *COMMON, "OUTPUT_DIR", str(tmp_path / "bad")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert res.returncode != 0 and "--num-gpus x --num-machines = 4, but the launcher (torchrun) started WORLD_SIZE=2" in res.stderr
