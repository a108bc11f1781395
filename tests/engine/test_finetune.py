"""Fine-tuning pieces: nested training fractions, whole/backbone initialisation, evaluation hook."""
import json
import os

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from hpps_d2.checkpoint.init import load_init_weights, select_init_keys
from hpps_d2.data.build import train_subset
from tests.engine.conftest import FAST, REPO, run_tool
from tests.modeling.conftest import tiny_cfg


def test_train_fraction_is_deterministic_and_nested():
    records = [{"image_id": f"img{i:03d}"} for i in range(50)]
    shuffled = records[::-1]
    sub20 = train_subset(records, 0.2)
    assert len(sub20) == 10
    assert train_subset(shuffled, 0.2) == sub20[::-1]  # same images whatever the input order
    sub60 = train_subset(records, 0.6)
    assert len(sub60) == 30 and {r["image_id"] for r in sub20} < {r["image_id"] for r in sub60}
    assert train_subset(records, 1.0) is records
    assert sub60 == [r for r in records if r in sub60]  # original order kept


def test_whole_vs_backbone_initialisation(tmp_path):
    cfg = tiny_cfg(meta="HybridPretrainRCNN")
    torch.manual_seed(0)
    pre = build_model(cfg)
    path = str(tmp_path / "pre.pth")
    torch.save({"model": pre.state_dict()}, path)
    keys = select_init_keys(pre.state_dict(), "backbone")
    assert keys and all(k.startswith(("backbone.", "roi_heads.trunk.")) for k in keys)
    whole = select_init_keys(pre.state_dict(), "whole")
    assert not any(k.startswith(("ssl_", "iam_", "roi_heads.oim.")) for k in whole)
    assert "roi_heads.embedding.rescaler.weight" in whole and "proposal_generator.rpn_head.conv.weight" in whole

    for mode in ("whole", "backbone"):
        ft_cfg = tiny_cfg(meta="PersonSearchRCNN", num_ids=7)
        torch.manual_seed(1)
        model = build_model(ft_cfg)
        load_init_weights(DetectionCheckpointer(model), path, mode)
        sd, ref = model.state_dict(), pre.state_dict()
        assert torch.equal(sd["backbone.stage3.0.branch1.0.weight"], ref["backbone.stage3.0.branch1.0.weight"])
        assert torch.equal(sd["roi_heads.trunk.conv5.0.weight"], ref["roi_heads.trunk.conv5.0.weight"])
        same_head = torch.equal(sd["roi_heads.embedding.projectors.0.0.weight"], ref["roi_heads.embedding.projectors.0.0.weight"])
        assert same_head == (mode == "whole")
        assert sd["roi_heads.oim.lut"].shape[0] == 7  # the fine-tuning table keeps its own size


def test_finetune_evaluates_with_the_hook_and_eval_only(datasets_root, tmp_path):
    cfg = os.path.join(REPO, "configs", "synth", "finetune_prw_shufflenet.yaml")
    out = str(tmp_path / "ft")
    res = run_tool(["tools/train_net.py", "--config-file", cfg, *FAST, "SOLVER.MAX_ITER", "3", "OUTPUT_DIR", out], datasets_root)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [json.loads(x) for x in open(os.path.join(out, "metrics.json"))]
    evals = {k: v for x in lines for k, v in x.items() if k.startswith("synth_prw_query/")}
    for key in ("search/mAP", "search/top1", "search/mAP_cross_cam", "detection/AP", "detection/recall_labeled"):
        assert f"synth_prw_query/{key}" in evals
        assert 0.0 <= evals[f"synth_prw_query/{key}"] <= 100.0
    res = run_tool(
        ["tools/train_net.py", "--config-file", cfg, "--eval-only", *FAST, "MODEL.WEIGHTS", os.path.join(out, "model_final.pth"), "OUTPUT_DIR", str(tmp_path / "ev")],
        datasets_root,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "copypaste: Task: search" in res.stdout
    # --eval-only also leaves its flattened results on disk, equal to the hook's final evaluation
    with open(tmp_path / "ev" / "eval_results.json", encoding="utf-8") as f:
        ev = json.load(f)
    last = [x for x in lines if "synth_prw_query/search/mAP" in x][-1]
    for key in ("synth_prw_query/search/mAP", "synth_prw_query/search/top1", "synth_prw_query/detection/AP"):
        assert abs(ev[key] - last[key]) < 1e-6, key
