#!/usr/bin/env python3
"""The PyTorch reference for flowrun's from-scratch CIFAR-10 recipe: the same recipe, written the
way a PyTorch user would, with timm's VisionTransformer and torchvision's transforms.

It follows pipelines/quickstart.json step for step, so that an accuracy flowrun reports can be read
next to this one (bench/compare_learning.py runs both and prints them side by side):
  - data: the CIFAR-10 JPEGs of ../shared/data/cifar10-jpeg.tar, decoded once into memory (uint8);
    per sample RandomCrop(32, padding=4, padding_mode) and RandomHorizontalFlip, then ToDtype and
    Normalize with the CIFAR-10 mean/std; batches of 128, reshuffled every epoch, last partial dropped;
  - model: timm VisionTransformer, 32 px, patch 4, CLS pooling, LayerNorm eps 1e-6, no dropout or
    drop path; --init pytorch is timm's weight_init='reset' (PyTorch's layer init; position embedding
    trunc-normal 0.02, CLS token N(0, 1e-6)), --init timm its default init with the head zeroed;
  - AdamW (fused), no weight decay on 1-D parameters, the position embedding and the CLS token;
    linear warmup (round(warmup_fraction x steps) steps, lr x (s + 1) / warmup) then cosine to 0,
    by optimizer step; cross-entropy with label smoothing; gradient clipping by global norm;
  - the test split (10,000 images) evaluated after every epoch.

    .venv/bin/python bench/reference_vit_cifar.py [--epochs 4] [--width 96 --depth 4 --heads 3 --mlp-ratio 4]
        [--lr 2e-3] [--init pytorch|timm] [--padding-mode reflect|constant] [--threads 2] [--json OUT]

Prints one line per epoch (test accuracy, loss, seconds) and a summary; --json writes them.
"""
import argparse
import io
import json
import math
import pathlib
import sys
import tarfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.247, 0.2435, 0.2616)
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def load_split(tar_path, split, per_class_limit=0):
    """(N, 3, 32, 32) uint8 images and (N,) labels of one split, in the tar's (sorted) order."""
    import numpy as np
    import torch
    from PIL import Image

    images, labels, seen = [], [], {}
    with tarfile.open(tar_path) as tar:
        for member in tar:
            if not member.isfile() or not member.name.startswith(split + "/"):
                continue
            label = CLASSES.index(member.name.split("/")[1])
            if per_class_limit and seen.get(label, 0) >= per_class_limit:
                continue
            seen[label] = seen.get(label, 0) + 1
            with Image.open(io.BytesIO(tar.extractfile(member).read())) as im:
                images.append(np.asarray(im.convert("RGB")))
            labels.append(label)
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), torch.tensor(labels)


class TrainSet:
    """Per-sample torchvision transforms over the decoded images."""

    def __init__(self, images, labels, padding_mode):
        import torchvision.transforms.v2 as T

        self.images, self.labels = images, labels
        self.transform = T.Compose([T.RandomCrop(32, padding=4, padding_mode=padding_mode), T.RandomHorizontalFlip()])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def normalize(batch):
    import torch

    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (batch.float().div_(255) - mean) / std


def make_model(args):
    from timm.models.vision_transformer import VisionTransformer

    import torch

    model = VisionTransformer(img_size=32, patch_size=4, num_classes=10, embed_dim=args.width, depth=args.depth,
                              num_heads=args.heads, mlp_ratio=args.mlp_ratio, qkv_bias=True, class_token=True,
                              global_pool="token", drop_rate=0.0, drop_path_rate=0.0,
                              weight_init="reset" if args.init == "pytorch" else "")
    if args.init == "timm":  # flowrun's timm init also zeroes the head (timm's 'jax' mode does)
        with torch.no_grad():
            model.head.weight.zero_()
            model.head.bias.zero_()
    return model


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or name in ("pos_embed", "cls_token") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_factor(step, total, warmup):
    if step < warmup:
        return (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * p))


def evaluate(model, images, labels):
    import torch

    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(labels), 500):
            logits = model(normalize(images[i:i + 500]))
            y = labels[i:i + 500]
            loss_sum += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    model.train()
    return correct / len(labels), loss_sum / len(labels)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tar", default=str(ROOT.parent / "shared/data/cifar10-jpeg.tar"))
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--mlp-ratio", type=float, default=4.0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--warmup-fraction", type=float, default=0.05)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--init", choices=["pytorch", "timm"], default="pytorch")
    ap.add_argument("--padding-mode", choices=["reflect", "constant", "edge", "symmetric"], default="reflect")
    ap.add_argument("--per-class-limit", type=int, default=0, help="training images per class (0 = all 5,000)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the per-epoch figures and the summary here")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    train_x, train_y = load_split(args.tar, "train", args.per_class_limit)
    test_x, test_y = load_split(args.tar, "test")
    load_s = time.perf_counter() - started
    print(f"reference: {len(train_y)} train / {len(test_y)} test images decoded in {load_s:.1f} s", flush=True)

    model = make_model(args)
    optimizer = torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.999), eps=1e-8,
                                  fused=True)
    loader = torch.utils.data.DataLoader(TrainSet(train_x, train_y, args.padding_mode), batch_size=args.batch,
                                         shuffle=True, drop_last=True, num_workers=0)
    total = args.epochs * len(loader)
    warmup = min(total, round(args.warmup_fraction * total))
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    print(f"reference: timm {__import__('timm').__version__}, torch {torch.__version__}, "
          f"{sum(p.numel() for p in model.parameters())} parameters, {args.init} init, padding {args.padding_mode}, "
          f"{total} steps (warmup {warmup}), {args.threads} threads", flush=True)
    epochs, step = [], 0
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        for images, labels in loader:
            for group in optimizer.param_groups:
                group["lr"] = args.lr * lr_factor(step, total, warmup)
            loss = criterion(model(normalize(images)), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if args.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            step += 1
        train_s = time.perf_counter() - t0
        accuracy, loss = evaluate(model, test_x, test_y)
        epochs.append({"epoch": epoch, "step": step, "accuracy": accuracy, "loss": loss, "train_s": train_s,
                       "wall_s": time.perf_counter() - started})
        print(f"reference: epoch {epoch} step {step}: test accuracy {accuracy:.4f}, loss {loss:.4f} "
              f"({train_s:.1f} s training, {time.perf_counter() - started:.1f} s so far)", flush=True)
    summary = {"accuracy": epochs[-1]["accuracy"], "steps": step, "wall_s": time.perf_counter() - started,
               "args": vars(args), "epochs": epochs}
    print(f"reference: final test accuracy {summary['accuracy']:.4f} after {step} steps in {summary['wall_s']:.0f} s")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
