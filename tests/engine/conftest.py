import os
import subprocess
import sys

import pytest

from hpps_d2.synth import generate_world

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: Overrides that make the synthetic pre-training config a few-second job.
FAST = [
    "SOLVER.IMS_PER_BATCH", "2",
    "INPUT.MIN_SIZE_TRAIN", "(160,)",
    "INPUT.MAX_SIZE_TRAIN", "256",
    "HPPS.UNIFY.CANVAS_SIZE", "(160,213)",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "16",
    "DATALOADER.NUM_WORKERS", "0",
    "SOLVER.WARMUP_ITERS", "2",
]


@pytest.fixture(scope="session")
def datasets_root(tmp_path_factory):
    """A datasets root holding a tiny synthetic world in ``synth/`` (for subprocesses)."""
    root = tmp_path_factory.mktemp("datasets")
    generate_world(str(root / "synth"), seed=0, scale=0.1, workers=2)
    return str(root)


def run_tool(args, datasets_root, timeout=600, **kw):
    """Run a Python tool of this repository with HPPS_DATASETS set; returns CompletedProcess."""
    env = dict(os.environ, HPPS_DATASETS=datasets_root, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, timeout=timeout, capture_output=True, text=True, **kw)
