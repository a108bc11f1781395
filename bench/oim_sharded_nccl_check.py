#!/usr/bin/env python
"""
Sharded OIM against the replicated one on 2 processes (issue 13): the same global batch, the same
tables, NCCL on 2 GPUs (``--backend gloo`` runs it on 2 CPU processes). Each process computes its
rows' loss with ``OIMLoss`` (the whole table) and with ``ShardedOIMLoss`` (its half), backward and
the table update; printed: the max abs differences of the loss, the feature gradients and the
tables after the update, per process. Exit status 1 when one exceeds its tolerance.

    python bench/oim_sharded_nccl_check.py [--backend nccl|gloo] [--ids 200000] [--dim 256]
                                           [--rois 512] [--queue 5000] [--chunk-rows 16384]

tests/modeling/test_oim_sharded.py checks the same on gloo with a 10-row table; this one runs the
collectives on NCCL at a size where each shard's log-sum-exp spans several blocks.
"""
import argparse
import os
import socket
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from tabulate import tabulate

WORLD = 2
#: float32 throughout (no TF32: torch's default for matmuls); the blockwise log-sum-exp and the
#: full cross-entropy sum in other orders, so loss and gradient agree to rounding, not bitwise
TOLERANCE = {"loss": 1e-4, "grad": 1e-5, "lut": 1e-6, "cq": 0.0}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _inputs(args):
    """The tables and the global batch (the same on every process): unit rows; labels with
    repeats across the processes (the update compounds in rank order) and 20% unlabeled."""
    g = torch.Generator().manual_seed(0)
    lut = F.normalize(torch.randn(args.ids, args.dim, generator=g), dim=1)
    cq = F.normalize(torch.randn(args.queue, args.dim, generator=g), dim=1)
    x = F.normalize(torch.randn(args.rois, args.dim, generator=g), dim=1)
    y = torch.randint(0, args.ids, (args.rois,), generator=g)
    y[torch.rand(args.rois, generator=g) < 0.2] = -1
    y[args.rois // 2 + 1] = y[0]  # one identity on both processes
    return lut, cq, x, y


def _step(oim, x, y):
    """Loss, feature gradient, then the update (a collective): what the trainer does per step."""
    x = x.clone().requires_grad_(True)
    t = time.perf_counter()
    loss = oim(x, y)
    loss.backward()
    oim.apply_pending_updates()
    if x.is_cuda:
        torch.cuda.synchronize()
    return loss.detach(), x.grad, time.perf_counter() - t


def _worker(rank, port, args, out_dir):
    if args.backend == "nccl":
        torch.cuda.set_device(rank)
    dev = torch.device("cuda", rank) if args.backend == "nccl" else torch.device("cpu")
    url = f"tcp://127.0.0.1:{port}"
    dist.init_process_group(args.backend, init_method=url, rank=rank, world_size=WORLD)
    try:
        from hpps_d2.modeling.oim import OIMLoss
        from hpps_d2.modeling.oim_sharded import ShardedOIMLoss

        lut, cq, x, y = _inputs(args)
        # uneven split: the ranks gather different row counts
        cut = args.rois // 2 + 1
        part = slice(0, cut) if rank == 0 else slice(cut, args.rois)
        xr, yr = x[part].to(dev), y[part].to(dev)

        rep = OIMLoss(args.dim, args.ids, queue_size=args.queue).to(dev).train()
        rep.lut.copy_(lut), rep.cq.copy_(cq)
        shd = ShardedOIMLoss(args.dim, args.ids, queue_size=args.queue, chunk_rows=args.chunk_rows)
        shd = shd.to(dev).train()
        a, n = shd.row_start, shd.lut.shape[0]
        shd.lut.copy_(lut[a : a + n]), shd.cq.copy_(cq)

        _step(rep, xr, yr), _step(shd, xr, yr)  # warm-up (kernels, NCCL communicators)
        rep.lut.copy_(lut), rep.cq.copy_(cq), rep.cq_head.zero_()
        shd.lut.copy_(lut[a : a + n]), shd.cq.copy_(cq), shd.cq_head.zero_()
        loss_r, grad_r, t_r = _step(rep, xr, yr)
        loss_s, grad_s, t_s = _step(shd, xr, yr)
        res = {
            "rows": int(yr.numel()),
            "shard": f"[{a}, {a + n})",
            "loss": float((loss_s - loss_r).abs()),
            "grad": float((grad_s - grad_r).abs().max()),
            "lut": float((shd.lut - rep.lut[a : a + n]).abs().max()),
            "cq": float((shd.cq - rep.cq).abs().max()),
            "lut_moved": float((rep.lut[a : a + n] - lut[a : a + n].to(dev)).abs().max()),
            "ms_replicated": 1000 * t_r,
            "ms_sharded": 1000 * t_s,
        }
        torch.save(res, os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--backend", choices=("nccl", "gloo"), default="nccl")
    p.add_argument("--ids", type=int, default=200000, help="L, rows of the whole table")
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--rois", type=int, default=512, help="RoIs of the global batch (20%% unlabeled)")
    p.add_argument("--queue", type=int, default=5000)
    p.add_argument("--chunk-rows", type=int, default=16384)
    args = p.parse_args()
    if args.backend == "nccl" and torch.cuda.device_count() < WORLD:
        n = torch.cuda.device_count()
        sys.exit(f"oim_sharded_nccl_check: NCCL needs {WORLD} GPUs, found {n}")
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_worker, args=(_free_port(), args, out), nprocs=WORLD, join=True)
        res = [torch.load(os.path.join(out, f"{r}.pt"), weights_only=True) for r in range(WORLD)]
    keys = list(TOLERANCE)
    rows = [
        [r, x["rows"], x["shard"], *(f"{x[k]:.2e}" for k in keys)]
        + [f"{x['ms_replicated']:.1f}", f"{x['ms_sharded']:.1f}"]
        for r, x in enumerate(res)
    ]
    print(
        f"{args.backend}, {WORLD} processes: L = {args.ids}, D = {args.dim}, {args.rois} RoIs, "
        f"Q = {args.queue}, chunk {args.chunk_rows} rows"
    )
    headers = ["rank", "rows", "shard", *(f"max |d {k}|" for k in keys), "ms rep", "ms shd"]
    print(tabulate(rows, headers=headers, tablefmt="github"))
    worst = {k: max(x[k] for x in res) for k in keys}
    failed = [k for k in keys if worst[k] > TOLERANCE[k]]
    if min(x["lut_moved"] for x in res) == 0.0:
        failed.append("the update changed no table row")
    bounds = ", ".join(f"{k} {worst[k]:.1e} <= {TOLERANCE[k]:g}" for k in keys)
    verdict = "FAIL " + ", ".join(failed) if failed else "ok"
    print(f"OIM sharded vs replicated: {verdict}  (max abs: {bounds})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
