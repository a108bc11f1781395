"""
Top-k accuracy of a classifier on a labeled split (ImageNet's metric: top-1 and top-5 accuracy in
percent, as torchvision references/classification/utils.py ``accuracy`` computes it: the target
among the k largest logits). Ties: ``accuracy`` takes ``output.topk``, whose order among equal
logits is unspecified; here a target tied with others counts as ranked before them (ours: a
defined result; float logits of a trained network are practically never tied).
"""

from collections import OrderedDict
from typing import Sequence

import torch
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

__all__ = ["ClassificationEvaluator"]


class ClassificationEvaluator(DatasetEvaluator):
    """
    Args:
        dataset_name: named in the results.
        topk: the k of the top-k accuracies reported (k larger than the class count is skipped).

    ``process(inputs, outputs)``: inputs carry ``"class_id"`` (int), outputs ``"logits"`` (K,).
    ``evaluate()`` gathers over ranks and returns, on the main process only,
    ``{"classification": {"top1": %, "top5": %, "num_images": N, "num_classes": K}}``.
    """

    def __init__(self, dataset_name: str, topk: Sequence[int] = (1, 5)):
        self.dataset_name = dataset_name
        self.topk = tuple(int(k) for k in topk)
        self.reset()

    def reset(self):
        self._ranks = []  # (the rank of each target among its logits) per image

    def process(self, inputs, outputs):
        for x, y in zip(inputs, outputs):
            logits = y["logits"].detach().float().cpu()
            target = int(x["class_id"])
            # rank = number of classes scored strictly higher than the target (ties favour it)
            self._ranks.append((int((logits > logits[target]).sum()), logits.numel()))

    def evaluate(self):
        ranks = self._ranks
        if comm.get_world_size() > 1:
            parts = comm.gather(ranks, dst=0)
            if not comm.is_main_process():
                return {}
            ranks = [r for part in parts for r in part]
        if not ranks:
            raise ValueError(f"{self.dataset_name}: no image was evaluated")
        k_classes = ranks[0][1]
        r = torch.tensor([a for a, _ in ranks])
        out = OrderedDict()
        for k in self.topk:
            if k <= k_classes:
                out[f"top{k}"] = 100.0 * float((r < k).float().mean())
        out["num_images"] = len(ranks)
        out["num_classes"] = k_classes
        return {"classification": out}
