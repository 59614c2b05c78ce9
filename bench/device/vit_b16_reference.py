#!/usr/bin/env python3
"""The plain PyTorch-Python reference for flowrun's ViT-B/16 fine-tuning pipeline
(pipelines/vit_cifar10_fullft.json), tuned as a careful user would: timm's
vit_base_patch16_224 (random weights, as the flowrun run), torchvision ImageFolder +
DataLoader (num_workers = cores, pin_memory, persistent workers, prefetch 4) with
RandomResizedCrop(224, scale=(0.5, 1)), RandomHorizontalFlip, ToTensor, Normalize(0.5),
batch 128, bf16 autocast, fused AdamW (lr 3e-5, weight decay 0.05, none on 1-D
parameters), label smoothing 0.1, drop path 0.1, clipping at 1.0, non_blocking copies;
--compile wraps the model in torch.compile. Like flowrun it synchronises with the device
only at log steps (every --log-every steps: the loss is read there), and it leaves TF32
at PyTorch's defaults, as flowrun does (matmul TF32 off, cuDNN convolutions on).
Prints one JSON line: images/s after warm-up as flowrun's figure is taken (the median
of the windows between log steps, the first window left out), their mean over the
whole timed span, the share of that span spent waiting for the next batch, and the
span's wall-clock ends (for the GPU busy share over the same time).

    python3 bench/device/vit_b16_reference.py --data DIR_OF_EXTRACTED_TAR/train [--steps 120] [--device cuda] [--compile]
"""
import argparse
import json
import os
import statistics
import sys
import time

import timm
import torch
import torchvision
from torchvision import transforms


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="an ImageFolder root (the tar's train/ extracted)")
    ap.add_argument("--model", default="vit_base_patch16_224")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--warmup", type=int, default=None, help="steps before the clock starts (default: one log window)")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--log-every", type=int, default=20, help="steps between reads of the loss (device syncs)")
    a = ap.parse_args()
    a.warmup = max(a.log_every if a.warmup is None else a.warmup, 1)  # the clock starts at the warm-up's last step
    tf = transforms.Compose([transforms.RandomResizedCrop(224, scale=(0.5, 1.0)), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)])
    data = torchvision.datasets.ImageFolder(a.data, transform=tf)
    loader = torch.utils.data.DataLoader(data, batch_size=a.batch, shuffle=True, drop_last=True, num_workers=a.workers,
                                         pin_memory=a.device == "cuda", persistent_workers=a.workers > 0,
                                         prefetch_factor=4 if a.workers > 0 else None)
    model = timm.create_model(a.model, pretrained=False, num_classes=10, drop_path_rate=0.1).to(a.device)
    step_model = torch.compile(model) if a.compile else model
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=3e-5, fused=a.device == "cuda")
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    model.train()
    wait_s = 0.0
    timed_from = timed_to = None
    done = timed = 0
    windows = []  # images/s between consecutive log steps after warm-up
    last_log = None  # (time, steps done) at the latest log step
    unix_from = unix_to = None
    while done < a.warmup + a.steps:
        it = iter(loader)
        while done < a.warmup + a.steps:
            t0 = time.perf_counter()
            try:
                x, y = next(it)
            except StopIteration:
                break
            if timed_from is not None:
                wait_s += time.perf_counter() - t0
            x, y = x.to(a.device, non_blocking=True), y.to(a.device, non_blocking=True)
            with torch.autocast(device_type="cuda" if a.device == "cuda" else "cpu", dtype=torch.bfloat16):
                loss = loss_fn(step_model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            done += 1
            if done % a.log_every == 0 or done == a.warmup or done == a.warmup + a.steps:
                loss.item()  # the log step's read: the only wait for the device
                now = time.perf_counter()
                if done == a.warmup:
                    timed_from, timed, unix_from = now, 0, time.time()
                elif timed_from is not None:
                    timed_to, unix_to = now, time.time()
                    windows.append(a.batch * (done - last_log[1]) / (now - last_log[0]))
                last_log = (now, done)
            if timed_from is not None and done > a.warmup:
                timed += 1
    elapsed = (timed_to or time.perf_counter()) - timed_from
    mean = a.batch * timed / elapsed
    print(json.dumps({"tool": f"PyTorch {torch.__version__} + timm {timm.__version__} + DataLoader" +
                      (" + torch.compile" if a.compile else ""), "model": a.model, "batch": a.batch,
                      "workers": a.workers, "steps": timed, "windows": len(windows),
                      "images_per_s": round(statistics.median(windows) if windows else mean, 1),
                      "images_per_s_mean": round(mean, 1), "data_wait_share": round(wait_s / elapsed, 4),
                      "timed_unix": [unix_from, unix_to], "command": " ".join(["python3"] + sys.argv)}))


if __name__ == "__main__":
    main()
