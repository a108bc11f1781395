"""The study runner's plan and report (no training: results are made up here)."""
import json

import pytest

from hpps_d2.engine import study


def test_plan_orders_stages_and_shares_runs():
    runs = study.plan(["tab1", "tab4", "tab5", "reid"], seeds=2)
    keys = [r.key for r in runs]
    assert len(keys) == len(set(keys))
    kinds = [r.kind for r in runs]
    assert kinds == sorted(kinds, key=["pretrain", "finetune", "reid"].index)
    # 3 pre-trainings (base, random_paste, inter); scratch + 3 pre-trained arms per seed; re-ID of
    # the pre-trained and of the randomly initialised model
    assert kinds.count("pretrain") == 3 and kinds.count("finetune") == 8 and kinds.count("reid") == 2
    ft = {r.key: r for r in runs if r.kind == "finetune"}
    r = ft["ft_shufflenet_pre_shufflenet_d5_random_paste_whole_f100_s1"]
    assert r.pretrain == "pre_shufflenet_d5_random_paste" and ("SEED", "1") == r.opts[:2]


def test_plan_selects_curve_points_and_scales_the_long_schedule():
    runs = study.plan(["fig5", "fig6"], seeds=1, fractions=(0.2, 1.0), dataset_counts=(2, 5))
    keys = {r.key for r in runs}
    assert "ft_shufflenet_pre_shufflenet_d5_backbone_f20_s0" in keys
    assert not any("_f60_" in k or "_d3" in k for k in keys)
    assert {"pre_shufflenet_d2", "pre_shufflenet_d2_noiam", "pre_shufflenet_d5_noiam"} <= keys
    d2 = next(r for r in runs if r.key == "pre_shufflenet_d2")
    assert d2.opts[1] == "('synth_crowdhuman_train','synth_msmt17_train',)"
    with pytest.raises(ValueError, match="2..5"):
        study.plan(["fig6"], dataset_counts=(6,))
    long = next(r for r in study.plan(["sched"], seeds=1) if r.kind == "pretrain")
    opts = dict(zip(long.opts[::2], long.opts[1::2]))
    assert (opts["SOLVER.MAX_ITER"], opts["SOLVER.STEPS"]) == ("2400", "(1920,)")
    inits = sorted(r.init for r in study.plan(["sched"], seeds=1) if r.kind == "finetune")
    assert inits == ["backbone", "whole"]


def test_report_tables_gain_and_reid(tmp_path):
    def ft(m, d):
        return {"synth_prw_query/search/mAP": m, "synth_prw_query/search/top1": m / 2, "synth_prw_query/detection/AP": d}

    results = {
        "ft_shufflenet_scratch_f100_s0": ft(4.0, 70.0),
        "ft_shufflenet_scratch_f100_s1": ft(6.0, 72.0),
        "ft_shufflenet_pre_shufflenet_d5_whole_f100_s0": ft(6.0, 80.0),
        "ft_shufflenet_pre_shufflenet_d5_whole_f100_s1": ft(6.5, 82.0),
        "ft_r18_scratch_f100_s0": ft(3.0, 60.0),
        "ft_r18_pre_r18_d5_whole_f100_s0": ft(4.5, 65.0),
        "reid_pre_shufflenet_d5": {"synth_msmt17_query/reid/mAP": 12.5, "synth_msmt17_query/reid/rank1": 30.0},
    }
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "eval_results.json").write_text(json.dumps(results["reid_pre_shufflenet_d5"]))
    assert study._eval_only_results(str(tmp_path / "eval")) == results["reid_pre_shufflenet_d5"]
    with pytest.raises(FileNotFoundError, match="stdout.log"):
        study._eval_only_results(str(tmp_path))
    text = open(study.write_report(results, str(tmp_path), seeds=2)).read()
    # mean ± std over the two seeds, relative gain of the means (6.25 vs 5.0)
    assert "| ShuffleNetV2 x0.5 (256 px) | 5.00 ± 1.00 | 6.25 ± 0.25 | +25.0% | 2.50 ± 0.50 | 3.12 ± 0.12 | 71.00 ± 1.00 | 81.00 ± 1.00 |" in text
    # a single seed is said so, not shown as a mean; a backbone with no run has no row
    assert "| ResNet-18 (256 px) | 3.00 (1 seed) | 4.50 (1 seed) | +50.0% | 1.50 (1 seed) | 2.25 (1 seed) | 60.00 (1 seed) | 65.00 (1 seed) |" in text
    assert "ResNet-50" not in text.split("## Tab. 1")[1].split("Paper (real data")[0]
    assert "| pre_shufflenet_d5 | synth_msmt17_query | 12.50 | 30.00 | - |" in text
    assert "| 20% | not run | not run | not run |" in text
    assert (tmp_path / "fig5_fraction.png").stat().st_size > 1000
