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
import collections
import concurrent.futures
import dataclasses
import multiprocessing
import os
import signal
from concurrent.futures.process import BrokenProcessPool
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

#: What a problem is: the image cannot be read, it reads at another size than its record says, or
#: decoding it killed the decoding process (a crash inside a native decoder).
PROBLEM_KINDS = ("unreadable", "mis-sized", "crashed")


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


def _fork_context():
    # fork: workers inherit the imported package instead of importing torch again; the reader
    # opens its own LMDB / HDF5 handles per process (see image_io).
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def _decode_chunk(tasks: List[_Task]) -> List[Optional[Tuple[str, str]]]:
    return [_decode_one(t) for t in tasks]


def _send_decoded(conn, task: _Task) -> None:
    conn.send(_decode_one(task))
    conn.close()


def _decode_isolated(task: _Task) -> Optional[Tuple[str, str]]:
    """:func:`_decode_one` in a process of its own; a crash of that process is a "crashed" problem."""
    ctx = _fork_context()
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_send_decoded, args=(sender, task))
    proc.start()
    sender.close()
    try:
        result = receiver.recv()
    except EOFError:  # the process died before it sent anything
        result = None
        proc.join()
        code = proc.exitcode
        how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        return "crashed", (
            f"{task[2]}: decoding it killed the decoding process ({how}); the file is probably "
            "damaged in a way the image library does not catch: re-extract or remove it"
        )
    finally:
        receiver.close()
    proc.join()
    return result


def _decode_in_workers(tasks: List[_Task], workers: int, bar) -> List[Optional[Tuple[str, str]]]:
    """
    :func:`_decode_one` of every task in a pool of ``workers`` processes, in task order.

    A worker killed by a signal (a native decoder crashing) breaks the pool; a plain
    ``multiprocessing.Pool`` would then wait forever for the lost task. Here at most
    ``2 * workers`` chunks are in flight: when the pool breaks, each task of those chunks is
    decoded again in a process of its own (:func:`_decode_isolated`, which reports the one that
    crashes) and the remaining chunks go to a new pool.
    """
    chunk = max(1, min(64, len(tasks) // (workers * 8)))
    pending = collections.deque(
        list(range(i, min(i + chunk, len(tasks)))) for i in range(0, len(tasks), chunk)
    )
    results: List[Optional[Tuple[str, str]]] = [None] * len(tasks)
    while pending:
        inflight: Dict[concurrent.futures.Future, List[int]] = {}
        broken = False
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=_fork_context()) as pool:
            while (pending or inflight) and not broken:
                while pending and len(inflight) < 2 * workers:
                    ids = pending.popleft()
                    inflight[pool.submit(_decode_chunk, [tasks[i] for i in ids])] = ids
                finished, _ = concurrent.futures.wait(
                    inflight, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in finished:
                    try:
                        out = future.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    for i, r in zip(inflight.pop(future), out):
                        results[i] = r
                    bar.update(len(out))
        if broken:  # every chunk still in flight is suspect: decode each of its tasks alone
            for ids in inflight.values():
                for i in ids:
                    results[i] = _decode_isolated(tasks[i])
                    bar.update()
    return results


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
    if workers <= 1 or len(tasks) <= 1:
        results = []
        for _, t in tasks:
            results.append(_decode_one(t))
            bar.update()
    else:
        results = _decode_in_workers([t for _, t in tasks], min(workers, len(tasks)), bar)
    bar.close()
    return [
        DecodeProblem(split=name, kind=r[0], file=t[2], message=r[1])
        for (name, t), r in zip(tasks, results)
        if r is not None
    ]
