"""Top-k accuracy on a hand-computed case."""

import pytest
import torch

from hpps_d2.evaluation.classification_evaluator import ClassificationEvaluator


def test_topk_by_hand():
    # 6 classes; targets ranked 1st, 2nd, 6th and 5th among their logits
    logits = torch.tensor(
        [
            [0.0, 5.0, 1.0, 2.0, 3.0, 4.0],  # target 1: best            -> top1, top5
            [9.0, 8.0, 1.0, 2.0, 3.0, 4.0],  # target 1: second           -> top5
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],  # target 0: last (6th)       -> neither
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],  # target 1: 5th              -> top5
        ]
    )
    ev = ClassificationEvaluator("t")
    ev.reset()
    ev.process([{"class_id": 1}, {"class_id": 1}], [{"logits": logits[0]}, {"logits": logits[1]}])
    ev.process([{"class_id": 0}, {"class_id": 1}], [{"logits": logits[2]}, {"logits": logits[3]}])
    res = ev.evaluate()["classification"]
    assert res["top1"] == pytest.approx(25.0) and res["top5"] == pytest.approx(75.0)
    assert res["num_images"] == 4 and res["num_classes"] == 6
    ev.reset()
    with pytest.raises(ValueError, match="no image"):
        ev.evaluate()
