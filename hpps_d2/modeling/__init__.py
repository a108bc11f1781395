"""Models: the person-search RCNN, its backbones and heads, and the hybrid pre-training losses."""
# Importing these modules registers their classes in detectron2's registries.
from .backbone import shufflenet  # noqa: F401
from .meta_arch.classifier import ImageClassifier
from .meta_arch.hybrid_pretrain import HybridPretrainRCNN
from .meta_arch.person_search import PersonSearchRCNN
from .proposal_generator.ignore_rpn import IgnoreAwareRPN
from .roi_heads.norm_aware_roi_heads import NormAwareROIHeads

__all__ = ["ImageClassifier", "HybridPretrainRCNN", "PersonSearchRCNN", "IgnoreAwareRPN", "NormAwareROIHeads"]
