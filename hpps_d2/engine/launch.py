"""
Launch one process per GPU (NCCL), or, without CUDA, N CPU processes with gloo.

detectron2 v0.6's ``launch`` asserts CUDA and hard-codes NCCL for more than one process
(detectron2/engine/launch.py in v0.6); detectron2's later versions pick gloo without CUDA. With CUDA this
delegates to detectron2's ``launch`` unchanged; without it, ``--num-gpus N`` starts N processes
that train together with DDP over gloo (each on the CPU), which is how the distributed code paths
are tested on machines without GPUs.

Under ``torchrun`` (or any launcher that sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` for every process it starts) nothing is
spawned: each process joins the group from those variables (``init_method="env://"``), NCCL with
CUDA, gloo without, and runs ``main_func`` itself. ``--num-gpus`` / ``--num-machines`` then must
either be left at 1 or agree with the launcher's world size.
"""
import logging
import os
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.engine import launch as d2_launch
from detectron2.engine.launch import _find_free_port
from detectron2.utils import comm

__all__ = ["launch"]

DEFAULT_TIMEOUT = timedelta(minutes=30)


def launch(
    main_func,
    num_gpus_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url=None,
    args=(),
    timeout=DEFAULT_TIMEOUT,
):
    """Same arguments as ``detectron2.engine.launch``; "GPUs" are CPU processes without CUDA."""
    if all(k in os.environ for k in TORCHRUN_ENV):
        return _join_launcher_group(main_func, num_gpus_per_machine * num_machines, args, timeout)
    if torch.cuda.is_available():
        return d2_launch(main_func, num_gpus_per_machine, num_machines, machine_rank, dist_url, args, timeout)
    world_size = num_machines * num_gpus_per_machine
    if world_size <= 1:
        return main_func(*args)
    if dist_url == "auto":
        if num_machines != 1:
            raise ValueError("dist_url=auto only works for one machine")
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    mp.start_processes(
        _cpu_worker,
        nprocs=num_gpus_per_machine,
        args=(main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, args, timeout),
        daemon=False,
        start_method="spawn",
    )


#: the variables torchrun sets for every process it starts
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _join_launcher_group(main_func, requested: int, args, timeout):
    world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    local_rank, per_machine = int(os.environ["LOCAL_RANK"]), int(os.environ["LOCAL_WORLD_SIZE"])
    if requested not in (1, world):
        raise ValueError(
            f"--num-gpus x --num-machines = {requested}, but the launcher (torchrun) started "
            f"WORLD_SIZE={world} processes: leave them at 1 under torchrun, or make them agree"
        )
    if world % per_machine:
        raise ValueError(f"WORLD_SIZE={world} is not a multiple of LOCAL_WORLD_SIZE={per_machine}")
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo", init_method="env://", timeout=timeout)
    _local_groups(world, per_machine, rank // per_machine)
    if not cuda:
        torch.set_num_threads(max(1, torch.get_num_threads() // per_machine))
    comm.synchronize()
    return main_func(*args)


def _local_groups(world_size: int, per_machine: int, machine_rank: int) -> None:
    """The per-machine group detectron2's comm.get_local_rank() relies on (every process makes
    every group: new_group is collective)."""
    for i in range(world_size // per_machine):
        group = dist.new_group(list(range(i * per_machine, (i + 1) * per_machine)))
        if i == machine_rank:
            comm._LOCAL_PROCESS_GROUP = group


def _cpu_worker(local_rank, main_func, world_size, per_machine, machine_rank, dist_url, args, timeout):
    rank = machine_rank * per_machine + local_rank
    try:
        dist.init_process_group("gloo", init_method=dist_url, world_size=world_size, rank=rank, timeout=timeout)
    except Exception:
        logging.getLogger(__name__).error(f"process group URL: {dist_url}")
        raise
    _local_groups(world_size, per_machine, machine_rank)
    # Each process gets an equal share of the cores instead of all of them.
    torch.set_num_threads(max(1, torch.get_num_threads() // per_machine))
    comm.synchronize()
    main_func(*args)
