"""
The paper's experiments, rerun on the synthetic world (``tools/run_study.py``): the plan of runs
and their execution. The report (tables, verdicts, plots) is :mod:`.study_report`.

Every run is a training stage (:func:`hpps_d2.engine.runs.run_stage`) in its own folder under the
study's work folder, so the study resumes where it stopped and its parts can be run separately.
Initialisations, as in the paper's comparisons:

* ``gen``: the **ImageNet stand-in**: a person-free classification pre-training of the backbone
  on the synthetic object/texture set (``configs/synth/generic_pretrain_<backbone>.yaml``),
  exported in torchvision's format and converted by the path real ImageNet weights take
  (:func:`hpps_d2.engine.runs.export_generic`). The paper's baseline; one run per backbone, as
  everyone fine-tunes from the same ImageNet model.
* ``pre_*``: hybrid pre-training on the five synthetic sub-task sets, **started from ``gen``**
  (the paper fine-tunes ImageNet-initialised models and does not say where pre-training starts; a
  pre-training from ImageNet is what its Fig. 2 and the methods it builds on imply. Ours,
  switchable: ``hybrid_from="random"``). Fine-tuned from the whole model or its backbone only.
* ``random``: random initialisation, an extra row (not in the paper).

Parts (``PARTS``):

* ``tab1``: gen vs hybrid whole model per backbone (paper Tab. 1), with ``pre_seeds``
  pre-training seeds; random init as an extra row;
* ``tab4``: pre-training with expand_resize vs random_paste (Tab. 4);
* ``tab5``: intra-task alignment only vs intra + inter-task alignment (Tab. 5);
* ``fig5``: 20..100% of the target training images, gen vs whole model vs backbone only (Fig. 5);
* ``fig6``: 2..5 pre-training datasets, with and without the IAMs (Fig. 6);
* ``size``: fine-tuned mAP vs the amount of pre-training data (a nested fraction of every sub-task
  set, the same passes per image: iterations scale with the fraction), for the paper's conclusion
  that performance keeps improving with more pre-training images;
* ``reid``: crop re-ID of the pre-trained model alone on the synthetic MSMT17 / CUHK03 test sets,
  against the stand-in and random initialisation;
* ``tab1_more``: more fine-tuning seeds for the Tab. 1 rows of :data:`MAIN` (seeds ``seeds`` ..
  ``tab1_seeds - 1``): at 3 seeds its ImageNet stand-in arm varied by 7.8 mAP (std), three times
  the spread check's target, and the verdict stayed unresolved (results/notes.md);
* ``calib``: the calibration record, on the **validation split** only (``synth_prw_val_train`` /
  ``synth_prw_val_query``, identities carved out of the PRW training split): fine-tuning from the
  stand-in, from the study's pre-training, and from a pre-training at the rejected learning rate
  :data:`REJECTED_LR`, so the choice of the pre-training recipe (docs/synthetic_world.md) is
  reproducible from the repository with its seed spread; and the stand-in and the study's
  pre-training fine-tuned :data:`CALIB_SCHEDULE` times longer (``ftvalx2_*``), the fine-tuning
  budget lever.
* ``sample``: the study's pre-training with Partial FC's negative sampling in the OIM normaliser
  (``MODEL.OIM.SHARDED`` with ``SAMPLE_RATE`` :data:`SAMPLE_RATE`) against exact OIM (the
  study's pre-training, r = 1), fine-tuned alike: what sampling costs in fine-tuned mAP (issue 13;
  no claim of the paper).

Fine-tuning uses one schedule for every arm (the synthetic configs'), over ``seeds`` seeds shared
by all arms, so the runs of one seed pair up (:mod:`.comparison`). Nothing is tuned on the test
split: the world and the schedules were calibrated on ``synth_prw_val_*`` (docs/synthetic_world.md).
"""
import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
import threading
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .runs import REPO, export_generic, export_whole, run_stage

__all__ = ["Run", "PARTS", "plan", "execute", "load_results", "estimate_minutes", "fingerprint", "current_results"]

logger = logging.getLogger(__name__)

BACKBONES = ("shufflenet", "r18", "r50")
GENERIC_CFG = {b: f"configs/synth/generic_pretrain_{b}.yaml" for b in BACKBONES}
PRETRAIN_CFG = {b: f"configs/synth/pretrain_{b}.yaml" for b in BACKBONES}
FINETUNE_CFG = {b: f"configs/synth/finetune_prw_{b}.yaml" for b in BACKBONES}
#: The backbone of every part but Tab. 1 (the cheapest; the paper's Tab. 4-5 and Fig. 5-6 use R50).
MAIN = "shufflenet"
TEST = "synth_prw_query"
#: ``calib``: the validation split of the synthetic PRW training identities (docs/synthetic_world.md).
VAL_TRAIN, VAL_TEST = "synth_prw_val_train", "synth_prw_val_query"
#: ``calib``: the pre-training learning rate that the validation runs rejected (ShuffleNet, 0.02:
#: 22.0 val mAP against 48.6 at the configs' 0.002, one seed each, 2026-12-02).
REJECTED_LR = 0.02
#: ``calib``: the longer fine-tuning schedule tried for the stand-in and the study's pre-training
#: (x the configs' iterations): at 3,200 iterations the stand-in's fine-tuning OIM loss was still
#: falling (5.9 -> 3.5-4.1, 0.6-0.8 per 800 iterations at the end) and its seed spread was 7.8 mAP.
CALIB_SCHEDULE = 2.0
#: ``sample``: the negative-sampling rate r, the issue's 0.1 (the rate of Partial FC's
#: WebFace12M config, deepinsight/insightface recognition/arcface_torch/configs/
#: wf12m_flip_pfc01_filter04_r50.py L13; its base.py default is 1, no sampling).
SAMPLE_RATE = 0.1
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
#: ``size``: fractions of every pre-training set (1.0: the whole synthetic sub-task data).
SIZES = (0.125, 0.25, 0.5, 1.0)
PARTS = ("tab1", "sample", "calib", "tab1_more", "tab4", "tab5", "fig5", "fig6", "size", "reid")
REID_TEST = ("synth_msmt17_query", "synth_cuhk03_labeled_query")
#: Seconds per training iteration of one 1-thread stage beside another on the project's 2 CPU
#: cores, used only for the budget estimate of :func:`estimate_minutes` (results/README.md,
#: "Budget"). Measured 2026-12-02 (ShuffleNet: generic 800 it in 5.6 min, pre-training 0.73 s/it
#: alone, fine-tuning 1,161-1,406 s for 3,200 it beside another run; R18 generic 400 it in 16 min);
#: the R18 pre-training / fine-tuning and all R50 entries are guesses until their first run.
SECONDS_PER_ITER = {
    ("generic", "shufflenet"): 0.42, ("generic", "r18"): 2.4, ("generic", "r50"): 6.0,
    ("pretrain", "shufflenet"): 0.8, ("pretrain", "r18"): 1.6, ("pretrain", "r50"): 3.0,
    ("finetune", "shufflenet"): 0.4, ("finetune", "r18"): 0.8, ("finetune", "r50"): 1.4,
    ("reid", "shufflenet"): 0.0, ("reid", "r18"): 0.0, ("reid", "r50"): 0.0,
}


@dataclasses.dataclass(frozen=True)
class Run:
    """One training (or evaluation) stage of the study."""

    key: str  # folder name under the study's work folder, unique
    kind: str  # "generic" | "pretrain" | "finetune" | "reid"
    backbone: str
    config: str
    opts: Tuple[str, ...] = ()
    source: str = ""  # key of the run whose weights it starts from ("" = random init)
    init: str = ""  # "whole" | "backbone": what of ``source`` a fine-tuning takes



def _config(config: str, opts: Sequence[str] = ()):
    """The full config of a study run: ``config`` (relative to the repository) + ``opts``."""
    from detectron2.config import get_cfg

    from ..config import add_hpps_config

    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(os.path.join(REPO, config))
    cfg.merge_from_list(list(opts))
    return cfg


def _solver_opts(config: str, scale: float) -> Tuple[str, ...]:
    """MAX_ITER, STEPS, CHECKPOINT_PERIOD of ``config`` multiplied by ``scale``."""
    cfg = _config(config)
    s = cfg.SOLVER

    def it(x):
        return str(max(1, int(round(x * scale))))

    steps = "(" + ",".join(it(x) for x in s.STEPS) + ",)"
    warmup = str(min(s.WARMUP_ITERS, max(1, int(round(s.MAX_ITER * scale)) // 4)))
    return ("SOLVER.MAX_ITER", it(s.MAX_ITER), "SOLVER.STEPS", steps, "SOLVER.CHECKPOINT_PERIOD", it(s.CHECKPOINT_PERIOD), "SOLVER.WARMUP_ITERS", warmup)


def _datasets_opts(k: int) -> Tuple[str, ...]:
    names, sizes = zip(*DATASETS[:k])
    return ("DATASETS.TRAIN", "(" + ",".join(f"'{n}'" for n in names) + ",)", "HPPS.DATA.SOURCE_RATIOS", "(" + ",".join(map(str, sizes)) + ",)")


def _generic(backbone: str) -> Run:
    return Run(f"gen_{backbone}", "generic", backbone, GENERIC_CFG[backbone], ("SEED", "0"))


def _pretrain(backbone=MAIN, k=5, iam=True, canvas="expand_resize", inter=False, size=1.0, seed=0, hybrid_from="generic", lr=None, sample_rate=None) -> Run:
    """A hybrid pre-training run; ``lr``: SOLVER.BASE_LR instead of the config's (``calib``);
    ``sample_rate``: the sharded OIM with that negative-sampling rate (``sample``)."""
    key = f"pre_{backbone}_d{k}" + ("" if iam else "_noiam") + ("" if canvas == "expand_resize" else f"_{canvas}")
    key += ("_inter" if inter else "") + (f"_n{int(round(size * 1000)):04d}" if size != 1.0 else "")
    key += ("_rnd" if hybrid_from == "random" else "") + (f"_lr{lr:g}" if lr is not None else "")
    key += (f"_r{sample_rate:g}" if sample_rate is not None else "") + f"_p{seed}"
    opts = ("SEED", str(seed)) + _datasets_opts(k)
    if lr is not None:
        opts += ("SOLVER.BASE_LR", repr(float(lr)))
    if sample_rate is not None:
        opts += ("MODEL.OIM.SHARDED", "True", "MODEL.OIM.SAMPLE_RATE", repr(float(sample_rate)))
    opts += ("HPPS.UNIFY.REID_CANVAS", canvas, "HPPS.IAM.DET_ENABLED", str(iam), "HPPS.IAM.REID_ENABLED", str(iam), "HPPS.IAM.INTER_ENABLED", str(inter))
    if size != 1.0:  # a nested fraction of every set, the same passes per image
        opts += ("DATASETS.TRAIN_FRACTION", str(size)) + _solver_opts(PRETRAIN_CFG[backbone], size)
    if hybrid_from == "random":  # from scratch OIM needs the base's scale 10 (Base-Synth-ShuffleNet.yaml)
        opts += ("MODEL.OIM.SCALE", "10.0")
    source = f"gen_{backbone}" if hybrid_from == "generic" else ""
    return Run(key, "pretrain", backbone, PRETRAIN_CFG[backbone], opts, source, "whole" if source else "")


def _finetune(backbone: str, seed: int, source: Optional[Run] = None, init="whole", fraction=1.0, val=False, schedule=1.0) -> Run:
    """Fine-tuning from ``source`` (a generic or pre-training run; None = random init); ``val``:
    trained and evaluated on the validation split (key ``ftval_*``) instead of train / test;
    ``schedule``: the config's iterations (and decay steps) times this (key ``ftvalx2_*``)."""
    if source is None:
        src = "random"
    elif source.kind == "generic":
        src = "gen"
    else:
        src = f"{source.key}_{init}"
    kind = ("ftval" if val else "ft") + ("" if schedule == 1.0 else f"x{schedule:g}")
    key = f"{kind}_{backbone}_{src}_f{int(round(fraction * 100))}_s{seed}"
    opts = ("SEED", str(seed), "DATASETS.TRAIN_FRACTION", str(fraction), "HPPS.FINETUNE.INIT", init)
    if schedule != 1.0:
        opts += _solver_opts(FINETUNE_CFG[backbone], schedule)
    if val:
        opts += ("DATASETS.TRAIN", f"('{VAL_TRAIN}',)", "DATASETS.TEST", f"('{VAL_TEST}',)")
    return Run(key, "finetune", backbone, FINETUNE_CFG[backbone], opts, source.key if source else "", init if source else "")


def _reid(backbone: str, source: Optional[Run]) -> Run:
    """Crop re-ID (--eval-only) of ``source``'s weights; None: the randomly initialised model."""
    opts = ("DATASETS.TEST", "(" + ",".join(f"'{n}'" for n in REID_TEST) + ",)")
    if source is None:
        return Run(f"reid_{backbone}_random", "reid", backbone, PRETRAIN_CFG[backbone], opts + ("MODEL.WEIGHTS", ""))
    return Run(f"reid_{source.key}", "reid", backbone, PRETRAIN_CFG[backbone], opts, source.key, "whole")


def plan(
    parts: Sequence[str],
    backbones: Sequence[str] = ("shufflenet", "r18"),
    seeds: int = 3,
    pre_seeds: int = 2,
    fractions: Sequence[float] = FRACTIONS,
    dataset_counts: Sequence[int] = tuple(range(2, len(DATASETS) + 1)),
    sizes: Sequence[float] = SIZES,
    hybrid_from: str = "generic",
    tab1_seeds: int = 5,
) -> List[Run]:
    """
    Every run the selected parts need, each once, sources before the runs that use them, in
    priority order (the order :func:`execute` starts them in).

    Args:
        backbones: Tab. 1 rows (the other parts use :data:`MAIN`).
        seeds: fine-tuning seeds of every arm.
        pre_seeds: pre-training seeds of the Tab. 1 rows (other parts: pre-training seed 0).
        fractions, dataset_counts, sizes: the points of Fig. 5, Fig. 6 and the size curve.
        hybrid_from: "generic" (hybrid pre-training starts from the stand-in) or "random".
        tab1_seeds: fine-tuning seeds of the Tab. 1 rows of :data:`MAIN` with ``tab1_more``.
    """
    if hybrid_from not in ("generic", "random"):
        raise ValueError(f"hybrid_from must be 'generic' or 'random', got {hybrid_from!r}")
    runs: Dict[str, Run] = {}

    def add(*rs: Run):
        for r in rs:
            runs.setdefault(r.key, r)

    def pre(**kw) -> Run:
        r = _pretrain(hybrid_from=hybrid_from, **kw)
        if r.source:
            add(_generic(r.backbone))
        add(r)
        return r

    for part in parts:
        if part not in PARTS:
            raise ValueError(f"unknown part {part!r}; parts: {PARTS}")
        if part == "fig6" and any(not 2 <= k <= len(DATASETS) for k in dataset_counts):
            raise ValueError(f"Fig. 6 dataset counts are 2..{len(DATASETS)}, got {tuple(dataset_counts)}")
        if part == "size" and any(not 0 < f <= 1 for f in sizes):
            raise ValueError(f"size-curve fractions must be in (0, 1], got {tuple(sizes)}")
        main_gen = _generic(MAIN)
        for s in range(tab1_seeds if part == "tab1_more" else seeds):
            if part == "tab1" or (part == "tab1_more" and s >= seeds):
                for b in (backbones if part == "tab1" else [MAIN]):
                    gen = _generic(b)
                    add(gen, _finetune(b, s), _finetune(b, s, gen))
                    for p in range(pre_seeds):
                        add(_finetune(b, s, pre(backbone=b, seed=p)))
            elif part == "calib":
                add(main_gen, _finetune(MAIN, s, main_gen, val=True))
                for lr in (None, REJECTED_LR):
                    add(_finetune(MAIN, s, pre(lr=lr), val=True))
            elif part == "sample":
                for r in (None, SAMPLE_RATE):
                    add(_finetune(MAIN, s, pre(sample_rate=r)))
            elif part == "tab4":
                for canvas in ("expand_resize", "random_paste"):
                    add(_finetune(MAIN, s, pre(canvas=canvas)))
            elif part == "tab5":
                for inter in (False, True):
                    add(_finetune(MAIN, s, pre(inter=inter)))
            elif part == "fig5":
                base = pre()
                for f in fractions:
                    add(main_gen, _finetune(MAIN, s, main_gen, fraction=f))
                    for init in ("whole", "backbone"):
                        add(_finetune(MAIN, s, base, init, f))
            elif part == "fig6":
                for k in dataset_counts:
                    for iam in (True, False):
                        add(_finetune(MAIN, s, pre(k=k, iam=iam)))
            elif part == "size":
                add(main_gen, _finetune(MAIN, s, main_gen))
                for f in sizes:
                    add(_finetune(MAIN, s, pre(size=f)))
        if part == "calib":  # the fine-tuning budget, after the lr runs of every seed
            for s in range(seeds):
                for src in (main_gen, pre()):
                    add(_finetune(MAIN, s, src, val=True, schedule=CALIB_SCHEDULE))
        if part == "reid":
            add(main_gen, _reid(MAIN, pre()), _reid(MAIN, main_gen), _reid(MAIN, None))
    # Priority order (execution starts ready runs in this order): the parts as given, each seed by
    # seed, so that finished comparisons accumulate early; then the random-init fine-tunes (an
    # extra row, in no comparison of the paper); the Tab. 1 rows of the other backbones (the
    # slowest runs) last. Sources stay before their runs: they are added first and share the
    # backbone of the runs that use them.
    return sorted(runs.values(), key=lambda r: (r.backbone != MAIN, r.kind == "finetune" and not r.source))


def _iterations(run: Run) -> int:
    opts = dict(zip(run.opts[::2], run.opts[1::2]))
    if "SOLVER.MAX_ITER" in opts:
        return int(opts["SOLVER.MAX_ITER"])
    cfg = _config(run.config)
    return int(cfg.SOLVER.MAX_ITER)


def estimate_minutes(run: Run) -> float:
    """Planned minutes of ``run`` on 2 CPU cores (:data:`SECONDS_PER_ITER`; evaluations ~2 min)."""
    evaluation = 2.0 if run.kind in ("finetune", "reid") else 0.5
    return _iterations(run) * SECONDS_PER_ITER[(run.kind, run.backbone)] / 60 + evaluation


# -------------------------------------------------------------------------------------------- #
# execution
# -------------------------------------------------------------------------------------------- #
RESULTS_VERSION = 2


def load_results(path: str) -> Dict[str, dict]:
    """
    ``results.json`` of a study: run key -> ``{"metrics": {split/task/metric: value},
    "seconds": wall time}``. A file of another version (older code) is not reused: its numbers
    predate the model they would be compared with.
    """
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or data.get("version") != RESULTS_VERSION:
        logger.warning(f"{path}: results of an older study format; not reused (rerun the study)")
        return {}
    return data["runs"]


def _config_texts(config: str) -> List[str]:
    """The text of ``config`` (relative to the repository) and of its ``_BASE_`` chain."""
    import yaml

    path = os.path.join(REPO, config)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    base = (yaml.safe_load(text) or {}).get("_BASE_")
    if not base:
        return [text]
    return [text] + _config_texts(os.path.relpath(os.path.join(os.path.dirname(path), base), REPO))


def fingerprint(run: Run, by_key: Dict[str, Run]) -> str:
    """
    What a run computes: a hash of its yaml files (with their ``_BASE_`` chain) and opts and,
    recursively, of its source's. A finished run whose recorded fingerprint differs (a config
    changed since) is run again, and so is everything started from it. Code defaults
    (``add_hpps_config``) are not part of it, so a new config key at a default that keeps the old
    behaviour leaves finished runs valid; a change of what the code computes bumps
    :data:`RESULTS_VERSION` instead.
    """
    h = hashlib.sha256("\0".join(_config_texts(run.config)).encode())
    h.update(json.dumps([run.kind, run.init, list(run.opts)]).encode())
    if run.source:
        h.update(fingerprint(by_key[run.source], by_key).encode())
    return h.hexdigest()[:16]


def current_results(results: Dict[str, dict], runs: Sequence[Run]) -> Dict[str, dict]:
    """The entries of ``results`` made with the current configs of ``runs`` (same fingerprint);
    a run whose config changed since it finished is left out of reports until it runs again."""
    by_key = {r.key: r for r in runs}
    return {k: v for k, v in results.items() if k not in by_key or v.get("fingerprint") == fingerprint(by_key[k], by_key)}


def _save(path: str, runs: Dict[str, dict]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"version": RESULTS_VERSION, "runs": runs}, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _final(work_dir: str, key: str) -> str:
    """The final checkpoint of run ``key`` in the study's work folder."""
    return os.path.join(work_dir, key, "model_final.pth")


def _weights(run: Run, source: Run, work_dir: str) -> str:
    """The MODEL.WEIGHTS file through which ``run`` starts from ``source``."""
    folder = os.path.join(work_dir, source.key)
    final = _final(work_dir, source.key)
    if source.kind == "generic":
        return export_generic(final, os.path.join(folder, "init.pth"))
    if run.kind == "reid":
        return final
    return export_whole(final, os.path.join(folder, "whole.pth"))


#: One export at a time: two stages starting from the same source must not write its file together.
_EXPORT_LOCK = threading.Lock()


def _claim_folder(folder: str, print_: str) -> None:
    """
    Make ``folder`` the run's: a folder left by another config (its ``fingerprint.txt`` differs
    or is missing) is moved aside to ``<folder>.stale-<its fingerprint>-<n>``, never resumed from
    or reused; then the run's fingerprint is written.
    """
    stamp = os.path.join(folder, "fingerprint.txt")
    if os.path.isdir(folder):
        old = open(stamp, encoding="utf-8").read().strip() if os.path.exists(stamp) else "unknown"
        if old == print_:
            return
        n = 0
        while os.path.exists(f"{folder}.stale-{old}-{n}"):
            n += 1
        logger.warning(f"{folder}: left by another config (fingerprint {old}); moved to {folder}.stale-{old}-{n}")
        os.replace(folder, f"{folder}.stale-{old}-{n}")
    os.makedirs(folder)
    with open(stamp, "w", encoding="utf-8") as f:
        f.write(print_ + "\n")


def weights_digest(checkpoint: str) -> str:
    """
    SHA-256 of the model tensors of a detectron2 checkpoint (names, dtypes, shapes and bytes, in
    name order; optimizer, scheduler and iteration left out), so that a rebuilt run can say
    whether it reproduced the weights its recorded dependents started from.
    """
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state = state.get("model", state)
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name]
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _sources_to_rebuild(todo: Sequence[Run], results: Dict[str, dict], by_key: Dict[str, Run], work_dir: str) -> List[str]:
    """
    Finished runs that a run still to do starts from (directly or through its source's source)
    whose checkpoint is no longer in ``work_dir`` (the study resumed on another machine, or its
    work folder was cleared): they are trained again, in plan order, before what needs them.
    """
    rebuild: List[str] = []
    stack = [r.source for r in todo if r.source]
    while stack:
        key = stack.pop()
        if key in rebuild or key not in results or os.path.exists(_final(work_dir, key)):
            continue
        rebuild.append(key)
        if by_key[key].source:
            stack.append(by_key[key].source)
    return rebuild


def _rebuild_record(old: dict, new: dict) -> dict:
    """
    Whether a rebuilt run reproduced the recorded one (``old``) that its recorded dependents
    started from: the same metrics and, where both hold one, the same weights digest (CPU
    training with a fixed seed is meant to be deterministic); ``None``: nothing to compare by.
    """
    same = [new["metrics"] == old["metrics"]] if old.get("metrics") else []
    if "weights_sha256" in old and "weights_sha256" in new:
        same.append(new["weights_sha256"] == old["weights_sha256"])
    record = {"reproduced": all(same) if same else None, "previous_metrics": old.get("metrics", {})}
    if "weights_sha256" in old:
        record["previous_weights_sha256"] = old["weights_sha256"]
    return record


def _run_one(r: Run, by_key: Dict[str, Run], work_dir: str, threads: int, print_: str) -> dict:
    folder = os.path.join(work_dir, r.key)
    _claim_folder(folder, print_)
    opts = list(r.opts)
    if r.source:
        with _EXPORT_LOCK:
            opts += ["MODEL.WEIGHTS", _weights(r, by_key[r.source], work_dir)]
    extra = ["--eval-only"] if r.kind == "reid" else []
    env = {"OMP_NUM_THREADS": str(threads)} if threads > 0 else None
    metrics = run_stage(r.config, folder, opts, extra_args=extra, env=env)
    if r.kind == "reid":
        metrics = _eval_only_results(folder)
    with open(os.path.join(folder, "results.json"), encoding="utf-8") as f:
        seconds = json.load(f).get("seconds")
    entry = {"metrics": metrics, "seconds": seconds}
    final = _final(work_dir, r.key)
    if r.kind != "reid" and os.path.exists(final):
        entry["weights_sha256"] = weights_digest(final)
    return entry


def execute(
    runs: Sequence[Run],
    out_dir: str,
    work_dir: str,
    on_result: Optional[Callable[[Dict[str, dict]], object]] = None,
    jobs: int = 1,
    threads: int = 0,
) -> Dict[str, dict]:
    """
    Run (or reuse) every stage in ``work_dir/<key>`` (checkpoints, logs); the results of each are
    added to ``out_dir/results.json`` as soon as it finishes (see :func:`load_results`), and
    ``on_result(results)`` is called then (the tool rewrites the report).

    Args:
        jobs: stages run at the same time (each a process); a stage starts once its source has
            finished, in plan order otherwise.
        threads: ``OMP_NUM_THREADS`` of each stage (0: inherited). On the project's 2 shared CPU
            cores (2026-12-02), two 800-iteration ShuffleNet fine-tunes of 1 thread each took 313 s
            and 327 s side by side against 284 s for one alone: about 1.8x the throughput.
    """
    path = os.path.join(out_dir, "results.json")
    results = load_results(path)
    by_key = {r.key: r for r in runs}
    prints = {r.key: fingerprint(r, by_key) for r in runs}
    for r in runs:
        entry = results.get(r.key)
        if entry is not None and entry.get("fingerprint") != prints[r.key]:
            # a config (or a source's) changed since it ran: its numbers and folder are stale
            logger.warning(f"{r.key}: finished with another config (fingerprint {entry.get('fingerprint')} != {prints[r.key]}); running it again")
            del results[r.key]
    todo = [r for r in runs if r.key not in results]
    rebuild = set(_sources_to_rebuild(todo, results, by_key, work_dir))
    for key in sorted(rebuild):
        logger.warning(f"{key}: finished, but {_final(work_dir, key)} is gone and a run to do starts from it; training it again (recorded as a rebuild)")
    todo = [r for r in runs if r.key not in results or r.key in rebuild]
    lock = threading.Lock()
    total = len(runs)

    def finished(r: Run, entry: dict) -> None:
        with lock:
            entry = dict(entry, fingerprint=prints[r.key])
            if r.key in rebuild:
                record = _rebuild_record(results[r.key], entry)
                entry["rebuilt"] = results[r.key].get("rebuilt", []) + [record]
                rebuild.discard(r.key)
                if record["reproduced"] is False:
                    logger.warning(f"{r.key}: the rebuild did not reproduce the recorded run; runs recorded before started from the old weights")
            results[r.key] = entry
            _save(path, results)
            if on_result is not None:
                on_result(results)

    with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
        running: Dict[concurrent.futures.Future, Run] = {}
        while todo or running:
            ready = [r for r in todo if not r.source or (r.source in results and r.source not in rebuild)]
            while ready and len(running) < max(1, jobs):
                r = ready.pop(0)
                todo.remove(r)
                logger.info(f"[{total - len(todo) - len(running)}/{total}] {r.key} (about {estimate_minutes(r):.0f} min)")
                running[pool.submit(_run_one, r, by_key, work_dir, threads, prints[r.key])] = r
            if not running:
                missing = sorted({r.source for r in todo})
                raise RuntimeError(f"runs wait for sources that are not planned or failed: {missing}")
            done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                r = running.pop(future)
                finished(r, future.result())  # a failed stage raises here (StageFailed)
    return results


def _eval_only_results(folder: str) -> Dict[str, float]:
    """The ``split/task/metric`` results an --eval-only run wrote to ``eval_results.json``."""
    path = os.path.join(folder, "eval_results.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: the --eval-only run wrote no results (see {folder}/stdout.log)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def pretraining_passes(run: Run, manifest: dict) -> Dict[str, Tuple[float, float]]:
    """
    How often a pre-training run sees each image and each (pseudo-)identity of every source.

    The hybrid sampler draws each image of a batch from source ``i`` with probability
    ``SOURCE_RATIOS[i] / sum`` (:mod:`hpps_d2.data.samplers`), so over ``MAX_ITER`` iterations
    of ``IMS_PER_BATCH`` images a source of ``n`` images (after ``DATASETS.TRAIN_FRACTION``) has
    ``MAX_ITER * IMS_PER_BATCH * share / n`` passes per image. Every detection box and every
    unlabeled crop is its own pseudo-identity (the paper's unification), seen once per pass of its
    image; a labeled re-ID identity is seen once per pass of each of its images.

    Args:
        manifest: the world's ``manifest.json`` (split counts).

    Returns:
        catalog name -> (passes per image, passes per identity).
    """
    cfg = _config(run.config, run.opts)
    names = list(cfg.DATASETS.TRAIN)
    ratios = [float(r) for r in cfg.HPPS.DATA.SOURCE_RATIOS] or None
    counts = {}
    for n in names:
        split = manifest["splits"][n[len("synth_"):] if n.startswith("synth_") else n]
        images = max(1, int(round(split["images"] * cfg.DATASETS.TRAIN_FRACTION)))
        counts[n] = (images, split.get("identities") or 0)
    weights = ratios if ratios else [counts[n][0] for n in names]
    seen = cfg.SOLVER.MAX_ITER * cfg.SOLVER.IMS_PER_BATCH
    out = {}
    for n, w in zip(names, weights):
        images, ids = counts[n]
        per_image = seen * w / sum(weights) / images
        out[n] = (per_image, per_image * images / ids if ids else per_image)
    return out
