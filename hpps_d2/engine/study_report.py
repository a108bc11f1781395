"""
The study's report: ``results/README.md`` tables, a verdict per comparison the paper makes, and
PNG plots, from the results :func:`hpps_d2.engine.study.execute` wrote.

Every table cell is mean ± sample std (``ddof = 1``) over the runs of an arm (fine-tuning seeds,
and pre-training seeds where an arm has several), "(1 run)" when only one finished, "not run"
when none did. Every comparison of the paper is a paired difference with its 95% t interval and
a verdict by that interval (:mod:`.comparison`), never by eye.
"""
import dataclasses
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import study
from .comparison import paired_difference, verdict

__all__ = ["Comparison", "comparisons", "write_report", "arm_values"]

MAP, TOP1, DET = f"{study.TEST}/search/mAP", f"{study.TEST}/search/top1", f"{study.TEST}/detection/AP"
#: The same metrics of the ``calib`` runs, on the validation split.
VAL_METRICS = tuple(m.replace(study.TEST, study.VAL_TEST, 1) for m in (MAP, TOP1, DET))
BACKBONE_NAMES = {
    "shufflenet": "ShuffleNetV2 x0.5",
    "r18": "ResNet-18",
    "r50": "ResNet-50 (reduced)",
}
#: Paper Tab. 1, NAE on PRW, mAP ImageNet -> hybrid pre-trained (relative gain).
PAPER_TAB1 = {"r50": "+10.3%", "r18": "+10.9%", "shufflenet": "+19.5%"}

#: Paper-sized effects as relative mAP changes (Tab. 1 gains; Tab. 4: 47.08 vs 46.49, Tab. 5:
#: 47.08 vs 46.53, R50 on PRW), for the spread check: (label, backbone, the arm whose seed spread
#: is checked, relative effect).
PAPER_EFFECTS = (
    ("Tab. 1 ShuffleNetV2 x0.5", "shufflenet", "gen", 0.195),
    ("Tab. 1 ResNet-18", "r18", "gen", 0.109),
    ("Tab. 1 ResNet-50 (reduced)", "r50", "gen", 0.103),
    ("Tab. 4 (expand_resize vs random_paste)", study.MAIN, "pre_shufflenet_d5_whole", (47.08 - 46.49) / 46.49),
    ("Tab. 5 (intra vs intra + inter)", study.MAIN, "pre_shufflenet_d5_whole", (47.08 - 46.53) / 47.08),
)

_FT = re.compile(r"^(?P<kind>ft|ftval)(?:x(?P<x>[\d.]+))?_(?P<b>[a-z0-9]+)_(?P<src>.+)_f(?P<f>\d+)_s(?P<s>\d+)$")
_PSEED = re.compile(r"^(?P<pre>pre_.+)_p(?P<p>\d+)_(?P<init>whole|backbone)$")


def arm_values(results: Dict[str, dict], backbone: str, src: str, fraction: float = 1.0, metric: str = MAP, val: bool = False, schedule: float = 1.0) -> Dict:
    """
    The values of one arm: fine-tuning runs of ``backbone`` from ``src`` at ``fraction``.

    Args:
        src: "random", "gen", or ``"<pre-training key without _p<seed>>_<whole|backbone>"``: then
            every pre-training seed belongs to the arm.
        val: the ``calib`` runs on the validation split (``ftval_*``) instead of the test runs.
        schedule: runs fine-tuned this many times the config's iterations (``ftvalx2_*``: 2).

    Returns:
        dict: seed key (fine-tuning seed; ``(pre seed, fine-tuning seed)`` for a pre-trained arm)
        -> value of ``metric``.
    """
    out = {}
    f = int(round(fraction * 100))
    for key, entry in results.items():
        m = _FT.match(key)
        if not m or m["kind"] != ("ftval" if val else "ft") or m["b"] != backbone or int(m["f"]) != f:
            continue
        if float(m["x"] or 1.0) != schedule:
            continue
        value = entry.get("metrics", {}).get(metric)
        if value is None:
            continue
        p = _PSEED.match(m["src"])
        if p and f"{p['pre']}_{p['init']}" == src:
            out[(int(p["p"]), int(m["s"]))] = float(value)
        elif m["src"] == src:
            out[int(m["s"])] = float(value)
    return out


def _fmt(values: Dict) -> str:
    v = list(values.values())
    if not v:
        return "not run"
    if len(v) == 1:
        return f"{v[0]:.2f} (1 run)"
    return f"{np.mean(v):.2f} ± {np.std(v, ddof=1):.2f}"


@dataclasses.dataclass(frozen=True)
class Comparison:
    """
    One claim of the paper: arm ``b`` scores ``paper_sign`` (+1 above, -1 below) arm ``a``.

    Attributes:
        group: the table or figure ("Tab. 1", ...).
        claim: the claim in words.
        paper: what the paper reports.
        a, b: (backbone, src, fraction) of the two arms (see :func:`arm_values`).
    """

    group: str
    claim: str
    paper: str
    a: Tuple[str, str, float]
    b: Tuple[str, str, float]
    paper_sign: int = 1


def _pre(backbone=study.MAIN, suffix="", init="whole") -> str:
    return f"pre_{backbone}_d5{suffix}_{init}"


def comparisons(backbones: Sequence[str] = ("shufflenet", "r18", "r50"), fractions=study.FRACTIONS, counts=range(2, 6), sizes=study.SIZES) -> List[Comparison]:
    """Every comparison of the paper's Tab. 1, 4, 5, Fig. 5, 6 and its data-size conclusion."""
    m = study.MAIN
    out = [
        Comparison("Tab. 1", f"{BACKBONE_NAMES[b]}: hybrid pre-trained > ImageNet (stand-in)", f"{PAPER_TAB1[b]} mAP", (b, "gen", 1.0), (b, _pre(b), 1.0))
        for b in backbones
    ]
    out += [
        Comparison("Tab. 4", "expand_resize > random_paste", "47.08 vs 46.49 mAP", (m, _pre(suffix="_random_paste"), 1.0), (m, _pre(), 1.0)),
        Comparison("Tab. 5", "adding inter-task alignment lowers mAP", "46.53 vs 47.08 mAP", (m, _pre(), 1.0), (m, _pre(suffix="_inter"), 1.0), -1),
    ]
    for f in fractions:
        pct = f"{int(round(f * 100))}%"
        out += [
            Comparison("Fig. 5", f"{pct}: whole model > ImageNet (stand-in)", "above at every fraction", (m, "gen", f), (m, _pre(), f)),
            Comparison("Fig. 5", f"{pct}: backbone only > ImageNet (stand-in)", "above at every fraction", (m, "gen", f), (m, _pre(init="backbone"), f)),
            Comparison("Fig. 5", f"{pct}: whole model > backbone only", "whole model larger gain", (m, _pre(init="backbone"), f), (m, _pre(), f)),
        ]
    out.append(Comparison("Fig. 5", "whole model on 60% > ImageNet (stand-in) on 100%", "yes (60% suffices)", (m, "gen", 1.0), (m, _pre(), 0.6)))
    for k in counts:
        if k >= 3:  # with 2 datasets each sub-task has one domain: the IAMs have nothing to align
            out.append(Comparison("Fig. 6", f"{k} datasets: with IAM > without", "IAM gains at every count", (m, f"pre_{m}_d{k}_noiam_whole", 1.0), (m, f"pre_{m}_d{k}_whole", 1.0)))
    ks = sorted(counts)
    for k0, k1 in zip(ks, ks[1:]):
        out.append(Comparison("Fig. 6", f"{k1} datasets > {k0} (with IAM)", "more datasets, higher mAP", (m, f"pre_{m}_d{k0}_whole", 1.0), (m, f"pre_{m}_d{k1}_whole", 1.0)))
    ss = sorted(sizes)
    for s0, s1 in list(zip(ss, ss[1:])) + ([(ss[0], ss[-1])] if len(ss) > 2 else []):
        out.append(Comparison("Size", f"{_size_name(s1)} > {_size_name(s0)} of the pre-training data", "keeps improving with more images", (m, _size_src(s0), 1.0), (m, _size_src(s1), 1.0)))
    return out


def _size_name(f: float) -> str:
    return "all" if f == 1.0 else f"1/{int(round(1 / f))}" if abs(1 / f - round(1 / f)) < 1e-9 else f"{f:g}"


def _size_src(f: float) -> str:
    return _pre() if f == 1.0 else f"pre_{study.MAIN}_d5_n{int(round(f * 1000)):04d}_whole"


def _relative(d) -> str:
    """The relative difference of a :class:`PairedDifference` as a table cell."""
    return "-" if d.n == 0 or np.isnan(d.relative) else f"{100 * d.relative:+.1f}%"


def _verdict_rows(results, comps: Sequence[Comparison]) -> List[str]:
    rows = [
        "| group | claim | paper | A | B | B - A (mAP) [95% CI] | relative | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in comps:
        a, b = arm_values(results, *c.a), arm_values(results, *c.b)
        d = paired_difference(a, b)
        # no pair finished yet: "not run", so a partial study never reads as an inconclusive one
        v = "not run" if d.n == 0 else verdict(d, c.paper_sign)
        rows.append(f"| {c.group} | {c.claim} | {c.paper} | {_fmt(a)} | {_fmt(b)} | {d} | {_relative(d)} | **{v}** |")
    return rows


def _spread_rows(results) -> List[str]:
    """
    The calibration target of the study (issue 12): a cell's seed-to-seed spread (sample std)
    at most a third of the paper-sized effect, taken at this study's level (the paper's relative
    effect times the cell's mean).
    """
    rows = ["| effect | cell | cell mAP (n) | seed std | paper-sized effect here | a third of it | spread within a third? |",
            "|---|---|---|---|---|---|---|"]
    for label, b, src, rel in PAPER_EFFECTS:
        v = list(arm_values(results, b, src).values())
        if len(v) < 2:
            rows.append(f"| {label} | {b} {src} | {_fmt(arm_values(results, b, src))} | - | - | - | not run |")
            continue
        mean, std = float(np.mean(v)), float(np.std(v, ddof=1))
        effect = abs(rel) * mean
        ok = "yes" if std <= effect / 3 else "no"
        rows.append(f"| {label} | {b} {src} | {mean:.2f} (n={len(v)}) | {std:.2f} | {effect:.2f} ({100 * abs(rel):.1f}%) | {effect / 3:.2f} | {ok} |")
    return rows


def _metric_cells(results, backbone, src, fraction=1.0, val=False, schedule=1.0) -> List[str]:
    return [_fmt(arm_values(results, backbone, src, fraction, metric, val, schedule)) for metric in (VAL_METRICS if val else (MAP, TOP1, DET))]


def _calib_rows(results) -> List[str]:
    """
    The ``calib`` part: the validation-split runs behind the pre-training recipe, the arms and the
    paired differences that chose it (the study's learning rate against :data:`study.REJECTED_LR`,
    and the study's pre-training against the stand-in it starts from).
    """
    m = study.MAIN
    lr = float(study._config(study.PRETRAIN_CFG[m]).SOLVER.BASE_LR)
    arms = (("ImageNet stand-in", "gen"), (f"hybrid pre-trained, lr {lr:g} (the study's)", _pre()),
            (f"hybrid pre-trained, lr {study.REJECTED_LR:g} (rejected)", _pre(suffix=f"_lr{study.REJECTED_LR:g}")))
    x = study.CALIB_SCHEDULE
    arms = [(name, src, 1.0) for name, src in arms] + [
        (f"ImageNet stand-in, {x:g}x fine-tuning", "gen", x), (f"hybrid pre-trained (the study's), {x:g}x fine-tuning", _pre(), x)]
    rows = ["| init | val mAP | val top-1 | val det AP |", "|---|---|---|---|"]
    rows += [f"| {name} | " + " | ".join(_metric_cells(results, m, src, val=True, schedule=k)) + " |" for name, src, k in arms]
    rows += ["", "| B vs A | B - A (val mAP) [95% CI] | relative |", "|---|---|---|"]
    for (na, a, ka), (nb, b, kb) in ((arms[0], arms[1]), (arms[2], arms[1]), (arms[0], arms[2]), (arms[3], arms[4]), (arms[0], arms[3])):
        d = paired_difference(*(arm_values(results, m, src, 1.0, VAL_METRICS[0], True, k) for src, k in ((a, ka), (b, kb))))
        rows.append(f"| {nb} vs {na} | {d} | {_relative(d)} |")
    return rows


def _sampling_rows(results) -> List[str]:
    """
    The ``sample`` part: fine-tuning from the pre-training with negative sampling (rate
    :data:`study.SAMPLE_RATE`) against exact OIM, both of pre-training seed 0 (the exact arm's
    other pre-training seeds are left out so that the two pair run for run), and what each
    pre-training took.
    """
    m = study.MAIN
    arms = (("exact OIM (r = 1)", _pre()), (f"negative sampling (r = {study.SAMPLE_RATE:g})", _pre(suffix=f"_r{study.SAMPLE_RATE:g}")))
    metrics = (MAP, TOP1, DET)
    values = [[{k: v for k, v in arm_values(results, m, src, 1.0, x).items() if k[0] == 0} for x in metrics] for _, src in arms]
    rows = ["| pre-training OIM | pre-training min | mAP | top-1 | det AP |", "|---|---|---|---|---|"]
    for (name, src), vals in zip(arms, values):
        pre = results.get(src[: -len("_whole")] + "_p0", {}).get("seconds")
        rows.append(f"| {name} | {'-' if pre is None else f'{pre / 60:.1f}'} | " + " | ".join(_fmt(v) for v in vals) + " |")
    d = paired_difference(values[0][0], values[1][0])
    rows += ["", "Sampled - exact, paired by fine-tuning seed: " + ("not run." if d.n == 0 else f"{d} mAP ({_relative(d)}).")]
    return rows


def _plot(path: str, xs, curves: Dict[str, List[Dict]], xlabel: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    plotted = False
    for name, arms in curves.items():
        pts = [(x, np.mean(list(v.values())), np.std(list(v.values()), ddof=1) if len(v) > 1 else 0.0) for x, v in zip(xs, arms) if v]
        if pts:
            x, mean, std = zip(*pts)
            ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=name)
            plotted = True
    ax.set_xlabel(xlabel)
    ax.set_ylabel("search mAP (synthetic PRW), mean ± std")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if plotted:
        ax.legend(fontsize=8)
    else:  # a partial study: say so on the picture instead of an empty legend
        ax.text(0.5, 0.5, "not run yet", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


BUDGET_NOTE = (
    "Minutes are per stage, each stage on one CPU core beside another (`--jobs 2 --threads 1`, "
    "hpps_d2/engine/study.py `SECONDS_PER_ITER`): the study's wall time is about half their sum."
)


def _budget_rows(runs: Sequence[study.Run], results: Dict[str, dict]) -> List[str]:
    rows = ["| kind | backbone | runs | done | planned min each | planned min left | measured min (done) |", "|---|---|---|---|---|---|---|"]
    groups: Dict[Tuple[str, str], List[study.Run]] = {}
    for r in runs:
        groups.setdefault((r.kind, r.backbone), []).append(r)
    total_left = total_done = 0.0
    for (kind, b), rs in groups.items():
        done = [r for r in rs if r.key in results]
        left = sum(study.estimate_minutes(r) for r in rs if r.key not in results)
        measured = sum((results[r.key].get("seconds") or 0) / 60 for r in done)
        total_left, total_done = total_left + left, total_done + measured
        each = np.mean([study.estimate_minutes(r) for r in rs])
        rows.append(f"| {kind} | {b} | {len(rs)} | {len(done)} | {each:.0f} | {left:.0f} | {measured:.0f} |")
    rows.append(f"| all | | {len(runs)} | {sum(r.key in results for r in runs)} | | {total_left:.0f} ({total_left / 60:.1f} h) | {total_done:.0f} ({total_done / 60:.1f} h) |")
    return rows


def _passes_rows(planned: Sequence[study.Run], manifest: dict) -> List[str]:
    rows = ["| pre-training run | source | passes per image | passes per (pseudo-)identity |", "|---|---|---|---|"]
    shown = [r for r in planned if r.kind == "pretrain" and r.key.endswith("_d5_p0")]
    for r in shown:
        for name, (per_image, per_id) in study.pretraining_passes(r, manifest).items():
            rows.append(f"| {r.key} | {name} | {per_image:.1f} | {per_id:.1f} |")
    return rows if shown else []


def write_report(results: Dict[str, dict], out_dir: str, planned: Sequence[study.Run], header: str = "", manifest: Optional[dict] = None) -> str:
    """
    Write ``out_dir/README.md`` and its PNG plots; returns the README's path.

    Args:
        results: see :func:`hpps_d2.engine.study.load_results`.
        planned: the study's full plan (for the budget table and the "not run" cells).
        header: text put first (what ran, how to regenerate), written by the caller.
        manifest: the synthetic world's ``manifest.json``, for the passes-per-identity table.
    """
    m = study.MAIN
    lines = ["# Hybrid pre-training on the synthetic world: the paper's experiments", ""]
    if header:
        lines += [header.strip(), ""]
    lines += ["## Budget", "", BUDGET_NOTE, ""] + _budget_rows(planned, results) + [""]
    passes = _passes_rows(planned, manifest) if manifest else []
    if passes:
        lines += ["## Pre-training schedule: how often each (pseudo-)identity is seen", "",
                  "Every detection box and unlabeled crop is its own OIM identity (the paper's "
                  "unification): its row of the table is written the first time it is seen and "
                  "only pulls features together from the second time on.", ""] + passes + [""]
    lines += ["## Verdicts: every comparison the paper makes", "",
              "Paired by fine-tuning seed (a pre-trained arm with several pre-training seeds is "
              "averaged over them per fine-tuning seed before it is paired with a baseline run of "
              "that seed, so n counts fine-tuning seeds, the independent units); 95% t interval of "
              "the mean difference; **agrees** / **disagrees** when the interval lies wholly on the paper's / the other side of 0, else **not resolved** "
              "(also with a single pair); **not run** while no pair has finished.", ""]
    lines += _verdict_rows(results, comparisons())
    lines.append("")
    # Tab. 1
    lines += ["## Tab. 1: ImageNet stand-in vs hybrid pre-trained, per backbone", "",
              "| backbone | init | mAP | top-1 | det AP |", "|---|---|---|---|---|"]
    for b in study.BACKBONES:
        for name, src in (("random (extra)", "random"), ("ImageNet stand-in", "gen"), ("hybrid pre-trained", _pre(b))):
            cells = _metric_cells(results, b, src)
            if any(c != "not run" for c in cells):
                lines.append(f"| {BACKBONE_NAMES[b]} | {name} | " + " | ".join(cells) + " |")
    lines += ["", "Paper (real data, NAE on PRW, ImageNet -> hybrid): ResNet-50 +10.3%, ResNet-18 +10.9%, ShuffleNet +19.5% relative mAP.", ""]
    lines += ["## Spread check: seed std vs the paper-sized effect", "",
              "The study's target: a cell's seed-to-seed std at most a third of the effect the paper "
              "reports, scaled to this study's mAP level (paired differences cancel part of the "
              "spread, so the verdicts can resolve smaller effects than this check suggests).", ""]
    lines += _spread_rows(results) + [""]
    lines += ["## Calibration: the pre-training recipe on the validation split", "",
              f"Fine-tuned on `{study.VAL_TRAIN}` and evaluated on `{study.VAL_TEST}` (identities of "
              "the synthetic PRW training split held out from it; the test split is never used to "
              "choose): the evidence behind the pre-training learning rate "
              f"(`{study.PRETRAIN_CFG[m]}`). Pairs by fine-tuning seed.", ""]
    lines += _calib_rows(results) + [""]
    lines += ["## Negative sampling in the OIM normaliser (ours, issue 13; no claim of the paper)", "",
              "The study's pre-training with the sharded OIM's Partial FC sampling: the normaliser of "
              "each step over the batch's positives and a random fraction r of the other table rows "
              "(`MODEL.OIM.SAMPLE_RATE`), against the exact normaliser; fine-tuned alike.", ""]
    lines += _sampling_rows(results) + [""]
    for title, rows in (
        ("Tab. 4: re-ID data operation", [("expand_resize", _pre()), ("random_paste", _pre(suffix="_random_paste"))]),
        ("Tab. 5: alignment modules", [("intra-task IAMs", _pre()), ("intra + inter-task", _pre(suffix="_inter"))]),
    ):
        lines += [f"## {title}", "", "| variant | mAP | top-1 | det AP |", "|---|---|---|---|"]
        lines += [f"| {name} | " + " | ".join(_metric_cells(results, m, src)) + " |" for name, src in rows]
        lines.append("")
    # Fig. 5
    arms5 = (("ImageNet stand-in", "gen"), ("whole model", _pre()), ("backbone only", _pre(init="backbone")))
    lines += ["## Fig. 5: fraction of the target training data", "", "| fraction | " + " | ".join(n for n, _ in arms5) + " |", "|---|---|---|---|"]
    curves5 = {n: [] for n, _ in arms5}
    for f in study.FRACTIONS:
        row = []
        for n, src in arms5:
            v = arm_values(results, m, src, f)
            curves5[n].append(v)
            row.append(_fmt(v))
        lines.append(f"| {int(round(f * 100))}% | " + " | ".join(row) + " |")
    lines += ["", "![Fig. 5](fig5_fraction.png)", ""]
    _plot(os.path.join(out_dir, "fig5_fraction.png"), [int(round(f * 100)) for f in study.FRACTIONS], curves5, "% of synthetic PRW training images", "Fig. 5 (synthetic)")
    # Fig. 6
    ks = list(range(2, len(study.DATASETS) + 1))
    lines += ["## Fig. 6: number of pre-training datasets, with and without IAM", "", "| datasets | with IAM | without IAM |", "|---|---|---|"]
    curves6 = {"with IAM": [], "without IAM": []}
    for k in ks:
        a, b = arm_values(results, m, f"pre_{m}_d{k}_whole"), arm_values(results, m, f"pre_{m}_d{k}_noiam_whole")
        curves6["with IAM"].append(a)
        curves6["without IAM"].append(b)
        names = ", ".join(n.replace("synth_", "") for n, _ in study.DATASETS[:k])
        lines.append(f"| {k}: {names} | {_fmt(a)} | {_fmt(b)} |")
    lines += ["", "![Fig. 6](fig6_datasets.png)", ""]
    _plot(os.path.join(out_dir, "fig6_datasets.png"), ks, curves6, "pre-training datasets", "Fig. 6 (synthetic)")
    # size
    lines += ["## Pre-training data size (same passes per image)", "", "| pre-training data | mAP | top-1 | det AP |", "|---|---|---|---|"]
    lines.append("| none (ImageNet stand-in) | " + " | ".join(_metric_cells(results, m, "gen")) + " |")
    curve = []
    for f in study.SIZES:
        curve.append(arm_values(results, m, _size_src(f)))
        lines.append(f"| {_size_name(f)} | " + " | ".join(_metric_cells(results, m, _size_src(f))) + " |")
    lines += ["", "![size](size_curve.png)", ""]
    _plot(os.path.join(out_dir, "size_curve.png"), list(study.SIZES), {"hybrid pre-trained": curve}, "fraction of the synthetic sub-task data", "fine-tuned mAP vs pre-training data")
    # re-ID alone
    lines += ["## Re-ID of the pre-trained model alone (crop protocol, no fine-tuning)", ""]
    reid = sorted(k for k in results if k.startswith("reid_"))
    if reid:
        lines += ["| weights | split | mAP | rank-1 | rank-5 |", "|---|---|---|---|---|"]
        for k in reid:
            for split in study.REID_TEST:
                vals = [_reid_metric(results[k]["metrics"], split, x) for x in ("mAP", "rank1", "rank5")]
                lines.append(f"| {k[len('reid_'):]} | {split} | " + " | ".join("-" if v is None else f"{v:.2f}" for v in vals) + " |")
    else:
        lines.append("not run")
    lines.append("")
    path = os.path.join(out_dir, "README.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _reid_metric(metrics: Dict[str, float], split: str, metric: str) -> Optional[float]:
    for k, v in metrics.items():
        if k.startswith(split + "/") and k.endswith("/" + metric):
            return v
    return None
