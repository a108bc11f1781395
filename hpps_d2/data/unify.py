"""
Data unification for hybrid pre-training (paper, "Data unification"; Fig. 3b).

Sub-task datasets carry different supervision. Unification turns all of them into one record
schema so that one model and one loss (Eq. 1) serve every image:

* **identities**: labeled re-ID ids are made globally unique (each dataset's ids relabelled to a
  contiguous block, blocks in the order the datasets are given; fast-reid's "prefix by dataset, then
  relabel"). Every person box of a detection dataset and every unlabeled re-ID crop then gets its
  own new **pseudo-identity** (the paper's :math:`\\hat n`), numbered after all labeled ids.
  Ignore regions get none. The total is the size of the OIM lookup table.
* **domains**: one per source dataset, numbered separately within the detection task
  (:math:`D_1..D_M`) and within the re-ID task (:math:`R_1..R_N`), for the two intra-task alignment
  modules.
* **losses**: which terms of Eq. 1 an image feeds: every image feeds detection (``"det"``) and OIM
  (``"oim"``); images of detection datasets and of unlabeled re-ID datasets also feed the
  self-supervised consistency loss (``"ssl"``, Eq. 5-6).

Unified record (a scene record of :mod:`hpps_d2.data.datasets`, plus)::

    {
        "source": str,            # catalog name of the dataset
        "task": "detection" | "reid",
        "domain": int,            # index of the source within its task
        "losses": tuple[str],     # subset of ("det", "oim", "ssl")
        "annotations": [... "person_id": global id (>= 0) or UNLABELED for ignore regions ...],
    }

A re-ID crop has no scene yet: its unified record has ``"crop": True`` and ``"person_id"`` (the
global id) instead of ``"annotations"``; the mapper places it on a canvas (:mod:`.canvas`).
"""
import dataclasses
import logging
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from detectron2.data import DatasetCatalog, MetadataCatalog

from .crop_records import CropRecords, chain_records
from .datasets.common import UNLABELED, relabel_contiguous

__all__ = ["SourceInfo", "UnifiedData", "unify", "load_unified", "LOSSES"]

logger = logging.getLogger(__name__)

#: Loss terms fed by each kind of source, keyed by (task, labeled).
LOSSES: Dict[Tuple[str, bool], Tuple[str, ...]] = {
    ("detection", False): ("det", "oim", "ssl"),
    ("reid", True): ("det", "oim"),
    ("reid", False): ("det", "oim", "ssl"),
}


@dataclasses.dataclass
class SourceInfo:
    """
    What unification did with one source dataset.

    Attributes:
        name: catalog name.
        task: "detection" or "reid".
        labeled: whether its persons carry identity labels.
        domain: index within its task.
        num_images: records of this source.
        id_range: [start, stop) of the global identities it owns.
        losses: loss terms its images feed.
    """

    name: str
    task: str
    labeled: bool
    domain: int
    num_images: int
    id_range: Tuple[int, int]
    losses: Tuple[str, ...]


@dataclasses.dataclass
class UnifiedData:
    """
    Attributes:
        records: unified records of every source, in source order (a list; a
            :class:`~.crop_records.ChainedRecords` when a source is held as
            :class:`~.crop_records.CropRecords`).
        sources: one :class:`SourceInfo` per source, in the given order.
        num_identities: labeled + pseudo identities (rows of the OIM lookup table).
        num_labeled: identities that come from labels.
    """

    records: Sequence[dict]
    sources: List[SourceInfo]
    num_identities: int
    num_labeled: int

    @property
    def num_pseudo(self) -> int:
        return self.num_identities - self.num_labeled

    def domains(self, task: str) -> List[str]:
        """Source names of ``task`` in domain order."""
        return [s.name for s in sorted(self.sources, key=lambda s: s.domain) if s.task == task]


def _is_crop(record: dict) -> bool:
    return "annotations" not in record


def unify(sources: Sequence[Tuple[str, List[dict], str, bool]]) -> UnifiedData:
    """
    Unify already-loaded datasets.

    Args:
        sources: ``(name, records, task, labeled)`` per dataset, where ``records`` are scene or crop
            records of :mod:`hpps_d2.data.datasets`, ``task`` is "detection" or "reid".

    Returns:
        UnifiedData. Input records are not modified.
    """
    names = [s[0] for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"a dataset is listed twice for unification: {names}")
    domain_count: Dict[str, int] = {"detection": 0, "reid": 0}
    next_id = 0
    plans = []
    # Labeled identities first, one contiguous block per dataset, so that pseudo-identities
    # (which depend on how many boxes there are) never shift a labeled id.
    for name, records, task, labeled in sources:
        if (task, labeled) not in LOSSES:
            raise ValueError(
                f"{name}: cannot unify a '{task}' dataset (labeled={labeled}) for pre-training; "
                f"hybrid pre-training takes detection and re-ID datasets only"
            )
        mapping: Optional[Dict[int, int]] = None
        if labeled:
            raw = _labeled_ids(name, records)
            mapping = {pid: next_id + i for pid, i in relabel_contiguous(raw).items()}
            next_id += len(mapping)
        domain = domain_count[task]
        domain_count[task] += 1
        plans.append((name, records, task, labeled, domain, mapping))
    num_labeled = next_id

    parts, infos = [], []
    for name, records, task, labeled, domain, mapping in plans:
        losses = LOSSES[(task, labeled)]
        start = next_id if mapping is None else min(mapping.values(), default=next_id)
        out = []
        if isinstance(records, CropRecords) and mapping is None:
            # unlabeled crops held as arrays: one pseudo-identity per crop, numbered in order
            # (what the loop below does one dict at a time)
            out = records.unified(next_id, source=name, task=task, domain=domain, losses=losses, crop=True)
            next_id += len(records)
            records = ()
        for r in records:
            u = dict(r, source=name, task=task, domain=domain, losses=losses)
            if _is_crop(r):
                if mapping is not None and r["person_id"] == UNLABELED:
                    raise ValueError(f"{name}: labeled re-ID crop {r['file_name']} has no identity")
                if mapping is None:
                    u["person_id"] = next_id
                    next_id += 1
                else:
                    u["person_id"] = mapping[r["person_id"]]
                u["crop"] = True
            else:
                annos = []
                for a in r["annotations"]:
                    a = dict(a)
                    if a.get("iscrowd", 0):
                        a["person_id"] = UNLABELED
                    elif mapping is None:
                        a["person_id"] = next_id
                        next_id += 1
                    elif a["person_id"] == UNLABELED:
                        # An unlabeled person in a labeled scene gets its own pseudo-identity too.
                        a["person_id"] = next_id
                        next_id += 1
                    else:
                        a["person_id"] = mapping[a["person_id"]]
                    annos.append(a)
                u["annotations"] = annos
            out.append(u)
        parts.append(out)
        stop = next_id if mapping is None else start + len(mapping)
        infos.append(SourceInfo(name, task, labeled, domain, len(out), (start, stop), losses))
    return UnifiedData(chain_records(parts), infos, next_id, num_labeled)


def _labeled_ids(name: str, records: List[dict]) -> List[int]:
    pids = []
    for r in records:
        if _is_crop(r):
            pids.append(r["person_id"])
        else:
            pids.extend(a["person_id"] for a in r["annotations"] if not a.get("iscrowd", 0))
    return [p for p in pids if p != UNLABELED]


def load_unified(names: Sequence[str], prepare: Optional[Callable[[str, List[dict]], List[dict]]] = None) -> UnifiedData:
    """
    Load registered datasets from detectron2's catalogs and unify them.

    The task and labeling of each come from its metadata (``task``, ``labeled``).

    Args:
        prepare: ``(name, records) -> records`` applied to each dataset before unification (the
            trainer's empty-scene filter and DATASETS.TRAIN_FRACTION), so that identities are
            counted on the images actually trained on.
    """
    sources = []
    for name in names:
        meta = MetadataCatalog.get(name)
        records = DatasetCatalog.get(name)
        if prepare is not None:
            records = prepare(name, records)
        sources.append((name, records, meta.task, meta.labeled))
    data = unify(sources)
    for s in data.sources:
        logger.info(
            f"unified {s.name}: task={s.task} domain={s.domain} images={s.num_images} "
            f"identities [{s.id_range[0]}, {s.id_range[1]}) losses={'+'.join(s.losses)}"
        )
    logger.info(
        f"unified {len(data.records)} images, {data.num_identities} identities "
        f"({data.num_labeled} labeled, {data.num_pseudo} pseudo)"
    )
    return data
