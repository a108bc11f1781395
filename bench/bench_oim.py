#!/usr/bin/env python
"""
OIM at scale: forward + backward time and memory of the OIM loss with 5k, 50k and 600k identities
(600k = one pseudo-identity per pre-training person at paper scale), and the table update.

    python bench/bench_oim.py [--device cpu|cuda] [--rois 512] [--repeat 5]

Prints, per table size: the lookup table's bytes (one tensor, no copy), the time of one
loss forward + backward for a batch of person RoIs, the time of the table update, and the
peak extra memory the step allocates (CUDA: allocator peak; CPU: RSS growth, coarse).
"""
import argparse
import resource
import time

import torch
import torch.nn.functional as F
from tabulate import tabulate

from hpps_d2.modeling.oim import OIMLoss


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench(num_ids, rois, dim, device, repeat):
    oim = OIMLoss(dim, num_ids, queue_size=5000).to(device)
    oim.lut.copy_(F.normalize(torch.randn(num_ids, dim, device=device), dim=1))
    oim.train()
    lut_mb = oim.lut.numel() * oim.lut.element_size() / 2**20
    feats = torch.randn(rois, dim, device=device)
    labels = torch.randint(0, num_ids, (rois,), device=device)
    labels[: rois // 5] = -1  # a fifth unlabeled
    times, upd = [], []
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    rss0 = _rss_mb()
    for i in range(repeat + 1):
        x = F.normalize(feats.clone().requires_grad_(True), dim=1)
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        loss = oim(x, labels)
        loss.backward()
        if device == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        oim.apply_pending_updates()
        if device == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        if i:  # the first run warms up
            times.append(t1 - t)
            upd.append(t2 - t1)
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if device == "cuda" else _rss_mb() - rss0
    return [num_ids, f"{lut_mb:.1f}", f"{1000 * sorted(times)[len(times) // 2]:.1f}", f"{1000 * sorted(upd)[len(upd) // 2]:.1f}", f"{peak:.0f}"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--rois", type=int, default=512, help="person RoIs per step (e.g. 16 views x 32)")
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--sizes", default="5000,50000,600000")
    args = p.parse_args()
    rows = [bench(int(n), args.rois, args.dim, args.device, args.repeat) for n in args.sizes.split(",")]
    print(f"OIM loss, {args.rois} person RoIs x {args.dim}-d, queue 5000, device {args.device}, torch {torch.__version__}")
    print(tabulate(rows, headers=["identities", "LUT MiB", "fwd+bwd ms", "update ms", "peak extra MiB"], tablefmt="github"))


if __name__ == "__main__":
    main()
