"""
Training hooks of this project (detectron2 :class:`~detectron2.engine.HookBase`).

:class:`GatherShardedTables`: detectron2 checkpoints on the main process only
(``DefaultTrainer.build_hooks`` adds its ``PeriodicCheckpointer`` there), but a sharded OIM table
(:mod:`hpps_d2.modeling.oim_sharded`) is spread over every process. This hook runs on every
process, before the checkpointer, at exactly the iterations the checkpointer saves (fvcore's
``PeriodicCheckpointer.step``: ``(iter + 1) % period == 0`` and the last iteration), and gathers
the whole table on the main process for the checkpointer to write.
"""
from detectron2.engine import HookBase
from torch.nn.parallel import DistributedDataParallel

from ..modeling.oim_sharded import sharded_tables, stage_tables, unstage_tables

__all__ = ["GatherShardedTables"]


class GatherShardedTables(HookBase):
    """
    Args:
        period: SOLVER.CHECKPOINT_PERIOD (the checkpointer's).
    """

    def __init__(self, period: int):
        self.period = period

    def _model(self):
        m = self.trainer.model
        return m.module if isinstance(m, DistributedDataParallel) else m

    def _due(self, iteration: int) -> bool:
        # the same two conditions as fvcore's PeriodicCheckpointer.step
        return (self.period > 0 and (iteration + 1) % self.period == 0) or iteration >= self.trainer.max_iter - 1

    def after_step(self):
        model = self._model()
        if sharded_tables(model) and self._due(self.trainer.iter):
            stage_tables(model)

    def before_step(self):
        unstage_tables(self._model())

    def after_train(self):
        unstage_tables(self._model())
