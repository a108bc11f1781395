"""
Evaluation: the standard person-search protocols (CUHK-SYSU, PRW, PoseTrack21), gallery detection
AP / recall, and the crop re-ID protocol, vectorised with numpy.

* :mod:`.search_protocol`: the ranking algorithm of docs/datasets.md section 9;
  :mod:`.search_galleries`: the gallery of each benchmark, with its edge rules.
* :mod:`.detection_eval`: detection AP x recall, all boxes and labeled only, ignore regions.
* :mod:`.reid_eval`: the torchreid-style CMC / mAP of section 10.
* :class:`PersonSearchEvaluator`, :class:`ReIDEvaluator`: detectron2 ``DatasetEvaluator`` s.
* :mod:`.test_mapper`: the test mapper and the loaders that feed them.
"""

from .detection_eval import DetectionResult, evaluate_detection
from .person_search_evaluator import PersonSearchEvaluator
from .ranking import average_precision
from .reid_eval import ReIDResult, evaluate_reid, evaluate_reid_distmat
from .reid_evaluator import ReIDEvaluator
from .search_galleries import (
    FULL_SET,
    search_cuhk_sysu,
    search_posetrack21,
    search_prw,
)
from .search_protocol import GalleryDetections, SearchResult, run_search
from .test_mapper import (
    PersonSearchTestMapper,
    build_reid_test_loader,
    build_search_test_loader,
)

__all__ = [
    "FULL_SET",
    "DetectionResult",
    "GalleryDetections",
    "PersonSearchEvaluator",
    "PersonSearchTestMapper",
    "ReIDEvaluator",
    "ReIDResult",
    "SearchResult",
    "average_precision",
    "build_reid_test_loader",
    "build_search_test_loader",
    "evaluate_detection",
    "evaluate_reid",
    "evaluate_reid_distmat",
    "run_search",
    "search_cuhk_sysu",
    "search_posetrack21",
    "search_prw",
]
