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
* ``reid``: the pre-trained model's re-ID alone on the synthetic MSMT17 / CUHK03 test splits;
* ``sched``: the same pre-training run 4x longer (the synthetic default sees each pseudo-identity
  about once; the paper's schedule is ~12 epochs), fine-tuned like the others from the whole model
  and from its backbone only, and its re-ID.

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
#: Tab. 1 row names: the synthetic configs' backbones and input sizes.
BACKBONE_NAMES = {
    "shufflenet": "ShuffleNetV2 x0.5 (256 px)",
    "r18": "ResNet-18 (256 px)",
    "r50": "ResNet-50 (192 px, 16 RoIs/view)",
}
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
PARTS = ("tab1", "tab4", "tab5", "fig5", "fig6", "reid", "sched")
#: ``sched``: pre-training length as a multiple of the synthetic config's schedule.
LONG_SCHEDULE = 4


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


def _pretrain(backbone="shufflenet", k=5, iam=True, canvas="expand_resize", inter=False, sched=1) -> Run:
    key = f"pre_{backbone}_d{k}" + ("" if iam else "_noiam") + ("" if canvas == "expand_resize" else f"_{canvas}") + ("_inter" if inter else "")
    key += f"_x{sched}" if sched != 1 else ""
    opts = _datasets_opts(k) + ("HPPS.UNIFY.REID_CANVAS", canvas, "HPPS.IAM.DET_ENABLED", str(iam), "HPPS.IAM.REID_ENABLED", str(iam), "HPPS.IAM.INTER_ENABLED", str(inter))
    if sched != 1:
        from detectron2.config import get_cfg

        from ..config import add_hpps_config

        cfg = add_hpps_config(get_cfg())
        cfg.merge_from_file(PRETRAIN_CFG[backbone])
        s = cfg.SOLVER
        opts += ("SOLVER.MAX_ITER", str(s.MAX_ITER * sched), "SOLVER.STEPS", str(tuple(x * sched for x in s.STEPS)), "SOLVER.CHECKPOINT_PERIOD", str(s.CHECKPOINT_PERIOD * sched))
    return Run(key, "pretrain", PRETRAIN_CFG[backbone], opts)


def _reid(pre: Run = None) -> Run:
    """
    The pre-trained model's re-ID on the synthetic crop test sets (--eval-only); without ``pre``,
    the same randomly initialised model: the chance level the pre-trained numbers compare with.
    """
    opts = ("DATASETS.TEST", "('synth_msmt17_query','synth_cuhk03_labeled_query')")
    if pre is None:
        return Run("reid_random_init", "reid", PRETRAIN_CFG["shufflenet"], opts + ("MODEL.WEIGHTS", ""))
    return Run(f"reid_{pre.key}", "reid", pre.config, opts, pre.key)


def _finetune(backbone, seed, pre: Run = None, init="whole", fraction=1.0) -> Run:
    src = f"{pre.key}_{init}" if pre else "scratch"
    key = f"ft_{backbone}_{src}_f{int(fraction * 100)}_s{seed}"
    opts = ("SEED", str(seed), "DATASETS.TRAIN_FRACTION", str(fraction), "HPPS.FINETUNE.INIT", init)
    return Run(key, "finetune", FINETUNE_CFG[backbone], opts, pre.key if pre else "", init if pre else "")


def plan(
    parts: Sequence[str],
    backbones: Sequence[str] = ("shufflenet",),
    seeds: int = 2,
    fractions: Sequence[float] = FRACTIONS,
    dataset_counts: Sequence[int] = tuple(range(2, len(DATASETS) + 1)),
) -> List[Run]:
    """
    Every run the selected parts need, pre-training first, without duplicates. ``fractions``
    (Fig. 5) and ``dataset_counts`` (Fig. 6) select points of those curves.
    """
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
                for f in fractions:
                    add(_finetune("shufflenet", s, fraction=f))
                    for init in ("whole", "backbone"):
                        add(_finetune("shufflenet", s, base, init, f))
            elif part == "fig6":
                for k in dataset_counts:
                    if not 2 <= k <= len(DATASETS):
                        raise ValueError(f"Fig. 6 dataset counts are 2..{len(DATASETS)}, got {k}")
                    for iam in (True, False):
                        pre = _pretrain(k=k, iam=iam)
                        add(pre), add(_finetune("shufflenet", s, pre))
            elif part == "sched":
                pre = _pretrain(sched=LONG_SCHEDULE)
                add(pre), add(_finetune("shufflenet", s, pre)), add(_reid(pre))
                add(_finetune("shufflenet", s, pre, "backbone"))  # Fig. 5's whole-vs-backbone, longer
        if part == "reid":
            add(base), add(_reid(base)), add(_reid())
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
        extra = ["--eval-only"] if r.kind == "reid" else []
        if r.pretrain:
            pre_ckpt = os.path.join(work_dir, r.pretrain, "model_final.pth")
            if r.kind == "reid":
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
    """The ``split/task/metric`` results an --eval-only run wrote to ``eval_results.json``."""
    path = os.path.join(folder, "eval_results.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: the --eval-only run wrote no results (see {folder}/stdout.log)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# -------------------------------------------------------------------------------------------- #
# report
# -------------------------------------------------------------------------------------------- #
def _stat(results, keys, metric, task="search"):
    vals = [results[k].get(f"{TEST}/{task}/{metric}") for k in keys if k in results]
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, None, 0
    return float(np.mean(vals)), float(np.std(vals)), len(vals)


def _fmt(mean, std, n):
    if mean is None:
        return "not run"
    return f"{mean:.2f}" + (f" ± {std:.2f}" if n > 1 else " (1 seed)")


def _cells(results, keys, metrics=("mAP", "top1", "det AP")) -> List[str]:
    """Formatted mean ± std over ``keys`` of each metric ("det AP": detection AP, else search)."""
    return [_fmt(*(_stat(results, keys, "AP", "detection") if m == "det AP" else _stat(results, keys, m))) for m in metrics]


def _gain(base, new) -> str:
    """Relative gain of ``new`` over ``base`` (both ``_stat`` tuples) in percent."""
    if not base[0] or new[0] is None:
        return "-"
    return f"{100 * (new[0] - base[0]) / base[0]:+.1f}%"


def _reid_metric(r: Dict[str, float], split: str, metric: str):
    """A crop re-ID metric of one test split from an --eval-only result (split/task/metric keys)."""
    for k, v in r.items():
        if k.startswith(split + "/") and k.endswith("/" + metric):
            return v
    return None


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
    lines += [
        "## Tab. 1: scratch vs hybrid pre-trained, per backbone",
        "",
        "| backbone | scratch mAP | pre-trained mAP | relative gain | scratch top-1 | pre-trained top-1 | scratch det AP | pre-trained det AP |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in ("shufflenet", "r18", "r50"):
        sk, pk = _ft_keys(results, b, "scratch"), _ft_keys(results, b, f"pre_{b}_d5_whole")
        s, p = _stat(results, sk, "mAP"), _stat(results, pk, "mAP")
        if s[0] is None and p[0] is None:
            continue
        (s_map, s_top1, s_det), (p_map, p_top1, p_det) = _cells(results, sk), _cells(results, pk)
        cells = [s_map, p_map, _gain(s, p), s_top1, p_top1, s_det, p_det]
        lines.append(f"| {BACKBONE_NAMES[b]} | " + " | ".join(cells) + " |")
    lines += ["", "Paper (real data, ImageNet vs hybrid): ResNet-50 +10.3%, ResNet-18 +10.9%, ShuffleNet +19.5% relative mAP.", ""]
    # Tab. 4 and 5
    for title, rows in (
        ("Tab. 4: re-ID data operation", [("expand_resize", "pre_shufflenet_d5_whole"), ("random_paste", "pre_shufflenet_d5_random_paste_whole")]),
        ("Tab. 5: alignment modules", [("intra-task IAMs", "pre_shufflenet_d5_whole"), ("intra + inter-task", "pre_shufflenet_d5_inter_whole")]),
    ):
        lines += [f"## {title}", "", "| variant | mAP | top-1 | det AP |", "|---|---|---|---|"]
        for name, src in rows:
            lines.append(f"| {name} | " + " | ".join(_cells(results, _ft_keys(results, "shufflenet", src))) + " |")
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
    # pre-training length
    lines += [
        f"## Pre-training length: the synthetic schedule vs {LONG_SCHEDULE}x longer",
        "",
        "| pre-training | fine-tuned mAP | relative gain over scratch | top-1 | det AP |",
        "|---|---|---|---|---|",
    ]
    scratch = _stat(results, _ft_keys(results, "shufflenet", "scratch"), "mAP")
    long = f"pre_shufflenet_d5_x{LONG_SCHEDULE}"
    for name, src in (
        ("none (scratch)", "scratch"),
        ("1x, whole model", "pre_shufflenet_d5_whole"),
        ("1x, backbone only", "pre_shufflenet_d5_backbone"),
        (f"{LONG_SCHEDULE}x, whole model", f"{long}_whole"),
        (f"{LONG_SCHEDULE}x, backbone only", f"{long}_backbone"),
    ):
        keys = _ft_keys(results, "shufflenet", src)
        gain = "-" if src == "scratch" else _gain(scratch, _stat(results, keys, "mAP"))
        m, top1, det = _cells(results, keys)
        lines.append(f"| {name} | {m} | {gain} | {top1} | {det} |")
    lines.append("")
    # re-ID alone
    lines += ["## Re-ID of the pre-trained model alone (crop protocol, no fine-tuning)", ""]
    reid_keys = sorted(k for k in results if k.startswith("reid_"))
    if reid_keys:
        lines += ["| pre-trained model | split | mAP | rank-1 | rank-5 |", "|---|---|---|---|---|"]
        for k in reid_keys:
            for split in ("synth_msmt17_query", "synth_cuhk03_labeled_query"):
                r = {m: _reid_metric(results[k], split, m) for m in ("mAP", "rank1", "rank5")}
                lines.append(f"| {k[len('reid_'):]} | {split} | " + " | ".join("-" if v is None else f"{v:.2f}" for v in r.values()) + " |")
        lines.append("")
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
