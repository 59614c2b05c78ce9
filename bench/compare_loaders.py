#!/usr/bin/env python3
"""flowrun's loader against torchvision's, side by side, on the same machine and files.

Runs, in one go:
  - torchvision ImageFolder + DataLoader (num_workers 0, 1, 2) with the same transforms as
    pipelines/cifar10_loader.json: RandomCrop(32, padding=4), RandomHorizontalFlip,
    ToTensor, Normalize, batches of 128, over the 50,000 CIFAR-10 training JPEGs;
  - flowrun's loader (build/flowrun_loader_bench) on the same files read from the tar;
  - bare TurboJPEG decoding of the same files on the same thread count (the ceiling), alternating
    with flowrun's runs so that each ratio compares runs made seconds apart (this VM's speed drifts);
  - flowrun's loader over 5,000 images, to compare peak memory with the 50,000 run;
and prints every figure (medians) and the ratios.

    # torchvision and Pillow: scripts/setup.sh installs them (torchvision pinned to torch 2.11)
    .venv/bin/python bench/compare_loaders.py [--threads 2] [--runs 3]
"""
import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def torchvision_rate(folder, workers, threads, runs, size):
    import torch
    import torchvision
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder

    torch.set_num_threads(threads)
    if size == 32:
        transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                               T.Normalize(MEAN, STD)])
    else:
        transform = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToTensor(),
                               T.Normalize((0.5,) * 3, (0.5,) * 3)])
    dataset = ImageFolder(folder, transform=transform)
    rates = []
    for _ in range(runs):
        loader = torch.utils.data.DataLoader(dataset, batch_size=128, shuffle=True, num_workers=workers)
        start = time.perf_counter()
        images = sum(batch[0].shape[0] for batch in loader)
        rates.append(images / (time.perf_counter() - start))
    return statistics.median(rates), torchvision.__version__


def bench_lines(args, *extra):
    command = [str(args.bench), "--tar", str(args.tar), "--threads", str(args.threads), *extra]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()
    return [dict(field.split("=") for field in line.split()[1:]) for line in out.splitlines()]


def bench(args, *extra):
    return bench_lines(args, *extra)[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tar", type=pathlib.Path, default=ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar")
    parser.add_argument("--bench", type=pathlib.Path, default=ROOT / "build" / "flowrun_loader_bench")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3, help="torchvision epochs per setting (median)")
    parser.add_argument("--size", type=int, default=32, choices=[32, 224],
                        help="32: crop+flip+normalize at CIFAR size; 224: random_resized_crop to 224 (ViT-B/16)")
    parser.add_argument("--per-class", type=int, default=0,
                        help="images per class for every loader (0 = all 5,000); 224 defaults to 500")
    args = parser.parse_args()
    if args.size == 224 and args.per_class == 0:
        args.per_class = 500
    pipeline = ROOT / "pipelines" / ("cifar10_loader.json" if args.size == 32 else "cifar10_loader_224.json")

    print(f"machine: {os.cpu_count()} cores; {args.threads} threads for every loader; files: {args.tar}")
    limit = ["--limit", str(args.per_class)]
    interleaved = bench_lines(args, "--pipeline", str(pipeline), "--repeat", "7", *limit, "--interleave-decode-only")
    decode, ratio, streaming_ratio, flowrun = interleaved
    # Peak memory from runs of their own (the interleaved run also holds decode buffers).
    small = bench(args, "--pipeline", str(pipeline), "--repeat", "3", "--limit", "500")
    full = bench(args, "--pipeline", str(pipeline), "--repeat", "3", *limit)

    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(args.tar) as tar:
            kept, members = {}, []
            for m in tar.getmembers():
                if not m.name.startswith("train/") or not m.isfile():
                    continue
                cls = m.name.split("/")[1]
                kept[cls] = kept.get(cls, 0) + 1
                if args.per_class == 0 or kept[cls] <= args.per_class:
                    members.append(m)
            tar.extractall(tmp, members=members)
        tv = {w: torchvision_rate(os.path.join(tmp, "train"), w, args.threads, args.runs, args.size) for w in (0, 1, 2)}

    best_workers = max(tv, key=lambda w: tv[w][0])
    best = tv[best_workers][0]
    rate = float(flowrun["images_per_s"])
    print(f"\n{'loader':58} {'images/s':>10}")
    for w, (r, version) in tv.items():
        print(f"{'torchvision ' + version + ' DataLoader, num_workers=' + str(w):58} {r:10.0f}")
    print(f"{'TurboJPEG decode only (' + decode['threads'] + ' threads)':58} {float(decode['images_per_s']):10.0f}")
    print(f"{'flowrun (' + pipeline.name + ')':58} {rate:10.0f}")
    print(f"{'flowrun, streaming (after indexing the tar, ' + flowrun['start_s'] + ' s)':58} "
          f"{float(flowrun['streaming_images_per_s']):10.0f}")
    target = "10x" if args.size == 32 else "5x"
    print(f"\nimages per run: {flowrun['images']}")
    print(f"flowrun / best torchvision (num_workers={best_workers}): {rate / best:.1f}x   (target >= {target})")
    if args.size == 32:
        print(f"flowrun / TurboJPEG decode only:            {float(ratio['median']):.0%}   (target >= 60%; "
              f"median of per-round ratios, runs alternating; range {float(ratio['min']):.0%} to "
              f"{float(ratio['max']):.0%})")
        print(f"flowrun streaming / TurboJPEG decode only:  {float(streaming_ratio['median']):.0%}   (both timed "
              f"after listing the files, as torchvision is; range {float(streaming_ratio['min']):.0%} to "
              f"{float(streaming_ratio['max']):.0%})")
    print(f"peak resident memory: {small['peak_rss_mb']} MB for {small['images']} images, "
          f"{full['peak_rss_mb']} MB for {full['images']} images "
          f"(libraries alone: {full['baseline_rss_mb']} MB)")


if __name__ == "__main__":
    sys.exit(main())
