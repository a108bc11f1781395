"""
Decode every image of a split with the training reader, before training does.

A damaged crop (zero-byte file, truncated JPEG, a folder where a file should be) or an image whose
decoded size differs from its record's ``height`` / ``width`` stops a training run hours in, when
the data loader reaches it. :func:`decode_split` reads every image of a split with
:func:`hpps_d2.data.image_io.read_image`, the very function the training mapper uses (files,
LUPerson LMDB values and CUHK03 HDF5 slots alike), in worker processes, and returns one
:class:`DecodeProblem` per damaged image. ``tools/check_datasets.py --decode`` runs it on every
requested split.
"""
import dataclasses
import multiprocessing
import os
from typing import Dict, List, Optional, Tuple

from tqdm import tqdm

from .image_io import read_image

__all__ = [
    "DecodeProblem",
    "count_images",
    "decode_split",
    "decode_splits",
    "default_workers",
    "image_location",
]

#: What a problem is: the image cannot be read, or it reads at another size than its record says.
PROBLEM_KINDS = ("unreadable", "mis-sized")


@dataclasses.dataclass(frozen=True)
class DecodeProblem:
    """
    One image of a split that training cannot use.

    Attributes:
        split: catalog name of the split.
        kind: one of :data:`PROBLEM_KINDS`.
        file: where the image is (see :func:`image_location`).
        message: what is wrong; it names ``file``.
    """

    split: str
    kind: str
    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind.upper()} {self.split}: {self.message}"


def default_workers() -> int:
    """``min(4, usable CPU cores)``."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def image_location(record: dict) -> str:
    """
    Where a record's image is: ``file_name``; ``"<lmdb> key '<key>'"`` for an LMDB value;
    ``"<mat file> dataset '<name>'"`` for an HDF5 slot; ``"record with image_id '<id>'"`` when
    the record names no image.
    """
    source = record.get("image_source")
    if isinstance(source, dict) and source.get("type") == "lmdb":
        return f"{source.get('path')} key {source.get('key')!r}"
    if isinstance(source, dict) and source.get("type") == "hdf5":
        return f"{source.get('path')} dataset {source.get('dataset')!r}"
    if "file_name" in record:
        return str(record["file_name"])
    return f"record with image_id {record.get('image_id')!r}"


def _size_of(record: dict) -> Optional[Tuple[int, int]]:
    if "height" in record and "width" in record:
        return int(record["height"]), int(record["width"])
    return None


# A task sent to a worker: what read_image needs, the expected (height, width), the location.
_Task = Tuple[dict, Optional[Tuple[int, int]], str]


def _decode_one(task: _Task) -> Optional[Tuple[str, str]]:
    """Decode one image; ``(kind, message)`` when it is unusable, else None."""
    record, size, where = task
    try:
        image = read_image(record, "BGR")
    except KeyError as e:
        return "unreadable", (
            f"{where}: the record has no field {e} (expected 'file_name' or 'image_source')"
        )
    except Exception as e:  # every failure is reported; the reader's own errors name the file
        text = str(e)
        source = record.get("image_source")
        path = str(source.get("path")) if isinstance(source, dict) else record.get("file_name")
        if path and path in text:
            return "unreadable", text
        return "unreadable", f"{where}: {type(e).__name__}: {text}"
    got = tuple(image.shape[:2])
    if size is not None and got != size:
        return "mis-sized", (
            f"{where}: decoded {got[0]}x{got[1]} (height x width) but the record says "
            f"{size[0]}x{size[1]}"
        )
    return None


def _tasks(records: List[dict]) -> List[_Task]:
    """One task per distinct (image, expected size), in record order."""
    tasks: Dict[Tuple[str, Optional[Tuple[int, int]]], _Task] = {}
    for r in records:
        slim = {k: r[k] for k in ("file_name", "image_source") if k in r}
        size, where = _size_of(r), image_location(r)
        tasks.setdefault((where, size), (slim, size, where))
    return list(tasks.values())


def count_images(records: List[dict]) -> int:
    """How many images :func:`decode_split` decodes for ``records``."""
    return len(_tasks(records))


def decode_split(
    records: List[dict], workers: int = 1, split: str = "", progress: bool = False
) -> List[DecodeProblem]:
    """
    Decode every image of ``records`` with :func:`~hpps_d2.data.image_io.read_image`.

    An image named by several records (queries of one frame) is decoded once per distinct expected
    size. Records without ``height`` / ``width`` (re-ID crops) are only decoded.

    Args:
        records: the records of one split (scene, crop or query records).
        workers: processes decoding in parallel; 1 decodes in this process.
        split: catalog name of the split, put in each problem and on the progress bar.
        progress: show a tqdm progress bar on stderr.

    Returns:
        list[DecodeProblem]: one per unreadable or mis-sized image, in record order; empty when
        every image is usable.
    """
    return decode_splits({split: records}, workers=workers, progress=progress)


def decode_splits(
    splits: Dict[str, List[dict]], workers: int = 1, progress: bool = False
) -> List[DecodeProblem]:
    """
    :func:`decode_split` of several splits with one pool of workers (starting a pool per split
    costs more than decoding a small split).

    Args:
        splits: catalog name -> records.

    Returns:
        list[DecodeProblem]: in the order of ``splits``, then of the records.
    """
    tasks = [(name, t) for name, records in splits.items() for t in _tasks(records)]
    desc = next(iter(splits)) if len(splits) == 1 else f"{len(splits)} splits"
    bar = tqdm(
        total=len(tasks), desc=desc or "decode", unit="img", disable=not progress, leave=False
    )
    results = []
    if workers <= 1 or len(tasks) <= 1:
        for _, t in tasks:
            results.append(_decode_one(t))
            bar.update()
    else:
        # fork: workers inherit the imported package instead of importing torch again; the
        # reader opens its own LMDB / HDF5 handles per process (see image_io).
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        chunk = max(1, min(64, len(tasks) // (workers * 8)))
        with ctx.Pool(min(workers, len(tasks))) as pool:
            for result in pool.imap(_decode_one, [t for _, t in tasks], chunksize=chunk):
                results.append(result)
                bar.update()
    bar.close()
    return [
        DecodeProblem(split=name, kind=r[0], file=t[2], message=r[1])
        for (name, t), r in zip(tasks, results)
        if r is not None
    ]
