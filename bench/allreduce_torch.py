#!/usr/bin/env python3
"""The all-reduce of bench/allreduce_bench.cpp done by torch.distributed (Gloo, CPU) in
Python, as a DDP user's job does it: same sizes, same ranks, same repetitions.

    .venv/bin/python bench/allreduce_torch.py [--nproc 2] [--reps 50]

Prints one JSON line per size from rank 0 (the same fields as flowrun_allreduce_bench)."""
import argparse
import json
import os
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

SIZES = [4 << 10, 256 << 10, 462538 * 4, 25 << 20]


def rank_main(rank, world, port, reps):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    for size in SIZES:
        t = torch.ones(size // 4)
        for _ in range(5):
            dist.all_reduce(t)
        times = []
        for _ in range(reps):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
        if rank == 0:
            median, p90 = times[len(times) // 2], times[len(times) * 9 // 10]
            print(json.dumps({"tool": "torch.distributed", "ranks": world, "bytes": size, "ms_median": round(median, 4),
                              "ms_p90": round(p90, 4), "algbw_GBps": round(size / median / 1e6, 3)}), flush=True)
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(rank_main, args=(args.nproc, port, args.reps), nprocs=args.nproc)


if __name__ == "__main__":
    main()
