"""A full `tools/train_net.py` training run given a pickle payload as MODEL.WEIGHTS: refused with
the file named, the payload never runs, no iteration is trained and no checkpoint is written."""
import os
import pickle

from tests.engine.conftest import FAST, REPO, run_tool


class _Payload:
    """Unpickling this creates the directory ``marker`` (stands for any code a file could run)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_training_run_refuses_a_pickle_payload_as_model_weights(tmp_path, datasets_root):
    marker, weights, out = str(tmp_path / "pwned"), str(tmp_path / "evil.pkl"), str(tmp_path / "out")
    with open(weights, "wb") as f:
        pickle.dump({"model": {}, "__author__": _Payload(marker)}, f)
    cfg = os.path.join(REPO, "configs", "synth", "finetune_prw_shufflenet.yaml")
    res = run_tool(
        ["tools/train_net.py", "--config-file", cfg, *FAST, "SOLVER.MAX_ITER", "3",
         "MODEL.WEIGHTS", weights, "OUTPUT_DIR", out],
        datasets_root,
    )
    assert res.returncode != 0
    assert not os.path.exists(marker), "the payload ran"
    assert "UnsafeWeightsError" in res.stderr and weights in res.stderr and "posix.mkdir" in res.stderr
    assert " iter: " not in res.stderr + res.stdout  # no training iteration was logged
    assert not [f for f in os.listdir(out) if f.startswith("model_")], "a checkpoint was written"
