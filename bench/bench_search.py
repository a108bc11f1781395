#!/usr/bin/env python
"""
Search speed: time to rank one query against 100k and 1M gallery embeddings (256-d, float32,
L2-normalised, class-weighted by detection score as NAE does), returning the top 100.

    python bench/bench_search.py [--dim 256] [--topk 100] [--repeat 20]

Prints the median time per query for a plain matrix-vector product + top-k (torch), and for a
batch of 64 queries at once (per query).
"""
import argparse
import time

import torch
import torch.nn.functional as F
from tabulate import tabulate


def _median_time(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--topk", type=int, default=100)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--sizes", default="100000,1000000")
    args = p.parse_args()
    torch.manual_seed(0)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        gallery = F.normalize(torch.randn(n, args.dim), dim=1) * torch.rand(n, 1)  # CWS-weighted
        q1 = F.normalize(torch.randn(args.dim), dim=0)
        q64 = F.normalize(torch.randn(64, args.dim), dim=1)
        one = _median_time(lambda: torch.topk(gallery @ q1, args.topk), args.repeat)
        many = _median_time(lambda: torch.topk(q64 @ gallery.t(), args.topk, dim=1), max(3, args.repeat // 4)) / 64
        rows.append([n, f"{gallery.numel() * 4 / 2**20:.0f}", f"{1000 * one:.2f}", f"{1000 * many:.2f}"])
    print(f"rank one query against N gallery embeddings ({args.dim}-d float32), top {args.topk}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(tabulate(rows, headers=["gallery N", "MiB", "ms / query", "ms / query (batch of 64)"], tablefmt="github"))


if __name__ == "__main__":
    main()
