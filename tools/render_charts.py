#!/usr/bin/env python3
"""Renders charts of a flowrun HTML page (ablation.html, report.html) to PNG files with
headless Chromium, for the docs: each chart is an <svg id=...> element, cut out with the
page's style into a page of its own and screenshot at its size (x2 for sharp text).

    python3 tools/render_charts.py runs/ablations/strategy_vs_data/ablation.html \
        against-0=docs/images/strategy_vs_data.png differences=docs/images/strategy_vs_data_differences.png

Needs Chromium (Debian: apt-get install chromium); the charts have no scripts and load
nothing, so the page renders offline.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile


def svg_element(page: str, svg_id: str) -> str:
    match = re.search(r'<svg id="%s"[^>]*>.*?</svg>' % re.escape(svg_id), page, re.S)
    if not match:
        ids = re.findall(r'<svg id="([^"]+)"', page)
        sys.exit(f"render_charts: no <svg id=\"{svg_id}\"> in the page; it has: {', '.join(ids) or 'none'}")
    return match.group(0)


def size_of(svg: str) -> tuple:
    width = re.search(r'width="([\d.]+)"', svg)
    height = re.search(r'height="([\d.]+)"', svg)
    if not width or not height:
        sys.exit("render_charts: the chart has no width/height")
    return int(float(width.group(1))) + 2, int(float(height.group(1))) + 2


def render(chromium: str, style: str, svg: str, out: str) -> None:
    width, height = size_of(svg)
    with tempfile.TemporaryDirectory() as tmp:
        page = os.path.join(tmp, "chart.html")
        with open(page, "w", encoding="utf-8") as f:
            f.write(f'<!DOCTYPE html><html><head><meta charset="utf-8"><style>{style}'
                    'body{margin:0;background:#fff}</style></head><body>' + svg + "</body></html>")
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        cmd = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--force-device-scale-factor=2", f"--window-size={width},{height}",
               f"--user-data-dir={os.path.join(tmp, 'profile')}", f"--screenshot={os.path.abspath(out)}",
               "file://" + page]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if result.returncode != 0 or not os.path.exists(out):
            sys.exit(f"render_charts: chromium failed ({result.returncode}): {result.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("page", help="the HTML page flowrun wrote")
    parser.add_argument("charts", nargs="+", metavar="SVG_ID=OUT.png", help="a chart's id and the PNG to write")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"),
                        help="the Chromium binary (default: chromium on PATH)")
    args = parser.parse_args()
    if not args.chromium:
        sys.exit("render_charts: no chromium on PATH (Debian: apt-get install chromium)")
    with open(args.page, encoding="utf-8") as f:
        page = f.read()
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    for chart in args.charts:
        if "=" not in chart:
            sys.exit(f"render_charts: '{chart}' is not SVG_ID=OUT.png")
        svg_id, out = chart.split("=", 1)
        render(args.chromium, style.group(1) if style else "", svg_element(page, svg_id), out)
        print(f"render_charts: {svg_id} -> {out}")


if __name__ == "__main__":
    main()
