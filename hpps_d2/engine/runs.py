"""
Running training stages as separate processes and reading back their results.

The demo (``tools/demo.py``) and the synthetic study (``tools/run_study.py``) chain several
trainings (pre-train, export, fine-tune, evaluate). Each stage runs ``tools/train_net.py`` in its
own process, so logs, loggers and memory never leak between stages, and a stage whose output
folder already holds ``model_final.pth`` and ``results.json`` is skipped: a chain can be resumed by
running it again.
"""
import json
import logging
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

__all__ = ["REPO", "StageFailed", "run_stage", "read_results", "export_whole", "export_generic"]

logger = logging.getLogger(__name__)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class StageFailed(RuntimeError):
    """A training stage exited with an error; the message holds the end of its log."""


def read_results(output_dir: str) -> Dict[str, float]:
    """
    The evaluation results of a finished training run: the last ``metrics.json`` line that holds
    evaluation keys (``<split>/<task>/<metric>``, as detectron2's EvalHook flattens them).
    """
    path = os.path.join(output_dir, "metrics.json")
    results: Dict[str, float] = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                entry = json.loads(line)
                evals = {k: v for k, v in entry.items() if k.count("/") == 2}
                if evals:
                    results = evals
    return results


def run_stage(
    config_file: str,
    output_dir: str,
    opts: Sequence[str] = (),
    tool: str = "tools/train_net.py",
    extra_args: Sequence[str] = (),
    env: Optional[Dict[str, str]] = None,
) -> Dict[str, float]:
    """
    Train (or evaluate) with ``tool`` into ``output_dir``, unless it already finished there.

    Returns:
        the run's evaluation results (see :func:`read_results`), also written to
        ``output_dir/results.json`` together with the wall time.
    """
    done = os.path.join(output_dir, "results.json")
    if os.path.exists(done) and os.path.exists(os.path.join(output_dir, "model_final.pth")):
        with open(done, encoding="utf-8") as f:
            logger.info(f"{output_dir}: already done, reusing its results")
            return json.load(f)["results"]
    os.makedirs(output_dir, exist_ok=True)
    cmd: List[str] = [sys.executable, tool, "--config-file", config_file, *extra_args, *opts, "OUTPUT_DIR", output_dir]
    # --resume continues a stage that was interrupted (it starts fresh when nothing is saved).
    if "--eval-only" not in extra_args:
        cmd.insert(2, "--resume")
    start = time.time()
    log_path = os.path.join(output_dir, "stdout.log")
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(cmd, cwd=REPO, env=dict(os.environ, **(env or {})), stdout=log, stderr=subprocess.STDOUT)
    seconds = time.time() - start
    if proc.returncode != 0:
        with open(log_path, encoding="utf-8") as f:
            tail = f.read()[-4000:]
        raise StageFailed(f"{' '.join(cmd)} failed ({proc.returncode}); end of {log_path}:\n{tail}")
    results = read_results(output_dir)
    with open(done, "w", encoding="utf-8") as f:
        json.dump({"results": results, "seconds": seconds, "command": cmd}, f, indent=1)
    return results


def export_whole(checkpoint: str, out: str) -> str:
    """Write the whole model of a pre-training checkpoint for fine-tuning (tools/export_weights.py)."""
    if not os.path.exists(out):
        cmd = [sys.executable, "tools/export_weights.py", checkpoint, "--whole", out]
        res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if res.returncode != 0:
            raise StageFailed(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return out


def export_generic(checkpoint: str, out: str) -> str:
    """
    The person-search initialisation from a generic (ImageNet stand-in) classification run:
    ``tools/export_classifier.py`` writes the torchvision state dict, then
    ``tools/convert_weights.py --src torchvision`` converts it, the path real ImageNet weights
    take (README.md, "Weights"); the checkpoint names its architecture.
    """
    if os.path.exists(out):
        return out
    torchvision_sd = os.path.splitext(out)[0] + "_torchvision.pth"
    for cmd in (
        [sys.executable, "tools/export_classifier.py", checkpoint, "--out", torchvision_sd],
        [sys.executable, "tools/convert_weights.py", "--src", "torchvision", torchvision_sd, out],
    ):
        res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if res.returncode != 0:
            raise StageFailed(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return out
