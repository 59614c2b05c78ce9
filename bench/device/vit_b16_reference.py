#!/usr/bin/env python3
"""The plain PyTorch-Python reference for flowrun's ViT-B/16 fine-tuning pipeline
(pipelines/vit_cifar10_fullft.json), tuned as a careful user would: timm's
vit_base_patch16_224 (random weights, as the flowrun run), torchvision ImageFolder +
DataLoader (num_workers = cores, pin_memory, persistent workers, prefetch 4) with
RandomResizedCrop(224, scale=(0.5, 1)), RandomHorizontalFlip, ToTensor, Normalize(0.5),
batch 128, bf16 autocast, fused AdamW (lr 3e-5, weight decay 0.05, none on 1-D
parameters), label smoothing 0.1, drop path 0.1, clipping at 1.0, non_blocking copies.
Prints one JSON line: median images/s over the timed steps, and the share of the time
spent waiting for the next batch.

    python3 bench/device/vit_b16_reference.py --data DIR_OF_EXTRACTED_TAR/train [--steps 120] [--device cuda]
"""
import argparse
import json
import os
import statistics
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
    ap.add_argument("--warmup", type=int, default=15)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    tf = transforms.Compose([transforms.RandomResizedCrop(224, scale=(0.5, 1.0)), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)])
    data = torchvision.datasets.ImageFolder(a.data, transform=tf)
    loader = torch.utils.data.DataLoader(data, batch_size=a.batch, shuffle=True, drop_last=True, num_workers=a.workers,
                                         pin_memory=a.device == "cuda", persistent_workers=a.workers > 0,
                                         prefetch_factor=4 if a.workers > 0 else None)
    model = timm.create_model(a.model, pretrained=False, num_classes=10, drop_path_rate=0.1).to(a.device)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=3e-5, fused=a.device == "cuda")
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    model.train()
    step_s, wait_s = [], []
    done = 0
    while done < a.warmup + a.steps:
        it = iter(loader)
        while done < a.warmup + a.steps:
            t0 = time.perf_counter()
            try:
                x, y = next(it)
            except StopIteration:
                break
            t1 = time.perf_counter()
            x, y = x.to(a.device, non_blocking=True), y.to(a.device, non_blocking=True)
            with torch.autocast(device_type="cuda" if a.device == "cuda" else "cpu", dtype=torch.bfloat16):
                loss = loss_fn(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if a.device == "cuda":
                torch.cuda.synchronize()  # the step's real end, so that the times add up
            t2 = time.perf_counter()
            if done >= a.warmup:
                step_s.append(t2 - t0)
                wait_s.append(t1 - t0)
            done += 1
    print(json.dumps({"tool": f"PyTorch {torch.__version__} + timm {timm.__version__} + DataLoader", "model": a.model,
                      "batch": a.batch, "workers": a.workers, "steps": len(step_s),
                      "images_per_s": round(a.batch / statistics.median(step_s), 1),
                      "data_wait_share": round(sum(wait_s) / sum(step_s), 4)}))


if __name__ == "__main__":
    main()
