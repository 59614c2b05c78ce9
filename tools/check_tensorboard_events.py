#!/usr/bin/env python3
"""Reads a log folder with TensorBoard's own reader and checks scalars:

    check_tensorboard_events.py LOGDIR [--unique] [--count TAG=N] 'TAG=STEP:VALUE,STEP:VALUE' ...

Each TAG must exist; each listed step must hold the value (relative tolerance 1e-6,
float32 storage). With a bare TAG (no '='), only its presence is checked. --unique:
no tag holds a step twice (as TensorBoard shows it, after restart markers); --count:
the tag holds N values. Exit 0 when all hold. Used by the test suite on flowrun's
event files."""
import argparse
import math
import sys

from tensorboard.backend.event_processing import event_accumulator


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logdir")
    ap.add_argument("checks", nargs="*", help="TAG or TAG=STEP:VALUE,...")
    ap.add_argument("--unique", action="store_true", help="no tag holds a step twice")
    ap.add_argument("--count", action="append", default=[], metavar="TAG=N", help="the tag holds N values")
    args = ap.parse_intermixed_args()
    logdir, checks, unique = args.logdir, args.checks, args.unique
    counts = {tag: int(n) for tag, _, n in (c.partition("=") for c in args.count)}
    acc = event_accumulator.EventAccumulator(logdir, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    print("tags:", sorted(tags))
    ok = True
    for check in checks:
        tag, _, pairs = check.partition("=")
        if tag not in tags:
            print(f"missing tag {tag}")
            ok = False
            continue
        by_step = {e.step: e.value for e in acc.Scalars(tag)}
        for pair in filter(None, pairs.split(",")):
            step, value = pair.split(":")
            got = by_step.get(int(step))
            if got is None or not math.isclose(got, float(value), rel_tol=1e-6):
                print(f"{tag} at step {step}: expected {value}, got {got}")
                ok = False
    for tag in sorted(tags):
        steps = [e.step for e in acc.Scalars(tag)]
        if unique and len(steps) != len(set(steps)):
            print(f"{tag}: steps repeat: {steps}")
            ok = False
    for tag, n in counts.items():
        got = len(acc.Scalars(tag)) if tag in tags else 0
        if got != n:
            print(f"{tag}: {got} values, expected {n}")
            ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
