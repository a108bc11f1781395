"""
Parsed protocol files, cached on disk and in the process, never stale.

A dataset's evaluation protocol (CUHK-SYSU ``TestG<k>.mat``, PRW ``query_info.txt`` with the test
annotations it is checked against, PoseTrack21 ``query.json`` / ``val.json``) is parsed by its
loader into a few numpy arrays and some JSON-able metadata. :func:`load_or_build` keeps that result
so that the next evaluation, in this process or the next one, reads it back instead of parsing
again: ``DatasetCatalog`` calls the loader on every evaluation.

Key: ``(name, version, scope, files)``, where ``files`` lists, for every source file the build
read, its absolute path, ``st_size`` and ``st_mtime_ns`` (a missing optional file is recorded as
missing). ``sources`` are the files known before parsing (a folder's listing: a new
``TestG<k>.mat`` changes the list); a build may add files it found in the content
(``depend(path)``, e.g. the annotation of each frame a list names). The key also holds the root
of :func:`~.datasets.common.confine_paths` active at build time, so that a load inside the
catalog's confinement never reuses a build made without it. Any difference rebuilds.

A file modified less than :data:`RACY_WINDOW_NS` before the build started could change again
within the same timestamp tick (coarse filesystem clocks, or a clock ahead of this one) without a
visible size or mtime change; such a "racy" file also gets a SHA-256 of its content, taken before
it is parsed and checked on every load (git's racy-index rule). Files older than that are judged
by size and mtime alone: an edit gives them a new mtime. Setting an mtime back by hand
(``os.utime``) to its old value after a same-size edit is not detected.

Format: one ``<name>-<hash of name and scope>.npz`` written by ``np.savez`` and read with
``allow_pickle=False`` (no pickle, ever: no object arrays, strings are fixed-width unicode
arrays). Two extra members hold UTF-8 JSON as uint8 arrays: ``__key__`` (the key above) and
``__meta__`` (the metadata). It is written to a temporary file in the same folder and moved into
place with ``os.replace``, so a reader sees the old file or the new one, never a part; zip's
CRC-32 of every member makes a damaged file fail to read. A file that cannot be read, or reads
but lacks a member, is rebuilt with a logged warning.

Location, first that applies:

1. ``$HPPS_CACHE`` when set (``off`` disables the disk cache; the in-process memo stays);
2. ``<dataset_dir>/.hpps_cache/`` when the dataset folder is writable: the cache lives and dies
   with the dataset it describes, and every checkout, process and user of that dataset shares it;
3. ``~/.cache/hpps_d2/`` (``$XDG_CACHE_HOME/hpps_d2``) for a read-only dataset (a shared mount).

When none can be written the result is kept only in the process. The in-process memo holds the
last few results by the same key, so a second evaluation in one process costs the stat calls
(and the hashes of racy files). Arrays handed out are read-only: they are shared by every load.
"""

import hashlib
import json
import logging
import os
import tempfile
import time
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .datasets import common

__all__ = ["CACHE_ENV", "RACY_WINDOW_NS", "cache_dir", "clear_memo", "load_or_build"]

logger = logging.getLogger(__name__)

#: Environment variable naming the cache folder (``off``: no disk cache).
CACHE_ENV = "HPPS_CACHE"
#: A source modified this close to (or after) the build start is also checked by content.
RACY_WINDOW_NS = 2_000_000_000
#: Bumped when the file layout of this module changes.
_FORMAT = 1
_KEY, _META = "__key__", "__meta__"
_MEMO_SIZE = 8

Arrays = Dict[str, np.ndarray]
# cache entry name -> (key, arrays, meta)
_memo: "OrderedDict[str, Tuple[dict, Arrays, dict]]" = OrderedDict()


def clear_memo() -> None:
    """Forget the in-process results (the next load reads the disk cache, as a new process)."""
    _memo.clear()


def cache_dir(dataset_dir: str) -> Optional[str]:
    """The folder for ``dataset_dir``'s cache files (module docstring), or None for none."""
    value = os.environ.get(CACHE_ENV, "")
    if value == "off":
        return None
    if value:
        return os.path.abspath(os.path.expanduser(value))
    beside = os.path.join(os.path.abspath(dataset_dir), ".hpps_cache")
    if os.access(beside if os.path.isdir(beside) else dataset_dir, os.W_OK | os.X_OK):
        return beside
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "hpps_d2")


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _file_entry(path: str, since_ns: Optional[int]) -> list:
    """``[path, size, mtime_ns, sha256 or None]``; size and mtime None for a missing file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return [path, None, None, None]
    racy = since_ns is not None and st.st_mtime_ns >= since_ns - RACY_WINDOW_NS
    return [path, st.st_size, st.st_mtime_ns, _sha256(path) if racy else None]


def _files_match(files: list) -> bool:
    """Whether every recorded file still has its size, mtime (and content, where hashed)."""
    for path, size, mtime_ns, digest in files:
        now = _file_entry(path, None)
        if now[1:3] != [size, mtime_ns]:
            return False
        if digest is not None and _sha256(path) != digest:
            return False
    return True


def _key_matches(stored: dict, head: dict) -> bool:
    """``head``: the key without files, plus the primary sources' paths."""
    if any(stored.get(k) != v for k, v in head.items()):
        return False
    return _files_match(stored.get("files", []))


def _json_array(value) -> np.ndarray:
    return np.frombuffer(json.dumps(value, sort_keys=True).encode("utf-8"), dtype=np.uint8)


def _read(path: str) -> Optional[Tuple[dict, Arrays, dict]]:
    """The entry at ``path``; None when absent; a damaged one is warned about and None."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            key = json.loads(z[_KEY].tobytes().decode("utf-8"))
            meta = json.loads(z[_META].tobytes().decode("utf-8"))
            arrays = {n: z[n] for n in z.files if n not in (_KEY, _META)}
        if not isinstance(key, dict) or not isinstance(meta, dict):
            raise ValueError("header is not a JSON object")
    except Exception as e:  # zip, CRC, JSON, pickle refusal: never trusted
        reason = f"{type(e).__name__}: {e}"
        logger.warning("protocol cache %s is unreadable (%s); rebuilding", path, reason)
        return None
    return key, arrays, meta


def _write(path: str, key: dict, arrays: Arrays, meta: dict) -> None:
    """Write the entry atomically; failure is logged and leaves no file behind."""
    folder = os.path.dirname(path)
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays, **{_KEY: _json_array(key), _META: _json_array(meta)})
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared dataset's cache from others
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        logger.info("protocol cache not written to %s (%s); kept in this process only", folder, e)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _frozen(arrays: Arrays) -> Arrays:
    for a in arrays.values():
        a.flags.writeable = False
    return arrays


def load_or_build(
    name: str,
    version: int,
    dataset_dir: str,
    sources: Sequence[str],
    build: Callable[[Callable[[str], str]], Tuple[Arrays, dict]],
    scope: Optional[dict] = None,
) -> Tuple[Arrays, dict]:
    """
    The parsed protocol of ``dataset_dir``: from the memo, else the disk cache, else ``build``.

    Args:
        name: what is cached, e.g. ``"cuhk_sysu.query"``; names the cache file.
        version: bumped whenever ``build``'s output changes for the same files.
        dataset_dir: the dataset folder (locates the cache, see :func:`cache_dir`).
        sources: every file the build reads that is known before parsing; a missing one is
            recorded as missing (an optional file appearing later rebuilds).
        build: ``build(depend) -> (arrays, meta)``; calls ``depend(path)`` (returns ``path``)
            before reading each further file found in the content. ``arrays``: name ->
            ``np.ndarray`` of a non-object dtype (strings as ``np.str_`` arrays); ``meta``: a
            JSON-able dict (tuples come back as lists).
        scope: JSON-able options the output depends on (e.g. a box convention).

    Returns:
        (arrays, meta): arrays are read-only and shared between loads.
    """
    confinement = common._CONFINEMENT.get()  # noqa: SLF001  (see the module docstring)
    scope = dict(scope or {}, confined_to=confinement[0] if confinement else None)
    primary = [os.path.abspath(p) for p in sources]
    head = {"format": _FORMAT, "name": name, "version": version, "scope": scope, "sources": primary}
    # as given too: messages kept in the metadata name paths as the caller spelled them
    ident = json.dumps([name, dataset_dir, os.path.abspath(dataset_dir), scope], sort_keys=True)
    entry = f"{name}-{hashlib.sha256(ident.encode('utf-8')).hexdigest()[:16]}"

    cached = _memo.get(entry)
    if cached is not None and _key_matches(cached[0], head):
        _memo.move_to_end(entry)
        return cached[1], cached[2]
    folder = cache_dir(dataset_dir)
    path = os.path.join(folder, entry + ".npz") if folder else None
    cached = _read(path) if path else None
    if cached is not None and _key_matches(cached[0], head):
        _remember(entry, cached[0], _frozen(cached[1]), cached[2])
        return cached[1], cached[2]

    start = time.time_ns()
    files: List[list] = [_file_entry(p, start) for p in primary]

    def depend(p: str) -> str:
        files.append(_file_entry(os.path.abspath(p), start))
        return p

    arrays, meta = build(depend)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    bad = [k for k, v in arrays.items() if v.dtype == object or k in (_KEY, _META)]
    if bad:
        raise TypeError(f"protocol cache {name}: arrays {bad} are object arrays or reserved names")
    key = dict(head, files=files)
    meta = json.loads(json.dumps(meta))  # as a reader will see it, and JSON-able or TypeError
    if _files_match(files):  # not changed while it was read
        if path:
            _write(path, key, arrays, meta)
        _remember(entry, key, _frozen(arrays), meta)
    else:
        logger.info("protocol cache %s: a source changed while it was read; not cached", name)
        _frozen(arrays)
    return arrays, meta


def _remember(entry: str, key: dict, arrays: Arrays, meta: dict) -> None:
    _memo[entry] = (key, arrays, meta)
    _memo.move_to_end(entry)
    while len(_memo) > _MEMO_SIZE:
        _memo.popitem(last=False)
