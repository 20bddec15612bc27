"""Write a report: ``report.json``, ``report.md``, a self-contained ``report.html`` and overlay PNGs.

Overlays show the reference's mask (green outline and tint) and the backend's (magenta) side by
side on the image, with the prompt: foreground points green, background points red, the box
yellow. The HTML embeds every plot and overlay as a data URI, so it is one file to attach to a
CI run or a ticket.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .checks import describe_failure
from .metrics import mask_boundary
from .prompts import PROMPT_KINDS

REFERENCE_COLOUR = (0, 255, 0)
BACKEND_COLOUR = (255, 0, 255)
OVERLAY_WIDTH = 480


def _outline(mask: np.ndarray) -> np.ndarray:
    edge = mask_boundary(mask)
    thick = edge.copy()  # 3 px wide so it survives downscaling
    thick[1:] |= edge[:-1]
    thick[:-1] |= edge[1:]
    thick[:, 1:] |= edge[:, :-1]
    thick[:, :-1] |= edge[:, 1:]
    return thick


def _panel(rgb: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], case: Any, title: str) -> Image.Image:
    out = rgb.astype(np.float32)
    out[mask] = 0.6 * out[mask] + 0.4 * np.array(colour, np.float32)
    out[_outline(mask)] = colour
    image = Image.fromarray(out.astype(np.uint8))
    scale = OVERLAY_WIDTH / image.width
    image = image.resize((OVERLAY_WIDTH, max(1, round(image.height * scale))), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    if case.box is not None:
        draw.rectangle([float(v) * scale for v in case.box], outline=(255, 255, 0), width=3)
    if case.points is not None:
        for (x, y), label in zip(case.points, case.labels, strict=True):
            fill = (0, 200, 0) if label == 1 else (220, 0, 0)
            draw.ellipse([x * scale - 6, y * scale - 6, x * scale + 6, y * scale + 6], fill=fill, outline=(255, 255, 255))
    draw.rectangle([0, 0, image.width, 18], fill=(0, 0, 0))
    draw.text((4, 3), title, fill=(255, 255, 255))
    return image


def overlay(rgb: np.ndarray, case: Any, backend: str) -> Image.Image:
    """Reference | backend side by side for one worst case."""
    left = _panel(rgb, case.reference_mask, REFERENCE_COLOUR, case, "reference (fp32 PyTorch)")
    right = _panel(rgb, case.backend_mask, BACKEND_COLOUR, case, f"{backend}: IoU {case.mask_iou:.4f}")
    canvas = Image.new("RGB", (left.width + right.width + 8, max(left.height, right.height)), (255, 255, 255))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + 8, 0))
    return canvas


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _figure_png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return buffer.getvalue()


def plot_error_histograms(histograms: dict[str, Any], backend: str) -> bytes:
    """Bar charts of |error| per decade for the embeddings and the low-res logits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(histograms), figsize=(5 * len(histograms), 3.2))
    for axis, (name, hist) in zip(np.atleast_1d(axes), histograms.items(), strict=True):
        edges = np.array(hist["bin_edges"][1:-1])
        counts = np.array(hist["counts"], dtype=np.float64)
        axis.bar(np.arange(len(counts)), counts, color="#1f77b4", width=0.9)
        ticks = list(range(1, len(counts), 8))
        axis.set_xticks(ticks, [f"{edges[t - 1]:.0e}" for t in ticks], rotation=30)
        axis.set_yscale("symlog")
        axis.set_title(f"{backend}: |error| of {name}")
        axis.set_xlabel("absolute error (bin lower edge)")
        axis.set_ylabel("values")
    return _figure_png(figure)


def plot_iou_by_kind(records: list[dict[str, Any]], backend: str) -> bytes:
    """Per-prompt mask IoU against the reference, one column of points (and a box) per kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 3.4))
    values = [[r["mask_iou"] for r in records if r["kind"] == kind] for kind in PROMPT_KINDS]
    axis.boxplot([v or [np.nan] for v in values], tick_labels=list(PROMPT_KINDS), showfliers=False)
    rng = np.random.default_rng(0)
    for i, v in enumerate(values, start=1):
        axis.scatter(i + rng.uniform(-0.15, 0.15, len(v)), v, s=10, color="#1f77b4", alpha=0.7)
    axis.ticklabel_format(axis="y", useOffset=False)
    axis.set_ylabel("mask IoU vs reference")
    axis.set_title(f"{backend}: mask IoU per prompt kind")
    return _figure_png(figure)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _kind_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for kind in ("all", *PROMPT_KINDS):
        a = result["all"] if kind == "all" else result["kinds"][kind]
        if not a.get("count"):
            continue
        rows.append([kind, str(a["count"]), _fmt(a["mask_iou"]["min"]), _fmt(a["mask_iou"]["p1"]),
                     _fmt(a["mask_iou"]["mean"]), _fmt(a["boundary_f"]["mean"]), _fmt(a["best_mask_agreement"]),
                     _fmt(a["iou_scores"]["max_abs"]), _fmt(a["low_res_logits"]["max_abs"]),
                     _fmt(a["low_res_logits"]["p99_abs"]), str(a["nonfinite"])])
    return rows


KIND_HEADER = ["prompts", "n", "mask IoU min", "IoU p1", "IoU mean", "boundary F mean", "best-mask agreement",
               "iou_scores max abs", "logits max abs", "logits p99 abs", "NaN/inf"]


def write_report(out_dir: Path, record: dict[str, Any], results: dict[str, dict[str, Any]],
                 images: dict[str, np.ndarray]) -> dict[str, Path]:
    """Write the report files; ``record`` is report.json's content, ``results`` the raw
    ``compare_backend`` results per backend (for worst cases and plots)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    overlays: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for backend, result in results.items():
        overlays[backend] = []
        for rank, case in enumerate(result["worst"]):
            name = f"worst_{backend}_{rank}_{case.kind}.png"
            overlay(images[case.image], case, backend).save(out_dir / name)
            overlays[backend].append((name, {"image": case.image, "kind": case.kind, "index": case.index,
                                             "mask_iou": case.mask_iou}))
    for backend, entries in overlays.items():
        record["backends"][backend]["worst_cases"] = [{"file": f, **meta} for f, meta in entries]
    (out_dir / "report.json").write_text(json.dumps(record, indent=2, allow_nan=True) + "\n")
    (out_dir / "report.md").write_text(render_markdown(record))
    plots = {b: {"errors": plot_error_histograms(r["histograms"], b), "iou": plot_iou_by_kind(r["prompts"], b)}
             for b, r in results.items()}
    (out_dir / "report.html").write_text(render_html(record, plots, out_dir))
    return {"json": out_dir / "report.json", "markdown": out_dir / "report.md", "html": out_dir / "report.html"}


def render_markdown(record: dict[str, Any]) -> str:
    lines = [f"# Accuracy report: {record['engine']['name']} ({record['engine']['precision']})", "",
             f"Verdict: **{'PASS' if record['passed'] else 'FAIL'}**. Reference: {record['reference']}. "
             f"{len(record['images'])} image(s), {record['settings']['prompts_per_kind']} prompts of each kind "
             "per image.", ""]
    for backend, entry in record["backends"].items():
        lines += [f"## {backend}: {'PASS' if entry['passed'] else 'FAIL'}", ""]
        failed = [c for c in entry["checks"] if not c["passed"]]
        lines += [f"- FAILED {describe_failure(c)}" for c in failed] or ["- every check passed"]
        lines += ["", "| image | max abs | mean abs | cosine | NaN/inf |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {e['image']} | {_fmt(e['max_abs'])} | {_fmt(e['mean_abs'])} | {_fmt(e['cosine'])} | "
                  f"{e['nonfinite']} |" for e in entry["embeddings"]]
        lines += ["", "| " + " | ".join(KIND_HEADER) + " |", "|" + " --- |" * len(KIND_HEADER)]
        lines += ["| " + " | ".join(row) + " |" for row in _kind_rows(entry)]
        lines += ["", "Worst cases: " + ", ".join(f"[{w['kind']} #{w['index']} on {w['image']}: IoU "
                                                   f"{w['mask_iou']:.4f}]({w['file']})"
                                                   for w in entry.get("worst_cases", [])), ""]
    return "\n".join(lines) + "\n"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(record: dict[str, Any], plots: dict[str, dict[str, bytes]], out_dir: Path) -> str:
    verdict = "PASS" if record["passed"] else "FAIL"
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>samexport report: {html.escape(record['engine']['name'])}</title>",
        "<style>body{font-family:sans-serif;margin:24px;max-width:1100px}table{border-collapse:collapse;"
        "margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}"
        ".pass{color:#0a0}.fail{color:#c00}img{max-width:100%;display:block;margin:8px 0}</style></head><body>",
        f"<h1>Accuracy report: {html.escape(record['engine']['name'])} ({html.escape(record['engine']['precision'])})"
        f" <span class='{verdict.lower()}'>{verdict}</span></h1>",
        f"<p>Reference: {html.escape(record['reference'])}. Images: {html.escape(', '.join(record['images']))}. "
        f"{record['settings']['prompts_per_kind']} prompts of each kind per image.</p>",
    ]
    for backend, entry in record["backends"].items():
        state = "PASS" if entry["passed"] else "FAIL"
        parts.append(f"<h2 id='{html.escape(backend)}'>{html.escape(backend)} "
                     f"<span class='{state.lower()}'>{state}</span></h2><ul>")
        failed = [c for c in entry["checks"] if not c["passed"]]
        parts += [f"<li class='fail'>{html.escape(describe_failure(c))}</li>" for c in failed] or [
            "<li class='pass'>every check passed</li>"]
        parts.append("</ul><h3>Image embeddings</h3>")
        parts.append(_table(["image", "max abs", "mean abs", "cosine", "NaN/inf"],
                            [[e["image"], _fmt(e["max_abs"]), _fmt(e["mean_abs"]), _fmt(e["cosine"]),
                              str(e["nonfinite"])] for e in entry["embeddings"]]))
        parts.append("<h3>Masks and scores per prompt kind</h3>")
        parts.append(_table(KIND_HEADER, [list(r) for r in _kind_rows(entry)]))
        parts.append(f"<img alt='error histograms {html.escape(backend)}' class='plot' "
                     f"src='{_data_uri(plots[backend]['errors'])}'>")
        parts.append(f"<img alt='mask IoU per kind {html.escape(backend)}' class='plot' "
                     f"src='{_data_uri(plots[backend]['iou'])}'>")
        parts.append("<h3>Worst cases (reference left, backend right)</h3>")
        for worst in entry.get("worst_cases", []):
            png = (out_dir / worst["file"]).read_bytes()
            parts.append(f"<p>{html.escape(worst['kind'])} #{worst['index']} on {html.escape(worst['image'])}: "
                         f"mask IoU {worst['mask_iou']:.4f}</p><img alt='overlay' class='overlay' src='{_data_uri(png)}'>")
    parts.append("</body></html>")
    return "\n".join(parts)
