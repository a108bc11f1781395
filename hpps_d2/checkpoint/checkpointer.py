"""
:class:`SafeCheckpointer`: detectron2's checkpointer reading files with
:func:`~hpps_d2.checkpoint.io.load_weights_file` (no file runs code) and refusing a checkpoint
that fits too little of the model (:func:`~hpps_d2.checkpoint.init.check_coverage`). Sharded
OIM tables (:mod:`hpps_d2.modeling.oim_sharded`) are saved whole (gathered on the main process by
the trainer's ``GatherShardedTables`` hook before each checkpoint) and re-sharded at load, so a
run saved on W processes resumes on any number.
"""
from detectron2.checkpoint import DetectionCheckpointer

from ..modeling.oim_sharded import shard_checkpoint_tables
from .init import check_coverage
from .io import is_missing_file, read_checkpoint

__all__ = ["SafeCheckpointer"]


class SafeCheckpointer(DetectionCheckpointer):
    """
    ``DetectionCheckpointer`` (same arguments) for ``--resume``, ``--eval-only`` and saving.

    ``load(path)`` reads ``path`` without unpickling code (``.pkl`` restricted, torch files with
    ``weights_only=True``), raises :class:`~hpps_d2.checkpoint.io.WeightsFileError` naming the
    file when it is broken, and when fewer than half of the model's tensors (all but the
    pre-training-only modules and OIM tables) are found in it with the right name and shape.
    """

    _loading = None  # the file load() is reading: _load_model checks the coverage then

    def _load_file(self, filename):
        return read_checkpoint(filename)

    def load(self, path, *args, **kwargs):
        if is_missing_file(path):
            raise FileNotFoundError(
                f"{path}: no such checkpoint file (with --resume, {self.save_dir}/last_checkpoint "
                f"names it; else it is MODEL.WEIGHTS)"
            )
        self._loading = path
        try:
            return super().load(path, *args, **kwargs)
        finally:
            self._loading = None

    def _load_model(self, checkpoint):
        # a whole sharded table becomes this process's rows before shapes are compared
        shard_checkpoint_tables(self.model, checkpoint.get("model", {}))
        incompatible = super()._load_model(checkpoint)
        if self._loading is not None and incompatible is not None:
            check_coverage(self.model, incompatible, self._loading, "whole")
        return incompatible
