"""
The test-time data path of person search and crop re-ID: one mapper and two loaders.

A person-search evaluation runs the model once over the gallery split and the query split
together. The loaders tag every record with its role, which the mapper passes through to the
evaluators:

* ``"gallery_index"``: position of the image in the gallery split (its detections are stored);
* ``"query_indices"``: positions in the query split of the queries whose boxes the input carries
  as ``"query_boxes"`` (their embeddings are stored), one per box, in order;
* ``"reid_role"`` (``"query"`` or ``"gallery"``) and ``"reid_index"``: a re-ID crop.

By default the queries of one image are merged into one input, and into the gallery input of the
same image when there is one: the model embeds given boxes and detects in the same forward pass
(hpps_d2/modeling/meta_arch/person_search.py), so each image is read and run once.
"""

import copy
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import DatasetCatalog, build_detection_test_loader
from detectron2.data import transforms as T

from ..data.image_io import check_pixel_statistics, read_image

__all__ = [
    "GALLERY_INDEX",
    "QUERY_INDICES",
    "REID_INDEX",
    "REID_ROLE",
    "PersonSearchTestMapper",
    "build_reid_test_loader",
    "build_search_test_loader",
    "reid_eval_records",
    "search_eval_records",
]

GALLERY_INDEX = "gallery_index"
QUERY_INDICES = "query_indices"
REID_ROLE = "reid_role"
REID_INDEX = "reid_index"
_PASSED = (GALLERY_INDEX, QUERY_INDICES, REID_ROLE, REID_INDEX)
#: Record fields a test input needs (everything else, e.g. CUHK-SYSU gallery lists, is dropped).
_IMAGE_FIELDS = ("file_name", "image_id", "height", "width", "image_source")


def _is_crop(record: dict) -> bool:
    return REID_ROLE in record or (
        "person_id" in record and "annotations" not in record and "query" not in record
    )


class PersonSearchTestMapper:
    """
    Record -> model input for evaluation: the image read in ``INPUT.FORMAT`` (RGB in every shipped
    config; built from a config, PIXEL_MEAN/PIXEL_STD in the other order are refused) and resized by
    ``ResizeShortestEdge(MIN_SIZE_TEST, MAX_SIZE_TEST)``, as a uint8 (3, H, W) tensor, with
    ``"height"``/``"width"`` (original size), ``"image_id"``, the role tags, and
    ``"query_boxes"`` (K, 4) float32 XYXY in original coordinates for inputs that carry queries:
    the loader's merged boxes, a query record's ``query.bbox``, or ``[0, 0, w, h]`` for a crop.
    """

    @configurable
    def __init__(self, *, image_format: str = "BGR", min_size: int = 800, max_size: int = 1333):
        """
        Args:
            image_format: channel order given to the model (``cfg.INPUT.FORMAT``).
            min_size, max_size: test resize; ``min_size <= 0`` keeps the original size.
        """
        self.image_format = image_format
        self.resize = T.ResizeShortestEdge([min_size, min_size], max_size) if min_size > 0 else None

    @classmethod
    def from_config(cls, cfg):
        # the images are read in INPUT.FORMAT and normalised by the model channel by channel
        check_pixel_statistics(cfg.INPUT.FORMAT, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD)
        return {
            "image_format": cfg.INPUT.FORMAT,
            "min_size": cfg.INPUT.MIN_SIZE_TEST,
            "max_size": cfg.INPUT.MAX_SIZE_TEST,
        }

    def __call__(self, record: dict) -> dict:
        image = read_image(record, self.image_format)
        height, width = image.shape[:2]
        expected = (record.get("height"), record.get("width"))
        if None not in expected and expected != (height, width):
            raise ValueError(
                f"{record.get('file_name')}: the record says {expected[0]}x{expected[1]} "
                f"(height x width), the image is {height}x{width}"
            )
        if self.resize is not None:
            image = self.resize.get_transform(image).apply_image(image)
        out = {
            "image": torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "height": height,
            "width": width,
            "image_id": record["image_id"],
        }
        out.update({k: record[k] for k in _PASSED if k in record})
        boxes = self._query_boxes(record, height, width)
        if boxes is not None:
            out["query_boxes"] = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        return out

    @staticmethod
    def _query_boxes(record, height, width) -> Optional[list]:
        if record.get("query_boxes") is not None:
            return record["query_boxes"]
        if _is_crop(record):
            return [[0.0, 0.0, float(width), float(height)]]
        if "query" in record:
            return [list(record["query"]["bbox"])]
        return None


def _image_fields(record: dict) -> dict:
    return {k: copy.deepcopy(record[k]) for k in _IMAGE_FIELDS if k in record}


def search_eval_records(
    query_records: Sequence[dict], gallery_records: Sequence[dict], merge: bool = True
) -> List[dict]:
    """
    The inputs of one person-search evaluation: every gallery image (tagged ``gallery_index``),
    and every query (``query_indices`` + ``query_boxes``). With ``merge``, the queries of one image
    share one input, the gallery input of that image when it exists (same ``file_name``);
    otherwise each query is its own input.
    """
    records: List[dict] = []
    by_image: Dict[str, dict] = {}
    for i, g in enumerate(gallery_records):
        r = _image_fields(g)
        r[GALLERY_INDEX] = i
        records.append(r)
        if merge:
            by_image[g["image_id"]] = r
    for q, query in enumerate(query_records):
        r = by_image.get(query["image_id"]) if merge else None
        if r is None or r.get("file_name") != query.get("file_name"):
            r = _image_fields(query)
            records.append(r)
            if merge:
                by_image[query["image_id"]] = r
        r.setdefault(QUERY_INDICES, []).append(q)
        r.setdefault("query_boxes", []).append([float(v) for v in query["query"]["bbox"]])
    return records


def reid_eval_records(query_records: Sequence[dict], gallery_records: Sequence[dict]) -> List[dict]:
    """The crops of a re-ID evaluation, tagged ``reid_role`` / ``reid_index``."""
    records = []
    for role, split in (("query", query_records), ("gallery", gallery_records)):
        for i, rec in enumerate(split):
            r = _image_fields(rec)
            r[REID_ROLE], r[REID_INDEX] = role, i
            records.append(r)
    return records


def build_search_test_loader(cfg, query_name: str, gallery_name: str, merge: bool = True):
    """detectron2 test loader over a person-search query split and its gallery split."""
    records = search_eval_records(
        DatasetCatalog.get(query_name), DatasetCatalog.get(gallery_name), merge=merge
    )
    return build_detection_test_loader(
        records, mapper=PersonSearchTestMapper(cfg), num_workers=cfg.DATALOADER.NUM_WORKERS
    )


def build_reid_test_loader(cfg, query_name: str, gallery_name: str):
    """detectron2 test loader over a crop re-ID query split and its gallery split."""
    records = reid_eval_records(DatasetCatalog.get(query_name), DatasetCatalog.get(gallery_name))
    return build_detection_test_loader(
        records, mapper=PersonSearchTestMapper(cfg), num_workers=cfg.DATALOADER.NUM_WORKERS
    )
