"""How a dataset split is described and put into detectron2's catalogs.

Each dataset module (``crowdhuman.py``, ``prw.py``, ...) exports ``SPLITS``, a list of
:class:`SplitSpec`, next to its pure loader function. :func:`register_split` registers one
spec under a root folder: ``DatasetCatalog`` gets a zero-argument function that calls the loader
on ``<root>/<subdir>``; ``MetadataCatalog`` gets the spec's fields. The number of identities is
counted from the loaded records (never written down by hand) and put into the metadata as
``num_identities`` the first time the split is loaded.

Every path of the loaded records (``file_name``, ``image_source.path``) must stay inside the
split's dataset folder ``<root>/<subdir>``: the loader runs inside
:func:`~.common.confine_paths` (an image header outside is refused before it is opened) and its
records are checked by :func:`~.common.check_record_paths`; both raise
:class:`~.common.UnsafePathError`. Code that calls a loader itself should go through
:func:`load_split` to get the same checks.
"""
import dataclasses
import os
from typing import Callable, Dict, List, Optional

from detectron2.data import DatasetCatalog, MetadataCatalog

from .common import check_record_paths, confine_paths, count_identities, searching_root

__all__ = ["SplitSpec", "load_split", "register_split", "standard_splits", "TASKS", "ROLES"]

#: Sub-task a split serves. "search" splits are the person-search targets (fine-tuning);
#: "classification" splits (ImageNet and its synthetic stand-in) pre-train a backbone generically.
TASKS = ("detection", "reid", "search", "classification")
#: What a split is used as.
ROLES = ("train", "val", "query", "gallery")


@dataclasses.dataclass(frozen=True)
class SplitSpec:
    """
    One registered split of one dataset.

    Attributes:
        name: catalog name without prefix, e.g. ``"prw_train"``.
        loader: pure function ``(dataset_dir: str, split: str) -> list[dict]``.
        subdir: the dataset's folder under the datasets root, e.g. ``"PRW"``.
        split: the ``split`` argument given to ``loader``.
        task: one of :data:`TASKS`.
        role: one of :data:`ROLES`.
        domain: name of the source dataset (one domain per source), e.g. ``"crowdhuman"``.
        labeled: whether persons carry identity labels (False for detection sets and LUPerson).
        evaluator_type: ``"person_search"``, ``"reid"``, ``"detection"`` or None.
        readme_section: heading of ``datasets/README.md`` describing the layout.
        published: published counts from ``docs/datasets.md``, keys among ``images``, ``boxes``,
            ``identities``, ``queries``; compared with loaded counts by ``tools/check_datasets.py``.
        links: names of related splits without prefix, e.g. ``{"gallery": "prw_gallery"}``.
    """

    name: str
    loader: Callable[[str, str], List[dict]]
    subdir: str
    split: str
    task: str
    role: str
    domain: str
    labeled: bool
    evaluator_type: Optional[str] = None
    readme_section: str = ""
    published: Dict[str, int] = dataclasses.field(default_factory=dict)
    links: Dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        assert self.task in TASKS, self.task
        assert self.role in ROLES, self.role


def standard_splits(
    prefix: str,
    *,
    task: str,
    domain: str,
    loader: Callable[[str, str], List[dict]],
    subdir: str,
    section: str,
    published: Dict[str, Dict[str, int]],
    labeled: bool,
    evaluator_type: Optional[str],
) -> List[SplitSpec]:
    """
    The usual splits of one dataset: ``<prefix>_<role>`` for every role in ``published`` (in its
    order), the loader called with the role as ``split``. Train splits get no evaluator; a query
    and a gallery split are linked to each other.

    Args:
        published: role ("train", "val", "query", "gallery") -> published counts of that split.
    """
    links = {"query": {"gallery": f"{prefix}_gallery"}, "gallery": {"query": f"{prefix}_query"}}
    return [
        SplitSpec(
            name=f"{prefix}_{role}",
            loader=loader,
            subdir=subdir,
            split=role,
            task=task,
            role=role,
            domain=domain,
            labeled=labeled,
            evaluator_type=None if role == "train" else evaluator_type,
            readme_section=section,
            published=counts,
            links=links.get(role, {}) if {"query", "gallery"} <= set(published) else {},
        )
        for role, counts in published.items()
    ]


def load_split(spec: SplitSpec, dataset_dir: str, name: Optional[str] = None) -> List[dict]:
    """
    Call ``spec.loader`` on ``dataset_dir`` and refuse any record path outside ``dataset_dir``.

    Args:
        name: the split's name in errors (default ``spec.name``).

    Raises:
        UnsafePathError: a path built from the annotations leaves ``dataset_dir``.
    """
    name = name or spec.name
    with confine_paths(dataset_dir, name, spec.readme_section):
        records = spec.loader(dataset_dir, spec.split)
    check_record_paths(records, dataset_dir, name, spec.readme_section)
    return records


def _load_and_count(full_name: str, spec: SplitSpec, dataset_dir: str, root: str) -> List[dict]:
    with searching_root(root):  # a DatasetNotFoundError names the root searched
        records = load_split(spec, dataset_dir, full_name)
    meta = MetadataCatalog.get(full_name)
    n = count_identities(records)
    if getattr(meta, "num_identities", None) != n:
        # Metadata refuses to change a set value; a reload of changed files must say so.
        if hasattr(meta, "num_identities"):
            del meta.num_identities
        meta.set(num_identities=n)
    return records


def register_split(spec: SplitSpec, root: str, prefix: str = "") -> str:
    """
    Register ``spec`` for the datasets under ``root``; returns the full catalog name.

    Args:
        root: folder holding every dataset (``$HPPS_DATASETS``, see
            :func:`~.common.get_datasets_root`); named in a "missing dataset" error.
        prefix: prepended to the name and to ``links``, e.g. ``"synth_"``.
    """
    full_name = prefix + spec.name
    dataset_dir = os.path.join(root, spec.subdir)
    DatasetCatalog.register(
        full_name, lambda: _load_and_count(full_name, spec, dataset_dir, root)
    )
    MetadataCatalog.get(full_name).set(
        dataset_dir=dataset_dir,
        task=spec.task,
        role=spec.role,
        domain=spec.domain,
        labeled=spec.labeled,
        evaluator_type=spec.evaluator_type,
        readme_section=spec.readme_section,
        published=dict(spec.published),
        thing_classes=["person"],
        **{k: prefix + v for k, v in spec.links.items()},
    )
    return full_name
