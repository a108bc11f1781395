import os

import numpy as np
import pytest
from detectron2.config import get_cfg
from detectron2.data import MetadataCatalog
from detectron2.structures import BoxMode

from hpps_d2.config import add_hpps_config
from tests.helpers import write_image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Four registered-looking sources for the domain counts of HybridPretrainRCNN.
_SOURCES = {"t_det_a": "detection", "t_det_b": "detection", "t_reid_a": "reid", "t_reid_b": "reid"}
for _name, _task in _SOURCES.items():
    if not hasattr(MetadataCatalog.get(_name), "task"):
        MetadataCatalog.get(_name).set(task=_task)


def tiny_cfg(meta="HybridPretrainRCNN", num_ids=60):
    """The synthetic-world model config, made smaller still for unit tests."""
    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(os.path.join(REPO, "configs", "synth", "Base-Synth-ShuffleNet.yaml"))
    cfg.MODEL.META_ARCHITECTURE = meta
    cfg.MODEL.OIM.NUM_IDENTITIES = num_ids
    cfg.MODEL.OIM.QUEUE_SIZE = 8
    cfg.DATASETS.TRAIN = tuple(_SOURCES)
    cfg.INPUT.MIN_SIZE_TRAIN = (160,)
    cfg.INPUT.MAX_SIZE_TRAIN = 256
    cfg.INPUT.MIN_SIZE_TEST = 160
    cfg.INPUT.MAX_SIZE_TEST = 256
    cfg.HPPS.UNIFY.CANVAS_SIZE = (160, 213)
    cfg.HPPS.IAM.FC_DIMS = (64,)
    cfg.HPPS.IAM.CONV_DIMS = (32,)
    return cfg


@pytest.fixture
def hybrid_records(tmp_path):
    """Unified records: two detection images (two domains) and two re-ID crops (two domains)."""
    rng = np.random.default_rng(0)
    recs = []
    for i in range(2):
        path = write_image(str(tmp_path / f"scene{i}.jpg"), 160, 213, seed=i)
        annos = [
            {"bbox": [10 + 40 * j, 20, 40 + 40 * j, 120], "bbox_mode": BoxMode.XYXY_ABS, "person_id": 10 * i + j, "iscrowd": 0}
            for j in range(3)
        ]
        annos.append({"bbox": [150, 5, 210, 60], "bbox_mode": BoxMode.XYXY_ABS, "person_id": -1, "iscrowd": 1})
        recs.append(
            {"file_name": path, "image_id": f"s{i}", "height": 160, "width": 213, "annotations": annos,
             "source": list(_SOURCES)[i], "task": "detection", "domain": i, "losses": ("det", "oim", "ssl")}
        )
    for i in range(2):
        path = write_image(str(tmp_path / f"crop{i}.jpg"), 96, 40, seed=10 + i)
        recs.append(
            {"file_name": path, "image_id": f"c{i}", "person_id": 40 + i, "crop": True,
             "source": list(_SOURCES)[2 + i], "task": "reid", "domain": i,
             "losses": ("det", "oim") if i == 0 else ("det", "oim", "ssl")}
        )
    del rng
    return recs
