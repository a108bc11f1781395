"""
The paper's experiments, rerun on the synthetic world (``tools/run_study.py``).

Every run is a training stage (:func:`hpps_d2.engine.runs.run_stage`) in its own folder under the
study's output, so the study resumes where it stopped and its parts can be run separately:

* ``tab1``: NAE fine-tuned on synthetic PRW from scratch vs from the hybrid pre-trained whole
  model, per backbone (paper Tab. 1);
* ``tab4``: pre-training with expand_resize vs random_paste (Tab. 4);
* ``tab5``: intra-task alignment only vs intra + inter-task alignment (Tab. 5);
* ``fig5``: 20..100% of the target training images, scratch vs whole-model vs backbone-only
  initialisation (Fig. 5);
* ``fig6``: 2..5 pre-training datasets, with and without the IAMs (Fig. 6);
* ``reid``: the pre-trained model's re-ID alone on the synthetic MSMT17 / CUHK03 test splits.

Fine-tuning uses one schedule for every arm (the synthetic configs'), over ``seeds`` seeds;
pre-training runs once per variant (seed 0). Nothing is tuned on the test split.
"""
import dataclasses
import json
import logging
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .runs import export_whole, run_stage

__all__ = ["Run", "PARTS", "plan", "execute", "write_report"]

logger = logging.getLogger(__name__)

PRETRAIN_CFG = {b: f"configs/synth/pretrain_{b}.yaml" for b in ("shufflenet", "r18", "r50")}
FINETUNE_CFG = {b: f"configs/synth/finetune_prw_{b}.yaml" for b in ("shufflenet", "r18", "r50")}
TEST = "synth_prw_query"
#: Fig. 6 adds pre-training datasets in this order (a detection and a re-ID set first, so that
#: both sub-tasks are present from 2 datasets on); with their real sizes as sampling weights.
DATASETS = (
    ("synth_crowdhuman_train", 15000),
    ("synth_msmt17_train", 30248),
    ("synth_ecp_day_train", 23892),
    ("synth_cuhk03_labeled_train", 7368),
    ("synth_luperson_30k", 30000),
)
FRACTIONS = (0.2, 0.4, 0.6, 0.8, 1.0)
PARTS = ("tab1", "tab4", "tab5", "fig5", "fig6", "reid")


@dataclasses.dataclass(frozen=True)
class Run:
    """One training (or evaluation) stage of the study."""

    key: str  # folder name under the study output, unique
    kind: str  # "pretrain" | "finetune" | "reid"
    config: str
    opts: Tuple[str, ...] = ()
    pretrain: str = ""  # key of the pre-training run whose weights it starts from
    init: str = ""  # "whole" | "backbone" (fine-tuning from ``pretrain``)


def _datasets_opts(k: int) -> Tuple[str, ...]:
    names, sizes = zip(*DATASETS[:k])
    return ("DATASETS.TRAIN", "(" + ",".join(f"'{n}'" for n in names) + ",)", "HPPS.DATA.SOURCE_RATIOS", "(" + ",".join(map(str, sizes)) + ",)")


def _pretrain(backbone="shufflenet", k=5, iam=True, canvas="expand_resize", inter=False) -> Run:
    key = f"pre_{backbone}_d{k}" + ("" if iam else "_noiam") + ("" if canvas == "expand_resize" else f"_{canvas}") + ("_inter" if inter else "")
    opts = _datasets_opts(k) + ("HPPS.UNIFY.REID_CANVAS", canvas, "HPPS.IAM.DET_ENABLED", str(iam), "HPPS.IAM.REID_ENABLED", str(iam), "HPPS.IAM.INTER_ENABLED", str(inter))
    return Run(key, "pretrain", PRETRAIN_CFG[backbone], opts)


def _finetune(backbone, seed, pre: Run = None, init="whole", fraction=1.0) -> Run:
    src = f"{pre.key}_{init}" if pre else "scratch"
    key = f"ft_{backbone}_{src}_f{int(fraction * 100)}_s{seed}"
    opts = ("SEED", str(seed), "DATASETS.TRAIN_FRACTION", str(fraction), "HPPS.FINETUNE.INIT", init)
    return Run(key, "finetune", FINETUNE_CFG[backbone], opts, pre.key if pre else "", init if pre else "")


def plan(parts: Sequence[str], backbones: Sequence[str] = ("shufflenet",), seeds: int = 2) -> List[Run]:
    """Every run the selected parts need, pre-training first, without duplicates."""
    runs: Dict[str, Run] = {}

    def add(r: Run):
        runs.setdefault(r.key, r)

    base = _pretrain()
    for part in parts:
        if part not in PARTS:
            raise ValueError(f"unknown part {part!r}; parts: {PARTS}")
        for s in range(seeds):
            if part == "tab1":
                for b in backbones:
                    pre = _pretrain(b)
                    add(pre), add(_finetune(b, s)), add(_finetune(b, s, pre))
            elif part == "tab4":
                for canvas in ("expand_resize", "random_paste"):
                    pre = _pretrain(canvas=canvas)
                    add(pre), add(_finetune("shufflenet", s, pre))
            elif part == "tab5":
                for inter in (False, True):
                    pre = _pretrain(inter=inter)
                    add(pre), add(_finetune("shufflenet", s, pre))
            elif part == "fig5":
                add(base)
                for f in FRACTIONS:
                    add(_finetune("shufflenet", s, fraction=f))
                    for init in ("whole", "backbone"):
                        add(_finetune("shufflenet", s, base, init, f))
            elif part == "fig6":
                for k in range(2, len(DATASETS) + 1):
                    for iam in (True, False):
                        pre = _pretrain(k=k, iam=iam)
                        add(pre), add(_finetune("shufflenet", s, pre))
        if part == "reid":
            add(base)
            add(Run("reid_pre_shufflenet_d5", "reid", PRETRAIN_CFG["shufflenet"], ("DATASETS.TEST", "('synth_msmt17_query','synth_cuhk03_labeled_query')"), base.key))
    ordered = sorted(runs.values(), key=lambda r: {"pretrain": 0, "finetune": 1, "reid": 2}[r.kind])
    return ordered


def execute(runs: Sequence[Run], out_dir: str, work_dir: str) -> Dict[str, Dict[str, float]]:
    """
    Run (or reuse) every stage in ``work_dir/<key>`` (checkpoints, logs); returns results per run
    key, also kept in ``out_dir/results.json``.
    """
    results: Dict[str, Dict[str, float]] = {}
    path = os.path.join(out_dir, "results.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            results.update(json.load(f))
    for i, r in enumerate(runs, 1):
        folder = os.path.join(work_dir, r.key)
        logger.info(f"[{i}/{len(runs)}] {r.key}")
        opts = list(r.opts)
        extra = []
        if r.pretrain:
            pre_ckpt = os.path.join(work_dir, r.pretrain, "model_final.pth")
            if r.kind == "reid":
                extra = ["--eval-only"]
                opts += ["MODEL.WEIGHTS", pre_ckpt]
            else:
                opts += ["MODEL.WEIGHTS", export_whole(pre_ckpt, os.path.join(work_dir, r.pretrain, "whole.pth"))]
        results[r.key] = run_stage(r.config, folder, opts, extra_args=extra)
        if r.kind == "reid":
            results[r.key] = _eval_only_results(folder)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1, sort_keys=True)
    return results


def _eval_only_results(folder: str) -> Dict[str, float]:
    """Parse detectron2's copypaste lines of an --eval-only log."""
    out, task, names = {}, None, None
    with open(os.path.join(folder, "stdout.log"), encoding="utf-8") as f:
        for line in f:
            if "copypaste: Task: " in line:
                task = line.split("Task: ")[1].strip()
                names = None
            elif "copypaste: " in line and task:
                fields = line.split("copypaste: ")[1].strip().split(",")
                if names is None:
                    names = fields
                else:
                    out.update({f"{task}/{n}": float(v) for n, v in zip(names, fields)})
                    task = None
    return out


# -------------------------------------------------------------------------------------------- #
# report
# -------------------------------------------------------------------------------------------- #
def _stat(results, keys, metric):
    vals = [results[k].get(f"{TEST}/search/{metric}") for k in keys if k in results]
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, None, 0
    return float(np.mean(vals)), float(np.std(vals)), len(vals)


def _fmt(mean, std, n):
    if mean is None:
        return "not run"
    return f"{mean:.2f}" + (f" ± {std:.2f}" if n > 1 else "")


def _ft_keys(results, backbone, src, fraction=1.0):
    prefix = f"ft_{backbone}_{src}_f{int(fraction * 100)}_s"
    return sorted(k for k in results if k.startswith(prefix))


def write_report(results: Dict[str, Dict[str, float]], out_dir: str, seeds: int, notes: str = "") -> str:
    """Write ``out_dir/README.md`` (tables, mean ± std over seeds) and PNG plots; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [
        "# Hybrid pre-training on the synthetic world: the paper's experiments",
        "",
        "Regenerate: `python tools/run_study.py --out results/` (resumable; `--parts` selects; "
        "`--seeds`). NAE fine-tuned on synthetic PRW with one schedule for every arm "
        "(`configs/synth/finetune_prw_*.yaml`), PRW protocol (all other frames). Numbers are "
        f"mean ± std over fine-tuning seeds (up to {seeds}); pre-training runs once (seed 0).",
        "",
    ]
    if notes:
        lines += [notes.strip(), ""]
    # Tab. 1
    lines += ["## Tab. 1: scratch vs hybrid pre-trained, per backbone", "", "| backbone | scratch mAP | pre-trained mAP | relative gain | scratch top-1 | pre-trained top-1 |", "|---|---|---|---|---|---|"]
    for b in ("shufflenet", "r18", "r50"):
        s = _stat(results, _ft_keys(results, b, "scratch"), "mAP")
        p = _stat(results, _ft_keys(results, b, f"pre_{b}_d5_whole"), "mAP")
        if s[0] is None and p[0] is None:
            continue
        gain = f"{100 * (p[0] - s[0]) / s[0]:+.1f}%" if s[0] and p[0] is not None else "-"
        s1 = _stat(results, _ft_keys(results, b, "scratch"), "top1")
        p1 = _stat(results, _ft_keys(results, b, f"pre_{b}_d5_whole"), "top1")
        lines.append(f"| {b} | {_fmt(*s)} | {_fmt(*p)} | {gain} | {_fmt(*s1)} | {_fmt(*p1)} |")
    lines += ["", "Paper (real data, ImageNet vs hybrid): ResNet-50 +10.3%, ResNet-18 +10.9%, ShuffleNet +19.5% relative mAP.", ""]
    # Tab. 4 and 5
    for title, rows in (
        ("Tab. 4: re-ID data operation", [("expand_resize", "pre_shufflenet_d5_whole"), ("random_paste", "pre_shufflenet_d5_random_paste_whole")]),
        ("Tab. 5: alignment modules", [("intra-task IAMs", "pre_shufflenet_d5_whole"), ("intra + inter-task", "pre_shufflenet_d5_inter_whole")]),
    ):
        lines += [f"## {title}", "", "| variant | mAP | top-1 |", "|---|---|---|"]
        for name, src in rows:
            keys = _ft_keys(results, "shufflenet", src)
            lines.append(f"| {name} | {_fmt(*_stat(results, keys, 'mAP'))} | {_fmt(*_stat(results, keys, 'top1'))} |")
        lines.append("")
    # Fig. 5
    lines += ["## Fig. 5: fraction of target training data", "", "| fraction | scratch | whole model | backbone only |", "|---|---|---|---|"]
    curves = {"scratch": [], "whole model": [], "backbone only": []}
    for f in FRACTIONS:
        cells = []
        for name, src in (("scratch", "scratch"), ("whole model", "pre_shufflenet_d5_whole"), ("backbone only", "pre_shufflenet_d5_backbone")):
            st = _stat(results, _ft_keys(results, "shufflenet", src, f), "mAP")
            curves[name].append(st)
            cells.append(_fmt(*st))
        lines.append(f"| {int(f * 100)}% | " + " | ".join(cells) + " |")
    lines += ["", "![Fig. 5](fig5_fraction.png)", ""]
    _plot(plt, os.path.join(out_dir, "fig5_fraction.png"), [int(f * 100) for f in FRACTIONS], curves, "% of synthetic PRW training images", "mAP")
    # Fig. 6
    lines += ["## Fig. 6: number of pre-training datasets, with and without IAM", "", "| datasets | with IAM | without IAM |", "|---|---|---|"]
    curves6 = {"with IAM": [], "without IAM": []}
    ks = list(range(2, len(DATASETS) + 1))
    for k in ks:
        a = _stat(results, _ft_keys(results, "shufflenet", f"pre_shufflenet_d{k}_whole"), "mAP")
        b = _stat(results, _ft_keys(results, "shufflenet", f"pre_shufflenet_d{k}_noiam_whole"), "mAP")
        curves6["with IAM"].append(a)
        curves6["without IAM"].append(b)
        lines.append(f"| {k}: {', '.join(n.replace('synth_', '') for n, _ in DATASETS[:k])} | {_fmt(*a)} | {_fmt(*b)} |")
    lines += ["", "![Fig. 6](fig6_datasets.png)", ""]
    _plot(plt, os.path.join(out_dir, "fig6_datasets.png"), ks, curves6, "pre-training datasets", "mAP")
    # re-ID alone
    r = results.get("reid_pre_shufflenet_d5")
    lines += ["## Re-ID of the pre-trained model alone (crop protocol)", ""]
    if r:
        lines += ["| split | mAP | rank-1 |", "|---|---|---|"]
        lines += [f"| {s} | {r.get('reid/mAP_' + s, r.get('reid/mAP', float('nan'))):.2f} | {r.get('reid/rank1_' + s, r.get('reid/rank1', float('nan'))):.2f} |" for s in ("synth_msmt17_query", "synth_cuhk03_labeled_query")]
        lines += ["", "Raw: `" + json.dumps(r) + "`", ""]
    else:
        lines += ["not run", ""]
    path = os.path.join(out_dir, "README.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _plot(plt, path, xs, curves, xlabel, ylabel):
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, stats in curves.items():
        pts = [(x, m, s) for x, (m, s, _) in zip(xs, stats) if m is not None]
        if pts:
            x, m, s = zip(*pts)
            ax.errorbar(x, m, yerr=s, marker="o", capsize=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
