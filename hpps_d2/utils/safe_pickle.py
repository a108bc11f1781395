"""
Unpickling files from strangers without running them: one restricted unpickler for every pickle
this project reads (detectron2 ``.pkl`` weights, LUPerson's ``keys.pkl``).

A pickle runs code only through the globals it names (``find_class``) and persistent ids; this
unpickler resolves a global only if the caller's allow-list holds it, refuses persistent ids, and
otherwise raises the caller's own error (which names the file and the global), so nothing the file
names is ever imported or called.
"""
import pickle
from typing import Any, BinaryIO, Callable, Mapping, Tuple

__all__ = ["restricted_load"]

Global = Tuple[str, str]


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, f: BinaryIO, allowed: Mapping[Global, Any], refuse: Callable, **kw):
        super().__init__(f, **kw)
        self.allowed, self.refuse = allowed, refuse

    def find_class(self, module, name):
        if (module, name) in self.allowed:
            return self.allowed[(module, name)]
        raise self.refuse(f"{module}.{name}")

    def persistent_load(self, pid):
        raise self.refuse(f"persistent id {pid!r}")


def restricted_load(
    f: BinaryIO, allowed: Mapping[Global, Any], refuse: Callable[[str], Exception], **kwargs
) -> Any:
    """
    Args:
        f: the open binary file.
        allowed: ``(module, name) -> object`` the file may name (resolved to these objects, never
            imported).
        refuse: builds the exception raised for anything else, given ``"module.name"`` (or the
            persistent id); it should name the file.
        kwargs: ``pickle.Unpickler`` options (e.g. ``encoding="latin1"``).
    """
    return _RestrictedUnpickler(f, allowed, refuse, **kwargs).load()
