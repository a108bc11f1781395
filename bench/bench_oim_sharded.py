#!/usr/bin/env python
"""
Sharded OIM at LUPerson scale (issue 13): per-process table bytes, peak memory and the time of
one loss forward + backward + table update, for L identities split over W CPU processes (gloo),
beside the replicated table (W = 1, ``OIMLoss``) where it fits.

    python bench/bench_oim_sharded.py [--ids 600000,4000000,10000000] [--procs 1,2,4] [--dim 256]
                                       [--rois 512] [--chunk-rows 65536] [--repeat 3]

``--rois`` is the global batch of labeled person RoIs (split evenly over the processes). Memory
is each process's peak resident set (``VmHWM``, reset just before) minus its resident set before
the table was allocated: the table itself plus what the step allocates. The target of issue 13: within 10% of
(L / W) x D x 4 bytes plus a term that does not grow with L.
"""
import argparse
import os
import socket
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from tabulate import tabulate


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> float:
    """Reset the process's peak resident set to the current one (Linux: clear_refs 5); return it.
    ``ru_maxrss`` cannot serve: it is preserved across the exec of a spawned process, so a
    child starts with its parent's peak."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_mb("VmRSS")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fill_unit_rows(table: torch.Tensor, block: int = 1 << 14) -> None:
    g = torch.Generator().manual_seed(0)
    for a in range(0, table.shape[0], block):
        rows = torch.randn(min(block, table.shape[0] - a), table.shape[1], generator=g)
        table[a : a + rows.shape[0]] = F.normalize(rows, dim=1)


def _worker(rank, world, port, args, replicated, out_dir):
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    from hpps_d2.modeling.oim import OIMLoss
    from hpps_d2.modeling.oim_sharded import ShardedOIMLoss

    base = _reset_peak()
    if replicated:
        oim = OIMLoss(args.dim, args.num_ids, queue_size=5000)
    else:
        oim = ShardedOIMLoss(args.dim, args.num_ids, queue_size=5000, chunk_rows=args.chunk_rows)
    _fill_unit_rows(oim.lut)
    oim.train()
    table_mb = oim.lut.numel() * oim.lut.element_size() / 2**20
    n = args.rois // world
    g = torch.Generator().manual_seed(1 + rank)
    feats = torch.randn(n, args.dim, generator=g)
    labels = torch.randint(0, args.num_ids, (n,), generator=g)
    times = []
    for i in range(args.repeat + 1):
        x = F.normalize(feats.clone().requires_grad_(True), dim=1)
        if world > 1:
            dist.barrier()
        t = time.perf_counter()
        oim(x, labels).backward()
        oim.apply_pending_updates()
        if world > 1:
            dist.barrier()
        if i:  # the first one warms up
            times.append(time.perf_counter() - t)
    peak = _status_mb("VmHWM") - base
    torch.save({"table_mb": table_mb, "peak_mb": peak, "seconds": sorted(times)[len(times) // 2]},
               os.path.join(out_dir, f"{rank}.pt"))
    if world > 1:
        dist.destroy_process_group()


def run(args, world, replicated):
    with tempfile.TemporaryDirectory() as out:
        # a fresh process per measurement, W = 1 included
        mp.spawn(_worker, args=(world, _free_port(), args, replicated, out), nprocs=world, join=True)
        res = [torch.load(os.path.join(out, f"{r}.pt"), weights_only=True) for r in range(world)]
    ideal = args.num_ids / world * args.dim * 4 / 2**20
    worst = max(r["peak_mb"] for r in res)
    return [
        f"{args.num_ids:,}", world, "replicated" if replicated else "sharded",
        f"{max(r['table_mb'] for r in res):.0f}", f"{ideal:.0f}", f"{worst:.0f}", f"{worst - ideal:+.0f}",
        f"{1000 * max(r['seconds'] for r in res):.0f}",
    ]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ids", default="600000,4000000,10000000")
    p.add_argument("--procs", default="1,2,4")
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--rois", type=int, default=512)
    p.add_argument("--chunk-rows", type=int, default=65536)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--replicated-up-to", type=int, default=4000000, help="largest L also run with the replicated table (W = 1)")
    args = p.parse_args()
    rows = []
    for num_ids in [int(x) for x in args.ids.split(",")]:
        args.num_ids = num_ids
        if num_ids <= args.replicated_up_to:
            rows.append(run(args, 1, True))
        for w in [int(x) for x in args.procs.split(",")]:
            rows.append(run(args, w, False))
        print(tabulate(rows[-1:], tablefmt="plain"), flush=True)
    headers = ["L", "W", "table", "table MiB / process", "(L/W) x D x 4 MiB", "peak MiB / process", "peak - ideal", "ms / step"]
    print(f"\nD = {args.dim}, {args.rois} labeled RoIs per step (global), chunk {args.chunk_rows} rows, {os.cpu_count()} CPU cores")
    print(tabulate(rows, headers=headers, tablefmt="github"))


if __name__ == "__main__":
    main()
