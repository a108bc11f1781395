"""The study's plan, execution bookkeeping and report (no training: results are made up here)."""
import dataclasses
import json

import numpy as np
import pytest
from scipy import stats

from hpps_d2.engine import study, study_report


def _opts(run):
    return dict(zip(run.opts[::2], run.opts[1::2]))


def test_plan_orders_sources_first_and_shares_runs():
    runs = study.plan(["tab1", "tab4", "tab5", "reid"], backbones=("shufflenet",), seeds=3, pre_seeds=2)
    keys = [r.key for r in runs]
    assert len(keys) == len(set(keys))
    kinds = [r.kind for r in runs]
    # one stand-in; pre-training: 2 seeds of the base + random_paste + inter (seed 0)
    assert kinds.count("generic") == 1 and kinds.count("pretrain") == 4
    # per fine-tuning seed: random, gen, base p0, base p1, random_paste, inter = 6 arms x 3 seeds
    assert kinds.count("finetune") == 18
    # re-ID of the pre-trained model, of the stand-in and of random init
    assert sorted(r.key for r in runs if r.kind == "reid") == ["reid_gen_shufflenet", "reid_pre_shufflenet_d5_p0", "reid_shufflenet_random"]
    by = {r.key: r for r in runs}
    ft = by["ft_shufflenet_pre_shufflenet_d5_random_paste_p0_whole_f100_s2"]
    assert ft.source == "pre_shufflenet_d5_random_paste_p0" and _opts(ft)["SEED"] == "2"
    # hybrid pre-training starts from the stand-in; the stand-in from nothing
    pre = by["pre_shufflenet_d5_p1"]
    assert pre.source == "gen_shufflenet" and pre.init == "whole" and _opts(pre)["SEED"] == "1"
    assert by["gen_shufflenet"].source == "" and by["ft_shufflenet_random_f100_s0"].source == ""
    assert by["ft_shufflenet_gen_f100_s1"].source == "gen_shufflenet"
    # every source is planned before the runs that use it
    position = {k: i for i, k in enumerate(keys)}
    assert all(position[r.source] < position[r.key] for r in runs if r.source)
    # priority: the first seed's Tab. 1 comparison is planned before any Tab. 4 run and the second
    # fine-tuning seed
    assert position["ft_shufflenet_pre_shufflenet_d5_p1_whole_f100_s0"] < position["pre_shufflenet_d5_random_paste_p0"]
    assert position["ft_shufflenet_pre_shufflenet_d5_p0_whole_f100_s0"] < position["ft_shufflenet_gen_f100_s1"]
    # the slow backbones of Tab. 1 come after every run of the main one
    both = [r.backbone for r in study.plan(["tab1", "tab5"], backbones=("shufflenet", "r18"), seeds=1, pre_seeds=1)]
    assert both == sorted(both, key=lambda b: b != study.MAIN) and both[-1] == "r18"
    # random-init fine-tunes (in no comparison of the paper) after every other run of the backbone
    assert keys.index("ft_shufflenet_random_f100_s0") > position["ft_shufflenet_pre_shufflenet_d5_inter_p0_whole_f100_s2"]


def test_plan_from_random_init_and_curve_points():
    runs = study.plan(["tab1"], backbones=("r18",), seeds=1, pre_seeds=1, hybrid_from="random")
    assert [r.key for r in runs if r.kind == "pretrain"] == ["pre_r18_d5_rnd_p0"]
    assert next(r for r in runs if r.kind == "pretrain").source == ""
    assert _opts(next(r for r in runs if r.kind == "pretrain"))["MODEL.OIM.SCALE"] == "10.0"
    runs = study.plan(["fig5", "fig6"], seeds=1, fractions=(0.2, 1.0), dataset_counts=(2, 5))
    keys = {r.key for r in runs}
    assert "ft_shufflenet_pre_shufflenet_d5_p0_backbone_f20_s0" in keys and "ft_shufflenet_gen_f20_s0" in keys
    assert not any("_f60_" in k or "_d3" in k for k in keys)
    assert {"pre_shufflenet_d2_p0", "pre_shufflenet_d2_noiam_p0", "pre_shufflenet_d5_noiam_p0"} <= keys
    d2 = next(r for r in runs if r.key == "pre_shufflenet_d2_p0")
    assert _opts(d2)["DATASETS.TRAIN"] == "('synth_crowdhuman_train','synth_msmt17_train',)"
    with pytest.raises(ValueError, match="2..5"):
        study.plan(["fig6"], dataset_counts=(6,))
    with pytest.raises(ValueError, match="unknown part"):
        study.plan(["tab9"])


def test_size_curve_keeps_passes_per_image():
    from detectron2.config import get_cfg

    from hpps_d2.config import add_hpps_config

    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(study.PRETRAIN_CFG["shufflenet"])
    runs = {r.key: r for r in study.plan(["size"], seeds=1, sizes=(0.25, 1.0))}
    quarter = _opts(runs["pre_shufflenet_d5_n0250_p0"])
    assert quarter["DATASETS.TRAIN_FRACTION"] == "0.25"
    # a quarter of the images for a quarter of the iterations: the same passes per image
    assert int(quarter["SOLVER.MAX_ITER"]) == round(cfg.SOLVER.MAX_ITER / 4)
    assert quarter["SOLVER.STEPS"] == "(" + ",".join(str(round(s / 4)) for s in cfg.SOLVER.STEPS) + ",)"
    assert "DATASETS.TRAIN_FRACTION" not in _opts(runs["pre_shufflenet_d5_p0"])


def test_results_of_another_version_are_not_reused(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"ft_shufflenet_scratch_f100_s0": {"x/y/z": 1.0}}))  # the old format
    assert study.load_results(str(path)) == {}
    path.write_text(json.dumps({"version": study.RESULTS_VERSION, "runs": {"a": {"metrics": {}, "seconds": 3}}}))
    assert study.load_results(str(path)) == {"a": {"metrics": {}, "seconds": 3}}


def _ft(m, top1=None, det=70.0):
    return {"metrics": {study_report.MAP: m, study_report.TOP1: m / 2 if top1 is None else top1, study_report.DET: det}, "seconds": 60.0}


def test_arm_values_pair_pretraining_seeds_with_the_baseline_seed():
    results = {
        "ft_r18_gen_f100_s0": _ft(10.0), "ft_r18_gen_f100_s1": _ft(12.0),
        "ft_r18_pre_r18_d5_p0_whole_f100_s0": _ft(11.0), "ft_r18_pre_r18_d5_p0_whole_f100_s1": _ft(13.5),
        "ft_r18_pre_r18_d5_p1_whole_f100_s0": _ft(12.0), "ft_r18_pre_r18_d5_p1_whole_f100_s1": _ft(12.5),
        "ft_r18_pre_r18_d5_p0_backbone_f100_s0": _ft(99.0),  # another arm
        "ft_r18_pre_r18_d5_p0_whole_f60_s0": _ft(99.0),  # another fraction
    }
    pre = study_report.arm_values(results, "r18", "pre_r18_d5_whole")
    assert pre == {(0, 0): 11.0, (0, 1): 13.5, (1, 0): 12.0, (1, 1): 12.5}
    assert study_report.arm_values(results, "r18", "gen") == {0: 10.0, 1: 12.0}
    assert study_report.arm_values(results, "r18", "pre_r18_d5_whole", 0.6) == {(0, 0): 99.0}


def test_report_verdicts_tables_and_budget(tmp_path):
    rng = np.random.default_rng(0)
    results = {}
    gen, whole, paste = [], [], []
    for s in range(3):
        g = 30.0 + s
        results[f"ft_shufflenet_gen_f100_s{s}"] = _ft(g)
        results[f"ft_shufflenet_pre_shufflenet_d5_p0_whole_f100_s{s}"] = _ft(g + 3.0 + 0.1 * s)
        results[f"ft_shufflenet_pre_shufflenet_d5_random_paste_p0_whole_f100_s{s}"] = _ft(g + 3.0 + rng.normal(0, 2))
        gen.append(g), whole.append(g + 3.0 + 0.1 * s)
        paste.append(results[f"ft_shufflenet_pre_shufflenet_d5_random_paste_p0_whole_f100_s{s}"]["metrics"][study_report.MAP])
    results["reid_pre_shufflenet_d5_p0"] = {"metrics": {"synth_msmt17_query/reid/mAP": 12.5, "synth_msmt17_query/reid/rank1": 30.0}, "seconds": 5.0}
    planned = study.plan(["tab1", "tab4", "reid"], backbones=("shufflenet",), seeds=3, pre_seeds=1)
    text = open(study_report.write_report(results, str(tmp_path), planned, header="HEADER")).read()
    assert text.splitlines()[2] == "HEADER"
    # Tab. 1 verdict: differences 3.0, 3.1, 3.2 -> mean 3.1, interval from scipy
    ci = stats.ttest_rel(whole, gen).confidence_interval()
    row = next(l for l in text.splitlines() if l.startswith("| Tab. 1 | ShuffleNetV2"))
    assert f"+3.10 [{ci.low:+.2f}, {ci.high:+.2f}] (n=3)" in row and "**agrees**" in row
    assert f"| {np.mean(gen):.2f} ± {np.std(gen, ddof=1):.2f} |" in row and f"{100 * 3.1 / 31:+.1f}%" in row
    # spread check: gen 30, 31, 32 -> std 1.00; the paper's +19.5% at 31.00 is 6.045 (6.0449... in
    # binary, printed 6.04), a third 2.02 >= 1.00
    spread = next(l for l in text.splitlines() if l.startswith("| Tab. 1 ShuffleNetV2"))
    assert "| 31.00 (n=3) | 1.00 | 6.04 (19.5%) | 2.02 | yes |" in spread
    # Tab. 4's effect (0.59 / 46.49 = 1.27%) at the whole model's 33.0, 34.1, 35.2 (std 1.10):
    # 0.43, a third 0.14 < 1.10
    t4s = next(l for l in text.splitlines() if l.startswith("| Tab. 4 (expand"))
    assert "| 34.10 (n=3) | 1.10 | 0.43 (1.3%) | 0.14 | no |" in t4s
    # a comparison without runs says "not run", its verdict too (never "not resolved")
    r50 = next(l for l in text.splitlines() if l.startswith("| Tab. 1 | ResNet-50"))
    assert "| not run | not run | not run | - | **not run** |" in r50
    # Tab. 4 compares random_paste (A) with expand_resize (B), paper: B above
    t4 = next(l for l in text.splitlines() if l.startswith("| Tab. 4 |"))
    d = np.array(whole) - np.array(paste)
    ci4 = stats.ttest_rel(whole, paste).confidence_interval()
    assert f"{d.mean():+.2f} [{ci4.low:+.2f}, {ci4.high:+.2f}] (n=3)" in t4
    # tables: one run is said so; missing arms say "not run"
    assert "| ShuffleNetV2 x0.5 | ImageNet stand-in | 31.00 ± 1.00 | 15.50 ± 0.50 | 70.00 ± 0.00 |" in text
    assert "| 20% | not run | not run | not run |" in text
    assert "| pre_shufflenet_d5_p0 | synth_msmt17_query | 12.50 | 30.00 | - |" in text
    # budget: every planned run counted, the finished ones with their measured minutes
    total = next(l for l in text.splitlines() if l.startswith("| all |"))
    assert f"| {len(planned)} | {sum(r.key in results for r in planned)} |" in total
    assert (tmp_path / "fig5_fraction.png").stat().st_size > 1000 and (tmp_path / "size_curve.png").exists()


def test_execute_records_each_run_and_resumes(tmp_path, monkeypatch):
    calls = []

    def fake_stage(config, folder, opts, extra_args=(), env=None):
        import os

        calls.append((os.path.basename(folder), list(opts)))
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "results.json"), "w") as f:
            json.dump({"results": {study_report.MAP: 1.0}, "seconds": 2.0}, f)
        open(os.path.join(folder, "model_final.pth"), "w").close()
        return {study_report.MAP: 1.0}

    monkeypatch.setattr(study, "run_stage", fake_stage)
    monkeypatch.setattr(study, "export_generic", lambda ckpt, out: out)
    monkeypatch.setattr(study, "export_whole", lambda ckpt, out: out)
    monkeypatch.setattr(study, "weights_digest", lambda ckpt: "d0")
    runs = [r for r in study.plan(["tab1"], backbones=("shufflenet",), seeds=1, pre_seeds=1)]
    seen = []
    study.execute(runs, str(tmp_path), str(tmp_path / "work"), on_result=lambda res: seen.append(len(res)), jobs=2, threads=1)
    assert seen == list(range(1, len(runs) + 1))
    order = [k for k, _ in calls]
    assert all(order.index(r.source) < order.index(r.key) for r in runs if r.source)  # sources first
    opts = {k: dict(zip(o[::2], o[1::2])) for k, o in calls}
    assert opts["pre_shufflenet_d5_p0"]["MODEL.WEIGHTS"].endswith("gen_shufflenet/init.pth")
    assert opts["ft_shufflenet_pre_shufflenet_d5_p0_whole_f100_s0"]["MODEL.WEIGHTS"].endswith("pre_shufflenet_d5_p0/whole.pth")
    assert "MODEL.WEIGHTS" not in opts["ft_shufflenet_random_f100_s0"]
    calls.clear()
    study.execute(runs, str(tmp_path), str(tmp_path / "work"))  # everything is reused
    assert calls == []
    # A changed pre-training config makes the pre-training and every run started from it stale:
    # they run again, in fresh folders (the old ones moved aside), the others are reused.
    changed = [dataclasses.replace(r, opts=r.opts + ("SOLVER.BASE_LR", "0.002")) if r.kind == "pretrain" else r for r in runs]
    study.execute(changed, str(tmp_path), str(tmp_path / "work"))
    assert sorted(k for k, _ in calls) == sorted(["pre_shufflenet_d5_p0", "ft_shufflenet_pre_shufflenet_d5_p0_whole_f100_s0"])
    assert any(p.name.startswith("pre_shufflenet_d5_p0.stale-") for p in (tmp_path / "work").iterdir())
    # reports leave out what a changed config made stale
    stored = study.load_results(str(tmp_path / "results.json"))
    assert set(study.current_results(stored, changed)) == set(stored)
    assert "pre_shufflenet_d5_p0" not in study.current_results(stored, runs)
    # a folder with no fingerprint (another code version) is never resumed from
    calls.clear()
    stamp = tmp_path / "work" / "ft_shufflenet_gen_f100_s0" / "fingerprint.txt"
    stamp.unlink()
    results = json.loads((tmp_path / "results.json").read_text())
    del results["runs"]["ft_shufflenet_gen_f100_s0"]
    (tmp_path / "results.json").write_text(json.dumps(results))
    study.execute(changed, str(tmp_path), str(tmp_path / "work"))
    assert [k for k, _ in calls] == ["ft_shufflenet_gen_f100_s0"]
    assert (tmp_path / "work" / "ft_shufflenet_gen_f100_s0.stale-unknown-0").is_dir()


def test_pretraining_passes_by_hand():
    run = study.Run("p", "pretrain", "shufflenet", study.PRETRAIN_CFG["shufflenet"], (
        "DATASETS.TRAIN", "('synth_crowdhuman_train','synth_msmt17_train',)", "HPPS.DATA.SOURCE_RATIOS", "(1,3,)",
        "SOLVER.MAX_ITER", "100", "SOLVER.IMS_PER_BATCH", "4", "DATASETS.TRAIN_FRACTION", "0.5",
    ))
    manifest = {"splits": {"crowdhuman_train": {"images": 40, "identities": 0}, "msmt17_train": {"images": 300, "identities": 30}}}
    passes = study.pretraining_passes(run, manifest)
    # 400 images seen: 100 from CrowdHuman (20 images after the 0.5 fraction), 300 from MSMT17 (150)
    assert passes["synth_crowdhuman_train"] == pytest.approx((5.0, 5.0))
    # MSMT17: 2 passes per image; 150 images of 30 identities -> each identity seen 10 times
    assert passes["synth_msmt17_train"] == pytest.approx((2.0, 10.0))


def test_calibration_runs_use_the_validation_split_and_the_rejected_lr():
    runs = {r.key: r for r in study.plan(["calib"], seeds=2)}
    gen, pre = runs["ftval_shufflenet_gen_f100_s1"], runs["ftval_shufflenet_pre_shufflenet_d5_p0_whole_f100_s0"]
    for r in (gen, pre):
        assert _opts(r)["DATASETS.TRAIN"] == "('synth_prw_val_train',)" and _opts(r)["DATASETS.TEST"] == "('synth_prw_val_query',)"
    rejected = runs["pre_shufflenet_d5_lr0.02_p0"]
    assert _opts(rejected)["SOLVER.BASE_LR"] == "0.02" and "SOLVER.BASE_LR" not in _opts(runs["pre_shufflenet_d5_p0"])
    assert study._config(rejected.config, rejected.opts).SOLVER.BASE_LR == 0.02
    assert runs["ftval_shufflenet_pre_shufflenet_d5_lr0.02_p0_whole_f100_s1"].source == rejected.key
    # the fine-tuning budget: the stand-in and the study's pre-training at twice the iterations
    long, short = runs["ftvalx2_shufflenet_gen_f100_s1"], study._config(gen.config, gen.opts).SOLVER
    cfg = study._config(long.config, long.opts).SOLVER
    assert cfg.MAX_ITER == 2 * short.MAX_ITER and tuple(cfg.STEPS) == tuple(2 * x for x in short.STEPS)
    assert _opts(long)["DATASETS.TRAIN"] == "('synth_prw_val_train',)" and long.source == "gen_shufflenet"
    assert runs["ftvalx2_shufflenet_pre_shufflenet_d5_p0_whole_f100_s0"].source == "pre_shufflenet_d5_p0"
    assert len(runs) == 1 + 2 + 3 * 2 + 2 * 2  # stand-in, two pre-trainings, three arms x two seeds, two long arms
    # a long run is no arm of the standard schedule, and the other way round
    both = {"ftval_shufflenet_gen_f100_s0": _ft(50.0), "ftvalx2_shufflenet_gen_f100_s0": _ft(60.0)}
    mv = study_report.VAL_METRICS[0]
    val = {k: {"metrics": {mv: v["metrics"][study_report.MAP]}} for k, v in both.items()}
    assert study_report.arm_values(val, "shufflenet", "gen", 1.0, mv, True, 2.0) == {0: 60.0}
    assert study_report.arm_values(val, "shufflenet", "gen", 1.0, mv, True) == {0: 50.0}
    # the val runs are no test-split arm: they never enter a Tab. 1 cell
    assert study_report.arm_values({"ftval_shufflenet_gen_f100_s0": _ft(50.0)}, "shufflenet", "gen") == {}


def test_report_calibration_section_by_hand(tmp_path):
    mv, tv, dv = study_report.VAL_METRICS

    def ftval(m):
        return {"metrics": {mv: m, tv: 50.0, dv: 80.0}, "seconds": 60.0}

    results = {}
    for s, (g, p, r) in enumerate(((28.0, 48.0, 22.0), (30.0, 47.0, 25.0), (26.0, 49.0, 20.0))):
        results[f"ftval_shufflenet_gen_f100_s{s}"] = ftval(g)
        results[f"ftval_shufflenet_pre_shufflenet_d5_p0_whole_f100_s{s}"] = ftval(p)
        results[f"ftval_shufflenet_pre_shufflenet_d5_lr0.02_p0_whole_f100_s{s}"] = ftval(r)
    text = open(study_report.write_report(results, str(tmp_path), study.plan(["calib"], seeds=3))).read()
    assert "| ImageNet stand-in | 28.00 ± 2.00 | 50.00 ± 0.00 | 80.00 ± 0.00 |" in text
    assert "| hybrid pre-trained, lr 0.002 (the study's) | 48.00 ± 1.00 |" in text
    # study's lr vs stand-in: differences 20, 17, 23 -> mean 20, std 3, t(0.975, 2) = 4.303
    half = stats.t.ppf(0.975, 2) * 3.0 / np.sqrt(3)
    row = next(l for l in text.splitlines() if l.startswith("| hybrid pre-trained, lr 0.002 (the study's) vs ImageNet"))
    assert f"+20.00 [{20 - half:+.2f}, {20 + half:+.2f}] (n=3)" in row and "+71.4%" in row
    # the rejected lr against the stand-in: 22-28, 25-30, 20-26 = -6, -5, -6
    row = next(l for l in text.splitlines() if l.startswith("| hybrid pre-trained, lr 0.02 (rejected) vs ImageNet"))
    assert row.split(" | ")[1].startswith("-5.67 [")
    results["ftvalx2_shufflenet_gen_f100_s0"], results["ftvalx2_shufflenet_gen_f100_s1"] = ftval(40.0), ftval(44.0)
    text = open(study_report.write_report(results, str(tmp_path), study.plan(["calib"], seeds=3))).read()
    assert "| ImageNet stand-in, 2x fine-tuning | 42.00 ± 2.83 |" in text
    row = next(l for l in text.splitlines() if l.startswith("| ImageNet stand-in, 2x fine-tuning vs ImageNet stand-in |"))
    assert row.split(" | ")[1].startswith("+13.00 [")  # 40-28, 44-30 (n = 2)
    # none of it reaches the test-split verdicts
    assert "| Tab. 1 | ShuffleNetV2 x0.5: hybrid pre-trained > ImageNet (stand-in) | +19.5% mAP | not run | not run |" in text


def test_sampling_part_runs_the_sharded_loss_with_the_issue_rate():
    runs = {r.key: r for r in study.plan(["sample"], seeds=2)}
    sampled = runs["pre_shufflenet_d5_r0.1_p0"]
    cfg = study._config(sampled.config, sampled.opts)
    assert cfg.MODEL.OIM.SHARDED is True and cfg.MODEL.OIM.SAMPLE_RATE == 0.1
    # the exact arm is the study's pre-training itself (one run shared with Tab. 1)
    exact = runs["pre_shufflenet_d5_p0"]
    assert "MODEL.OIM.SAMPLE_RATE" not in _opts(exact) and study._config(exact.config, exact.opts).MODEL.OIM.SHARDED is False
    # apart from the two OIM keys, the sampled pre-training is the exact one
    assert _opts(sampled) == {**_opts(exact), "MODEL.OIM.SHARDED": "True", "MODEL.OIM.SAMPLE_RATE": "0.1"}
    assert runs["ft_shufflenet_pre_shufflenet_d5_r0.1_p0_whole_f100_s1"].source == sampled.key
    assert len(runs) == 1 + 2 + 2 * 2  # stand-in, two pre-trainings, two arms x two seeds


def test_report_sampling_section_by_hand(tmp_path):
    results = {"pre_shufflenet_d5_p0": {"seconds": 1320.0}, "pre_shufflenet_d5_r0.1_p0": {"seconds": 1260.0}}
    for s, (exact, sampled, other_seed) in enumerate(((48.0, 47.0, 10.0), (50.0, 48.0, 10.0), (49.0, 49.0, 10.0))):
        results[f"ft_shufflenet_pre_shufflenet_d5_p0_whole_f100_s{s}"] = _ft(exact)
        results[f"ft_shufflenet_pre_shufflenet_d5_r0.1_p0_whole_f100_s{s}"] = _ft(sampled)
        # a second pre-training seed of the exact arm: not in this comparison (no sampled p1)
        results[f"ft_shufflenet_pre_shufflenet_d5_p1_whole_f100_s{s}"] = _ft(other_seed)
    text = open(study_report.write_report(results, str(tmp_path), study.plan(["sample"], seeds=3))).read()
    assert "| exact OIM (r = 1) | 22.0 | 49.00 ± 1.00 |" in text
    assert "| negative sampling (r = 0.1) | 21.0 | 48.00 ± 1.00 |" in text
    # differences -1, -2, 0: mean -1, std 1, n 3
    half = stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)
    assert f"Sampled - exact, paired by fine-tuning seed: -1.00 [{-1 - half:+.2f}, {-1 + half:+.2f}] (n=3) mAP (-2.0%)." in text


def test_tab1_more_adds_seeds_to_the_main_rows_only():
    runs = {r.key: r for r in study.plan(["tab1_more"], backbones=("shufflenet", "r18"), seeds=3, tab1_seeds=5)}
    fts = sorted(k for k, r in runs.items() if r.kind == "finetune")
    assert fts == sorted(
        [f"ft_shufflenet_{src}_f100_s{s}" for s in (3, 4) for src in ("gen", "random", "pre_shufflenet_d5_p0_whole", "pre_shufflenet_d5_p1_whole")]
    )
    assert all(r.backbone == "shufflenet" for r in runs.values())
    # planned after sample and calib, before Tab. 4
    keys = [r.key for r in study.plan(list(study.PARTS[:5]), backbones=("shufflenet",))]
    assert keys.index("ft_shufflenet_pre_shufflenet_d5_r0.1_p0_whole_f100_s2") < keys.index("ft_shufflenet_gen_f100_s3") < keys.index("pre_shufflenet_d5_random_paste_p0")


def test_execute_rebuilds_a_finished_source_whose_weights_are_gone(tmp_path, monkeypatch):
    """A study resumed on another machine (or after its work folder was removed) keeps the
    recorded results, but a run still to do that starts from a finished run whose checkpoint is
    gone gets that source (and, recursively, the source's source) trained again first, with the
    rebuild recorded; it never fails on a missing file, and nothing else is rerun."""
    import os

    calls = []
    digests = {"gen_shufflenet": "g", "pre_shufflenet_d5_p0": "p"}

    def fake_stage(config, folder, opts, extra_args=(), env=None):
        key = os.path.basename(folder)
        calls.append(key)
        for o in opts:
            if isinstance(o, str) and o.endswith(".pth"):
                assert os.path.exists(os.path.join(os.path.dirname(o), "model_final.pth")), f"{key} started from missing {o}"
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "results.json"), "w") as f:
            json.dump({"results": {}, "seconds": 1.0}, f)
        open(os.path.join(folder, "model_final.pth"), "w").close()
        return {study_report.MAP: 2.0} if key.startswith("gen") else {}

    monkeypatch.setattr(study, "run_stage", fake_stage)
    monkeypatch.setattr(study, "export_generic", lambda ckpt, out: out)
    monkeypatch.setattr(study, "export_whole", lambda ckpt, out: out)
    monkeypatch.setattr(study, "weights_digest", lambda ckpt: digests.get(os.path.basename(os.path.dirname(ckpt)), "x"))
    runs = list(study.plan(["tab1"], backbones=("shufflenet",), seeds=1, pre_seeds=1))
    work = tmp_path / "work"
    study.execute(runs, str(tmp_path), str(work))
    first = study.load_results(str(tmp_path / "results.json"))
    assert first["pre_shufflenet_d5_p0"]["weights_sha256"] == "p"
    # the work folder is lost and one fine-tune is still to do
    import shutil

    shutil.rmtree(work)
    data = json.loads((tmp_path / "results.json").read_text())
    del data["runs"]["ft_shufflenet_pre_shufflenet_d5_p0_whole_f100_s0"]
    (tmp_path / "results.json").write_text(json.dumps(data))
    calls.clear()
    digests["pre_shufflenet_d5_p0"] = "p2"  # this rebuild does not reproduce the weights
    study.execute(runs, str(tmp_path), str(work))
    assert calls == ["gen_shufflenet", "pre_shufflenet_d5_p0", "ft_shufflenet_pre_shufflenet_d5_p0_whole_f100_s0"]
    after = study.load_results(str(tmp_path / "results.json"))
    assert after["gen_shufflenet"]["rebuilt"][0] == {"reproduced": True, "previous_metrics": {study_report.MAP: 2.0}, "previous_weights_sha256": "g"}
    assert after["pre_shufflenet_d5_p0"]["rebuilt"][0]["reproduced"] is False
    assert after["pre_shufflenet_d5_p0"]["weights_sha256"] == "p2"
    # the fine-tunes recorded before are kept as they were
    assert after["ft_shufflenet_gen_f100_s0"] == first["ft_shufflenet_gen_f100_s0"]
    # with the weights back, nothing runs again
    calls.clear()
    study.execute(runs, str(tmp_path), str(work))
    assert calls == []


def test_weights_digest_is_of_the_model_tensors_only(tmp_path):
    import torch

    def save(name, model, **rest):
        torch.save(dict(model=model, **rest), tmp_path / name)
        return study.weights_digest(str(tmp_path / name))

    model = {"a": torch.tensor(3.0), "b": torch.ones(2, 3, dtype=torch.bfloat16), "n": torch.tensor(5), "e": torch.zeros(0)}
    d = save("x.pth", model, iteration=3)
    assert len(d) == 64
    # key order, iteration and optimizer state are not the weights
    assert save("y.pth", dict(reversed(list(model.items()))), iteration=9, optimizer={"lr": 0.1}) == d
    # one value, one dtype or one shape changed is another model
    assert save("v.pth", dict(model, a=torch.tensor(3.5))) != d
    assert save("t.pth", dict(model, n=torch.tensor(5.0))) != d
    assert save("s.pth", dict(model, b=torch.ones(3, 2, dtype=torch.bfloat16))) != d
