"""
Trainers of this project: DefaultTrainer subclasses that are deterministic, resumable and
distributed on GPUs (NCCL) and CPUs (gloo).

* :class:`PersonSearchTrainer` trains a :class:`~hpps_d2.modeling.PersonSearchRCNN` (fine-tuning)
  and :class:`HybridPretrainTrainer` the hybrid pre-training model, from unified sub-task data.
* One step: seed torch's RNG from (seed, iteration, rank) (RPN/RoI sampling is random), forward,
  ``backward``, clip the gradients (after the AMP unscale; :mod:`hpps_d2.solver.clip`), optimizer
  step, then apply the OIM table updates of this step's forward (all ranks' features, see
  :mod:`hpps_d2.modeling.oim`), or drop them when the AMP grad scaler skipped the step. Batches come
  from :class:`~hpps_d2.data.build.DeterministicTrainLoader`, whose state is checkpointed, so
  ``--resume`` ends with the same weights as an uninterrupted run.
* DDP wraps the model with ``device_ids=None`` on the CPU (detectron2 v0.6 always passes a GPU id).
* The OIM lookup-table size is counted from the training data when
  ``MODEL.OIM.NUM_IDENTITIES`` is 0, before the model is built.
"""
import json
import logging
import os
import time
import weakref
from collections import OrderedDict
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import DefaultTrainer, SimpleTrainer, TrainerBase
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.evaluation.testing import flatten_results_dict
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger
from torch.nn.parallel import DistributedDataParallel

from ..checkpoint.checkpointer import SafeCheckpointer
from ..checkpoint.init import load_init_weights
from ..checkpoint.io import require_weights_file
from ..config.check import check_train_config
from ..data.build import DeterministicTrainLoader, filter_empty_scenes, train_subset
from ..evaluation import (
    PersonSearchEvaluator,
    ReIDEvaluator,
    build_reid_test_loader,
    build_search_test_loader,
)
from ..data.hybrid_mapper import HybridDatasetMapper
from ..data.unify import load_unified
from ..modeling.oim_sharded import sharded_tables
from .hooks import GatherShardedTables
from ..solver import build_gradient_clipper, build_optimizer
from .writers import LossGroupPrinter

__all__ = ["PersonSearchTrainer", "HybridPretrainTrainer", "DeterministicStepTrainer", "unwrap"]

logger = logging.getLogger(__name__)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def _step_seed(seed: int, iteration: int, rank: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(iteration), int(rank), 7]).generate_state(1)[0])


class DeterministicStepTrainer(SimpleTrainer):
    """
    SimpleTrainer whose step is reproducible, clips gradients, and keeps the OIM tables in step with
    the parameters.

    One step: drop OIM updates a forward outside a step left behind (with a warning); seed; forward;
    backward (of the scaled loss with a grad scaler); unscale; clip; optimizer step (which the grad
    scaler skips on inf/NaN gradients); then apply this step's OIM table updates if the parameters
    were updated, else drop them. Every rank reaches the update (a collective under DDP) at the same
    point, and ranks agree on a skip (their gradients are all-reduced).

    Args:
        model: the model, or its DDP wrapper; the model has ``apply_pending_updates()`` and
            ``discard_pending_updates()`` (:class:`~hpps_d2.modeling.PersonSearchRCNN`).
        data_loader, optimizer: as for ``SimpleTrainer``.
        seed: seeds torch's RNG at every step from (seed, iteration, rank).
        amp: mixed precision (CUDA only): autocast, and a CUDA ``GradScaler`` unless one is given.
        clip_gradients: called with the optimizer's parameters to clip their gradients in place
            (:func:`hpps_d2.solver.build_gradient_clipper`); None: no clipping.
        grad_scaler: the loss scaler (a ``torch.amp.GradScaler`` or one with its ``scale``,
            ``unscale_``, ``step``, ``update``, ``get_scale``), e.g. a CPU one in tests. None: a
            CUDA one when ``amp``, else no loss scaling.
    """

    def __init__(
        self,
        model,
        data_loader,
        optimizer,
        seed: int,
        amp: bool = False,
        clip_gradients: Optional[Callable] = None,
        grad_scaler=None,
    ):
        super().__init__(model, data_loader, optimizer)
        self.seed = seed
        self.amp = amp
        self.clip_gradients = clip_gradients
        if amp and grad_scaler is None:
            if not torch.cuda.is_available():
                raise RuntimeError("SOLVER.AMP.ENABLED needs CUDA; turn it off on the CPU")
            grad_scaler = torch.amp.GradScaler("cuda")
        self.grad_scaler = grad_scaler

    def state_dict(self):
        ret = super().state_dict()
        if self.grad_scaler is not None:
            ret["grad_scaler"] = self.grad_scaler.state_dict()
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        if self.grad_scaler is not None and "grad_scaler" in state_dict:
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])

    def run_step(self):
        assert self.model.training, "the model was changed to eval mode"
        model = unwrap(self.model)
        stale = model.discard_pending_updates()
        if stale:
            logger.warning(
                f"iteration {self.iter}: dropped {stale} OIM feature rows of a forward outside a "
                "step"
            )
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start
        # After fetching: creating the DataLoader iterator (lazily, on the first batch) draws from
        # torch's RNG, and a resumed run creates it at a different iteration.
        torch.manual_seed(_step_seed(self.seed, self.iter, comm.get_rank()))
        with torch.autocast("cuda", enabled=self.amp):
            loss_dict = self.model(data)
        losses = sum(loss_dict.values())
        self.optimizer.zero_grad()
        if self.grad_scaler is not None:
            self.grad_scaler.scale(losses).backward()
        else:
            losses.backward()
        self._write_metrics(loss_dict, data_time)
        if self.optimizer_step():
            model.apply_pending_updates()
        else:
            model.discard_pending_updates()

    def optimizer_step(self) -> bool:
        """Unscale, clip, step; False when the grad scaler skipped the step (inf/NaN gradients)."""
        scaler = self.grad_scaler
        if scaler is not None:
            scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
        if self.clip_gradients is not None:
            self.clip_gradients(p for group in self.optimizer.param_groups for p in group["params"])
        if scaler is None:
            self.optimizer.step()
            return True
        scale = scaler.get_scale()
        scaler.step(self.optimizer)
        scaler.update()
        # update() multiplies the scale by backoff_factor (< 1, torch/amp/grad_scaler.py L145-146)
        # exactly when step() found inf/NaN gradients and did not call optimizer.step().
        return scaler.get_scale() >= scale


class PersonSearchTrainer(DefaultTrainer):
    """Trains PersonSearchRCNN on ``cfg.DATASETS.TRAIN`` (person-search scenes, single view)."""

    #: DATASETS.TRAIN are hybrid pre-training sources (they need task / labeled metadata)
    PRETRAINING = False

    def __init__(self, cfg):
        TrainerBase.__init__(self)
        if not logging.getLogger("detectron2").isEnabledFor(logging.INFO):
            setup_logger()
        # Config mistakes (device, datasets, source ratios) and a missing MODEL.WEIGHTS are
        # reported before any dataset is read (MODEL.WEIGHTS is not read when a run in OUTPUT_DIR
        # may be resumed instead).
        if not os.path.exists(os.path.join(cfg.OUTPUT_DIR, "last_checkpoint")):
            require_weights_file(cfg.MODEL.WEIGHTS)
        self.check_config(cfg)
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        cfg = cfg.clone()
        cfg.defrost()
        if cfg.SEED < 0:
            # One seed for every rank (the data stream is shared); saved with the data state.
            cfg.SEED = int(comm.all_gather(int(np.random.SeedSequence().generate_state(1)[0]) % (2**31))[0])
        self.train_data = self.load_train_data(cfg)
        self.complete_config(cfg, self.train_data)
        cfg.freeze()
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        self.train_loader = self.build_train_loader(cfg)
        if comm.get_world_size() > 1:
            # A sharded OIM table differs between processes (its rows, even its row count): DDP
            # must not broadcast rank 0's at construction.
            shards = [f"{prefix}lut" for prefix in sharded_tables(model)]
            if shards:
                DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, shards)
            model = DistributedDataParallel(
                model,
                device_ids=[comm.get_local_rank()] if model.device.type == "cuda" else None,
                broadcast_buffers=False,
            )
        self._trainer = DeterministicStepTrainer(
            model,
            self.train_loader,
            optimizer,
            cfg.SEED,
            cfg.SOLVER.AMP.ENABLED,
            clip_gradients=build_gradient_clipper(cfg),
        )
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = SafeCheckpointer(
            model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self), data_loader=self.train_loader
        )
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    def build_hooks(self):
        """detectron2's hooks, with :class:`~hpps_d2.engine.hooks.GatherShardedTables` (every
        process, before the main process's checkpointer) when the model has a sharded OIM."""
        hooks = super().build_hooks()
        if sharded_tables(unwrap(self.model)):
            hooks.insert(2, GatherShardedTables(self.cfg.SOLVER.CHECKPOINT_PERIOD))
        return hooks

    def check_config(self, cfg) -> None:
        """The config mistakes seen before anything is read (:func:`check_train_config`)."""
        check_train_config(cfg, pretraining=self.PRETRAINING)

    def complete_config(self, cfg, train_data: Dict) -> None:
        """Fill in (unfrozen ``cfg``) what is counted from the training data: the OIM table size."""
        if cfg.MODEL.OIM.NUM_IDENTITIES <= 0:
            cfg.MODEL.OIM.NUM_IDENTITIES = train_data["num_identities"]
            logger.info(f"OIM lookup table: {cfg.MODEL.OIM.NUM_IDENTITIES} identities counted from {list(cfg.DATASETS.TRAIN)}")

    @classmethod
    def build_optimizer(cls, cfg, model):
        """detectron2's SGD and parameter groups, unwrapped: the step clips (hpps_d2/solver)."""
        return build_optimizer(cfg, model)

    # -- data ------------------------------------------------------------------------------- #
    def load_train_data(self, cfg) -> Dict:
        """Records per training dataset, and the identity count for OIM."""
        sources, records, offset = [], [], 0
        for name in cfg.DATASETS.TRAIN:
            recs = _training_records(cfg, name, DatasetCatalog.get(name))
            # Identities of several datasets are made disjoint by offsetting each block.
            n_ids = 1 + max((a["person_id"] for r in recs for a in r["annotations"]), default=-1)
            recs = [_offset_ids(r, offset) for r in recs] if offset else recs
            offset += n_ids
            sources.append(len(recs))
            records.extend(recs)
        return {"records": records, "sizes": sources, "num_identities": offset}

    def build_train_loader(self, cfg):
        """The seeded, resumable stream of ``train_data`` mixed by HPPS.DATA.SOURCE_RATIOS, each
        record mapped by :meth:`build_train_mapper`."""
        return DeterministicTrainLoader(
            self.train_data["records"],
            self.train_data["sizes"],
            self.build_train_mapper(cfg),
            cfg.SOLVER.IMS_PER_BATCH,
            cfg.SEED,
            cfg.HPPS.DATA.SOURCE_RATIOS,
            cfg.DATALOADER.NUM_WORKERS,
        )

    def build_train_mapper(self, cfg):
        """One view per image; NAE/SeqNet augment with horizontal flips only (HPPS.FINETUNE.AUGMENT)."""
        cfg2 = cfg.clone()
        cfg2.defrost()
        cfg2.HPPS.VIEWS.NUM = 1
        if cfg.HPPS.FINETUNE.AUGMENT == "flip":
            v = cfg2.HPPS.VIEWS
            v.CROP_PROB = v.COLOR_JITTER_PROB = v.GRAYSCALE_PROB = v.BLUR_PROB = 0.0
            v.HFLIP_PROB = 0.5
        elif cfg.HPPS.FINETUNE.AUGMENT != "views":
            raise ValueError(f"HPPS.FINETUNE.AUGMENT must be 'flip' or 'views', got {cfg.HPPS.FINETUNE.AUGMENT!r}")
        return _SingleView(HybridDatasetMapper(cfg2))

    # detectron2 v0.6's DefaultTrainer checkpoints only the iteration and hook states: the optimizer
    # state (SGD momentum) was lost on --resume. Keep the inner trainer's state too.
    def state_dict(self):
        ret = super().state_dict()
        ret["_trainer"] = self._trainer.state_dict()
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self._trainer.load_state_dict(state_dict["_trainer"])

    def build_writers(self):
        return super().build_writers() + [LossGroupPrinter()]

    def resume_or_load(self, resume=True):
        """
        Resume from OUTPUT_DIR, or else initialise from MODEL.WEIGHTS per HPPS.FINETUNE.INIT.
        Both read files without running code and refuse broken or wrong-architecture files
        (:mod:`hpps_d2.checkpoint.io`, :class:`~hpps_d2.checkpoint.checkpointer.SafeCheckpointer`).
        """
        if resume and self.checkpointer.has_checkpoint():
            super().resume_or_load(resume=True)
        elif self.cfg.MODEL.WEIGHTS:
            load_init_weights(self.checkpointer, self.cfg.MODEL.WEIGHTS, self.cfg.HPPS.FINETUNE.INIT)
        logger.info(f"training data stream: {self.train_loader.state_dict()}")

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        """
        Evaluate on every split of ``cfg.DATASETS.TEST``: a person-search query or gallery split
        (with its linked partner), or a re-ID query/gallery split. Results are keyed by split name;
        the main process also writes them, flattened to ``split/task/metric`` keys as in
        metrics.json, to ``OUTPUT_DIR/eval_results.json`` (the latest evaluation, also after
        --eval-only, which writes no metrics.json).
        """
        del evaluators
        results = OrderedDict()
        for name in cfg.DATASETS.TEST:
            loader, evaluator = cls.build_test_pair(cfg, name)
            results[name] = inference_on_dataset(model, loader, evaluator)
            if comm.is_main_process():
                logger.info(f"evaluation on {name}:")
                print_csv_format(results[name])
        if comm.is_main_process() and cfg.OUTPUT_DIR and results:
            os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
            with open(os.path.join(cfg.OUTPUT_DIR, "eval_results.json"), "w", encoding="utf-8") as f:
                json.dump(flatten_results_dict(results), f, indent=1, sort_keys=True)
        return results

    @staticmethod
    def build_test_pair(cfg, name: str):
        """(test loader, evaluator) for a query or gallery split ``name``."""
        meta = MetadataCatalog.get(name)
        kind = getattr(meta, "evaluator_type", None)
        if kind not in _EVALUATION:
            raise ValueError(f"{name}: no person-search or re-ID evaluation for evaluator_type {kind!r}")
        query, gallery = (name, meta.gallery) if meta.role == "query" else (meta.query, name)
        build_loader, evaluator_cls = _EVALUATION[kind]
        return build_loader(cfg, query, gallery), evaluator_cls(cfg, query, gallery)


def _reid_evaluator(cfg, query: str, gallery: str) -> ReIDEvaluator:
    return ReIDEvaluator(query, gallery)


#: evaluator_type -> (test loader builder, evaluator builder), both called with (cfg, query, gallery)
_EVALUATION = {
    "person_search": (build_search_test_loader, PersonSearchEvaluator),
    "reid": (build_reid_test_loader, _reid_evaluator),
}


def _offset_ids(record: dict, offset: int) -> dict:
    annos = [dict(a, person_id=a["person_id"] + offset) if a["person_id"] >= 0 else a for a in record["annotations"]]
    return dict(record, annotations=annos)


class _SingleView:
    """The one view of a HybridDatasetMapper output, as a plain detectron2 model input."""

    def __init__(self, mapper: HybridDatasetMapper):
        self.mapper = mapper

    def __call__(self, record: dict) -> dict:
        out = self.mapper(record)
        view = out.pop("views")[0]
        view.update(out)
        return view


def _training_records(cfg, name: str, records: List[dict]) -> List[dict]:
    """The records of training dataset ``name`` that are trained on: scenes without a person
    dropped (DATALOADER.FILTER_EMPTY_ANNOTATIONS), then the nested DATASETS.TRAIN_FRACTION."""
    if cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS:
        records = filter_empty_scenes(records, name)
    n_all = len(records)
    records = train_subset(records, cfg.DATASETS.TRAIN_FRACTION)
    if len(records) != n_all:
        logger.info(f"{name}: training on {len(records)} of {n_all} images (DATASETS.TRAIN_FRACTION)")
    return records


class HybridPretrainTrainer(PersonSearchTrainer):
    """Hybrid pre-training on unified sub-task data (paper, "Hybrid Learning")."""

    PRETRAINING = True

    def load_train_data(self, cfg) -> Dict:
        # filtered and subset per source before unification: the OIM table gets a row for each
        # box / crop trained on, and none for the images left out
        unified = load_unified(cfg.DATASETS.TRAIN, lambda name, recs: _training_records(cfg, name, recs))
        sizes = [s.num_images for s in unified.sources]  # unified records are in source order
        return {"records": unified.records, "sizes": sizes, "num_identities": unified.num_identities, "unified": unified}

    def build_train_mapper(self, cfg):
        """Two views per image (hybrid pre-training)."""
        return HybridDatasetMapper(cfg)
