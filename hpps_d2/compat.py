"""What detectron2 v0.6 needs on this project's stack, in one place.

Applied once, on ``import hpps_d2`` and before anything imports ``detectron2.data``. Every patch
checks first whether it is needed, so on an official detectron2 build (with compiled ops) and an
old Pillow the module does nothing.

Handled here:

* ``PIL.Image.LINEAR`` was removed in Pillow 10; detectron2 v0.6 uses it as a default argument in
  ``detectron2/data/transforms/transform.py``, so ``import detectron2.data`` fails without it.
  It is an alias of ``BILINEAR`` (same filter id), so the alias changes no behaviour.
* ``detectron2._C`` (the compiled ops) is absent when detectron2 was installed from PyPI's
  ``pb1-detectron2`` Python package (see ``tools/install_detectron2.py``).
  ``detectron2.layers`` imports it at import time for deformable convolution, rotated boxes and
  ``ROIAlignRotated``, and the fast COCO evaluator does too. A stand-in module is registered whose
  every attribute access raises :class:`MissingCompiledOpError` naming the op. Faster R-CNN with
  ResNet/FPN/ShuffleNet backbones uses torchvision's ``nms`` and ``roi_align`` and never touches it.

Handled elsewhere, because they are features rather than patches:

* multi-process launch without CUDA (gloo) and DDP with ``device_ids=None`` on the CPU:
  ``hpps_d2.engine``;
* ``pkg_resources`` (``detectron2.model_zoo``): ``setuptools<81`` is pinned in ``setup.py``;
* checkpoints load with ``weights_only=True``: this project saves only tensors and plain types.

Also here: the ``torch.jit.script`` deprecation warnings that fvcore and detectron2 trigger at
import are silenced at their source, once.
"""
import importlib.machinery
import importlib.util
import sys
import types
import warnings

__all__ = ["MissingCompiledOpError", "apply", "has_compiled_ops"]

_APPLIED = False


class MissingCompiledOpError(ImportError):
    """A detectron2 compiled op was used, but detectron2 was installed without compiled ops."""


class _MissingCompiledOps(types.ModuleType):
    """
    Stand-in for ``detectron2._C`` that fails loudly, and only when an op is actually used.

    The three build-information functions that ``detectron2.utils.collect_env`` calls (logged by
    ``default_setup``) answer that no compiled ops were built instead of failing.
    """

    @staticmethod
    def get_compiler_version():
        return "none: detectron2 installed without compiled ops"

    @staticmethod
    def get_cuda_version():
        return "none: detectron2 installed without compiled ops"

    @staticmethod
    def has_cuda():
        return False

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise MissingCompiledOpError(
            f"detectron2 compiled op '_C.{name}' is not available: this detectron2 is the Python "
            "package of PyPI's pb1-detectron2==0.6, installed without compiled ops (deformable "
            "convolution, rotated boxes, ROIAlignRotated and the fast COCO evaluator need them). "
            "To use this op, build official detectron2 from source: "
            "`python -m pip install --no-build-isolation 'git+https://github.com/facebookresearch/"
            "detectron2.git'` (see README.md, 'Install')."
        )


def has_compiled_ops() -> bool:
    """True when a real ``detectron2._C`` extension is importable."""
    mod = sys.modules.get("detectron2._C")
    if mod is not None:
        return not isinstance(mod, _MissingCompiledOps)
    return importlib.util.find_spec("detectron2._C") is not None


def _patch_pillow():
    from PIL import Image

    if not hasattr(Image, "LINEAR"):
        Image.LINEAR = Image.BILINEAR


def _patch_compiled_ops():
    if has_compiled_ops():
        return
    import detectron2

    stub = _MissingCompiledOps("detectron2._C")
    stub.__spec__ = importlib.machinery.ModuleSpec("detectron2._C", loader=None)
    stub.__file__ = None
    sys.modules["detectron2._C"] = stub
    detectron2._C = stub


def _import_scripting_modules_quietly():
    # fvcore/nn/focal_loss.py L52, L97 and detectron2/modeling/box_regression.py L20, L119 call
    # torch.jit.script at import; torch >= 2.9 answers each with a FutureWarning, in every process
    # (each DataLoader worker and DDP rank). Import those modules once here with that one warning
    # ignored; later imports reuse them, and the user's own torch.jit.script calls still warn.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
        import detectron2.modeling.box_regression  # noqa: F401
        import fvcore.nn  # noqa: F401


def apply():
    """Apply every patch that this stack needs; idempotent."""
    global _APPLIED
    if _APPLIED:
        return
    _patch_pillow()
    _patch_compiled_ops()
    _import_scripting_modules_quietly()
    _APPLIED = True
