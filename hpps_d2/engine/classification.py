"""
``ClassificationTrainer``: the generic (ImageNet-style) pre-training of a backbone with the
project's training machinery, for MODEL.META_ARCHITECTURE ``"ImageClassifier"``.

It is the person-search trainer with classification data: the same deterministic, resumable step
(:class:`~hpps_d2.engine.trainer.DeterministicStepTrainer`: per-step seeds, gradient clipping,
AMP), the same seeded data stream (:class:`~hpps_d2.data.build.DeterministicTrainLoader`), the
optimizer, LR schedule, checkpointer and writers of
:class:`~hpps_d2.engine.trainer.PersonSearchTrainer`;
records come from ``DATASETS.TRAIN`` (classification splits, e.g. ``synth_imagenet_train``)
through :class:`~hpps_d2.data.classification_mapper.ClassificationTrainMapper`, and
``DATASETS.TEST`` splits are scored by top-1 / top-5 accuracy
(:class:`~hpps_d2.evaluation.classification_evaluator.ClassificationEvaluator`).
"""

import json
import logging
import os
from collections import OrderedDict
from typing import Dict

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.evaluation.testing import flatten_results_dict
from detectron2.utils import comm

from ..config.check import ConfigError, _dataset_problems, _device_problems
from ..data.build import train_subset
from ..data.classification_mapper import (
    ClassificationTrainMapper,
    build_classification_test_loader,
)
from ..evaluation.classification_evaluator import ClassificationEvaluator
from .trainer import PersonSearchTrainer

__all__ = ["ClassificationTrainer", "check_classification_config"]

logger = logging.getLogger(__name__)


def check_classification_config(cfg) -> None:
    """Device, DATASETS.TRAIN / TEST registered and of task "classification", all at once.

    Raises:
        ConfigError: listing every problem found.
    """
    problems = _device_problems(cfg)
    if not cfg.DATASETS.TRAIN:
        problems.append("DATASETS.TRAIN is empty: name at least one classification split")
    for role in ("TRAIN", "TEST"):
        names = list(getattr(cfg.DATASETS, role))
        problems += _dataset_problems(names, role, False)
        for n in names:
            known = n in DatasetCatalog.list()
            task = getattr(MetadataCatalog.get(n), "task", None) if known else "?"
            if task not in ("classification", "?"):
                problems.append(
                    f"DATASETS.{role}: {n!r} has task {task!r}; an ImageClassifier trains and is "
                    "evaluated on 'classification' splits (imagenet_*, synth_imagenet_*)"
                )
    if problems:
        raise ConfigError("the config cannot train:\n  " + "\n  ".join(problems))


class ClassificationTrainer(PersonSearchTrainer):
    """Trains an :class:`~hpps_d2.modeling.meta_arch.classifier.ImageClassifier` on
    ``cfg.DATASETS.TRAIN``; ``MODEL.CLASSIFIER.NUM_CLASSES = 0`` is counted from the records."""

    def check_config(self, cfg) -> None:
        check_classification_config(cfg)

    def complete_config(self, cfg, train_data: Dict) -> None:
        if cfg.MODEL.CLASSIFIER.NUM_CLASSES <= 0:
            cfg.MODEL.CLASSIFIER.NUM_CLASSES = train_data["num_classes"]
            logger.info(
                f"classifier: {cfg.MODEL.CLASSIFIER.NUM_CLASSES} classes counted from "
                f"{list(cfg.DATASETS.TRAIN)}"
            )

    def load_train_data(self, cfg) -> Dict:
        """Records per training split (one class space: the splits must share their class ids)."""
        sources, records = [], []
        for name in cfg.DATASETS.TRAIN:
            recs = train_subset(DatasetCatalog.get(name), cfg.DATASETS.TRAIN_FRACTION)
            if not recs:
                raise ValueError(f"{name}: no training image")
            sources.append(len(recs))
            records.extend(recs)
        return {
            "records": records,
            "sizes": sources,
            "num_classes": 1 + max(int(r["class_id"]) for r in records),
        }

    def build_train_mapper(self, cfg):
        return ClassificationTrainMapper(cfg)

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        """Top-k accuracy on every split of ``cfg.DATASETS.TEST``, keyed by split name; also
        written (flattened) to ``OUTPUT_DIR/eval_results.json`` by the main process."""
        del evaluators
        results = OrderedDict()
        for name in cfg.DATASETS.TEST:
            loader = build_classification_test_loader(cfg, DatasetCatalog.get(name))
            results[name] = inference_on_dataset(model, loader, ClassificationEvaluator(name))
            if comm.is_main_process():
                logger.info(f"evaluation on {name}:")
                print_csv_format(results[name])
        if comm.is_main_process() and cfg.OUTPUT_DIR and results:
            os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
            path = os.path.join(cfg.OUTPUT_DIR, "eval_results.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(flatten_results_dict(results), f, indent=1, sort_keys=True)
        return results
