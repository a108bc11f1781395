"""
Launch one process per GPU (NCCL), or, without CUDA, N CPU processes with gloo.

detectron2 v0.6's ``launch`` asserts CUDA and hard-codes NCCL for more than one process
(detectron2/engine/launch.py in v0.6); detectron2's later versions pick gloo without CUDA. With CUDA this
delegates to detectron2's ``launch`` unchanged; without it, ``--num-gpus N`` starts N processes
that train together with DDP over gloo (each on the CPU), which is how the distributed code paths
are tested on machines without GPUs.
"""
import logging
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


def _cpu_worker(local_rank, main_func, world_size, per_machine, machine_rank, dist_url, args, timeout):
    rank = machine_rank * per_machine + local_rank
    try:
        dist.init_process_group("gloo", init_method=dist_url, world_size=world_size, rank=rank, timeout=timeout)
    except Exception:
        logging.getLogger(__name__).error(f"process group URL: {dist_url}")
        raise
    # The per-machine group detectron2's comm.get_local_rank() relies on.
    for i in range(world_size // per_machine):
        group = dist.new_group(list(range(i * per_machine, (i + 1) * per_machine)))
        if i == machine_rank:
            comm._LOCAL_PROCESS_GROUP = group
    # Each process gets an equal share of the cores instead of all of them.
    torch.set_num_threads(max(1, torch.get_num_threads() // per_machine))
    comm.synchronize()
    main_func(*args)
