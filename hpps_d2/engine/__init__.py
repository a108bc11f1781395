"""Training: trainers, the CPU/GPU launcher."""
from .launch import launch
from .classification import ClassificationTrainer
from .trainer import HybridPretrainTrainer, PersonSearchTrainer

__all__ = [
    "launch",
    "trainer_class",
    "ClassificationTrainer",
    "HybridPretrainTrainer",
    "PersonSearchTrainer",
]

#: Trainer per meta-architecture.
_TRAINERS = {
    "HybridPretrainRCNN": HybridPretrainTrainer,
    "PersonSearchRCNN": PersonSearchTrainer,
    "ImageClassifier": ClassificationTrainer,  # generic (ImageNet stand-in) pre-training
}


def trainer_class(cfg):
    """The trainer class for ``cfg.MODEL.META_ARCHITECTURE``."""
    name = cfg.MODEL.META_ARCHITECTURE
    if name not in _TRAINERS:
        raise ValueError(f"no trainer for MODEL.META_ARCHITECTURE={name!r}; known: {sorted(_TRAINERS)}")
    return _TRAINERS[name]
