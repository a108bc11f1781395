import math

import numpy as np
import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from hpps_d2.data.hybrid_mapper import HybridDatasetMapper
from tests.modeling.conftest import tiny_cfg

EXPECTED_KEYS = {
    "det_rpn_cls", "det_rpn_loc", "det_cls", "det_box_reg", "reid_oim", "ssl_con",
    "adv_det_img", "adv_det_ins", "adv_det_cst", "adv_reid_img", "adv_reid_ins", "adv_reid_cst",
}


def _batch(cfg, records, seed=0):
    np.random.seed(seed)
    mapper = HybridDatasetMapper(cfg)
    return [mapper(r) for r in records]


def test_one_hybrid_step_has_every_loss_finite(hybrid_records):
    cfg = tiny_cfg()
    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    batch = _batch(cfg, hybrid_records)
    with EventStorage():
        losses = model(batch)
    assert set(losses) == EXPECTED_KEYS
    for k, v in losses.items():
        assert v.dim() == 0 and math.isfinite(v.item()), k
    # the consistency loss is a mean negative cosine: within [-eta, eta]
    assert -1.0 <= losses["ssl_con"].item() <= 1.0 and losses["ssl_con"].item() != 0.0
    # fresh OIM tables: every logit is 0, the loss is log(L + Q)
    assert abs(losses["reid_oim"].item() - math.log(60 + 8)) < 1e-4
    sum(losses.values()).backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    model.apply_pending_updates()
    assert model.roi_heads.oim.lut.abs().sum() > 0  # the table learned the persons


def test_switching_terms_off(hybrid_records):
    cfg = tiny_cfg()
    cfg.HPPS.SSL.ENABLED = False
    cfg.HPPS.IAM.DET_ENABLED = False
    cfg.HPPS.IAM.INTER_ENABLED = True
    model = build_model(cfg)
    model.train()
    with EventStorage():
        losses = model(_batch(cfg, hybrid_records))
    assert not any(k.startswith(("ssl_", "adv_det_")) for k in losses)
    assert {"adv_inter_img", "adv_inter_ins", "adv_inter_cst", "adv_reid_img"} <= set(losses)


def test_loss_weights_eta_lambda(hybrid_records):
    out = {}
    for eta, lam in [(1.0, 1.0), (0.5, 2.0)]:
        cfg = tiny_cfg()
        cfg.HPPS.LOSS.ETA, cfg.HPPS.LOSS.LAMBDA = eta, lam
        cfg.HPPS.IAM.DROPOUT = 0.0
        torch.manual_seed(0)
        model = build_model(cfg)
        model.train()
        torch.manual_seed(1)
        with EventStorage():
            out[(eta, lam)] = {k: v.item() for k, v in model(_batch(cfg, hybrid_records)).items()}
    a, b = out[(1.0, 1.0)], out[(0.5, 2.0)]
    assert abs(b["ssl_con"] - 0.5 * a["ssl_con"]) < 1e-5
    assert abs(b["adv_det_img"] - 2.0 * a["adv_det_img"]) < 1e-5
    assert abs(b["det_cls"] - a["det_cls"]) < 1e-6


def test_person_search_inference_and_query_embedding(hybrid_records):
    cfg = tiny_cfg(meta="PersonSearchRCNN")
    model = build_model(cfg)
    model.eval()
    cfg.HPPS.VIEWS.NUM = 1
    view = _batch(cfg, hybrid_records[:1])[0]["views"][0]
    x = {"image": view["image"], "height": 320, "width": 426, "query_boxes": torch.tensor([[20.0, 40, 80, 240]])}
    with torch.no_grad():
        out = model([x])[0]
    inst = out["instances"]
    assert inst.image_size == (320, 426)
    assert inst.pred_embeddings.shape[1] == 256
    if len(inst):
        torch.testing.assert_close(inst.pred_embeddings.norm(dim=1), torch.ones(len(inst)))
        assert (inst.scores >= cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST).all()
    q = out["query_embeddings"]
    assert q.shape == (1, 256) and abs(q.norm().item() - 1) < 1e-5
    # the query box is rescaled from the 320x426 frame to the input frame
    emb = model.embed_boxes([x], [x["query_boxes"]])[0]
    torch.testing.assert_close(emb, q)
    half = dict(x, height=x["image"].shape[1], width=x["image"].shape[2])
    emb_in = model.embed_boxes([half], [x["query_boxes"] / 2])[0]
    torch.testing.assert_close(emb_in, q, atol=1e-4, rtol=1e-4)


def test_training_with_no_person_in_a_view(hybrid_records):
    cfg = tiny_cfg(meta="PersonSearchRCNN")
    model = build_model(cfg)
    model.train()
    img = torch.zeros(3, 160, 213, dtype=torch.uint8)
    inst = Instances((160, 213))
    inst.gt_boxes = Boxes(torch.zeros(0, 4))
    inst.gt_classes = torch.zeros(0, dtype=torch.int64)
    inst.gt_pids = torch.zeros(0, dtype=torch.int64)
    with EventStorage():
        losses = model([{"image": img, "instances": inst, "ignore_boxes": Boxes(torch.tensor([[0.0, 0, 50, 50]]))}])
    assert set(losses) == {"det_rpn_cls", "det_rpn_loc", "det_cls", "det_box_reg", "reid_oim"}
    assert all(math.isfinite(v.item()) for v in losses.values())
