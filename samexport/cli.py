"""The ``samexport`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from samrt.errors import SamError


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def load_source(source: str):
    """``random:NAME`` (seeded random weights; smoke tests and benchmarks only), an HF
    directory or a Meta .pth file -> (SamModel, sha256 of the source or None)."""
    from .checkpoints import load_model, random_model, sha256_of
    from .config import preset

    if source.startswith("random:"):
        return random_model(preset(source.split(":", 1)[1]), seed=0), None
    return load_model(source), sha256_of(source)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="samexport")
def main() -> None:
    """Export Segment Anything to ONNX / TensorRT, prove it, and run it."""


@main.command()
@click.option("--model", "source", required=True,
              help="HF directory, Meta .pth file, or random:tiny|vit_b|vit_l|vit_h (random weights: "
                   "for smoke tests and benchmarks only).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Engine directory to write (replaced atomically).")
def export(source: str, out_dir: Path) -> None:
    """Export the encoder and decoder graphs to ONNX, check and verify them."""
    from .export import export_model

    try:
        click.echo(f"loading {source}")
        model, digest = load_source(source)
        export_model(model, out_dir, source=source, source_sha256=digest,
                     progress=lambda msg: click.echo(f"  {msg} ..."))
    except SamError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write {out_dir}: {exc.strerror or exc}")
    click.echo(f"wrote {out_dir}")


def _parse_point(text: str) -> tuple[float, float, int]:
    coords, _, label = text.partition(":")
    try:
        x, y = (float(v) for v in coords.split(","))
        return x, y, int(label) if label else 1
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected x,y or x,y:label") from None


def _parse_box(text: str) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected x0,y0,x1,y1") from None
    return x0, y0, x1, y1


@main.command()
@click.argument("engine_dir", type=click.Path(path_type=Path))
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--point", "points", multiple=True, help="x,y[:label] in image pixels (label 1 fg, 0 bg). Repeatable.")
@click.option("--box", "boxes", multiple=True, help="x0,y0,x1,y1 in image pixels. Repeatable: one object per box.")
@click.option("--out", "out_dir", default=Path("out"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path))
@click.option("--single", is_flag=True, help="One mask per object instead of the best of three.")
def segment(engine_dir: Path, image: Path, points, boxes, out_dir: Path, single: bool) -> None:
    """Segment IMAGE with point and/or box prompts; write mask PNGs, an overlay and JSON."""
    import numpy as np
    from PIL import Image
    from samrt import SamRuntime
    from samrt.images import to_rgb_uint8

    parsed_points = [_parse_point(p) for p in points]
    parsed_boxes = [_parse_box(b) for b in boxes]
    if not parsed_points and not parsed_boxes:
        _fail("give at least one --point or --box")
    try:
        runtime = SamRuntime.load(engine_dir)
        rgb = to_rgb_uint8(str(image), argument="IMAGE")
        embedding = runtime.embed(rgb)
        kwargs = {}
        n = max(len(parsed_boxes), 1)
        if parsed_points:
            pts = np.array([[p[0], p[1]] for p in parsed_points], np.float32)
            labels = np.array([p[2] for p in parsed_points], np.int32)
            kwargs["points"] = np.repeat(pts[None], n, axis=0)
            kwargs["labels"] = np.repeat(labels[None], n, axis=0)
        if parsed_boxes:
            kwargs["boxes"] = np.array(parsed_boxes, np.float32)
        result = runtime.predict(embedding, multimask_output=not single, **kwargs)
    except SamError as exc:
        _fail(str(exc))
    best = result.iou_scores.argmax(axis=1)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"cannot create {out_dir}: {exc.strerror or exc}")
    overlay = rgb.astype(np.float32)
    colours = np.random.default_rng(0).integers(64, 256, (len(best), 3))
    records = []
    for i, k in enumerate(best):
        mask = result.masks[i, k]
        Image.fromarray(mask.astype(np.uint8) * 255).save(out_dir / f"mask_{i}.png")
        overlay[mask] = 0.5 * overlay[mask] + 0.5 * colours[i]
        records.append({"object": i, "mask": f"mask_{i}.png", "predicted_iou": float(result.iou_scores[i, k]),
                        "area": int(mask.sum())})
    Image.fromarray(overlay.astype(np.uint8)).save(out_dir / "overlay.png")
    (out_dir / "masks.json").write_text(json.dumps({"image": str(image), "objects": records}, indent=2) + "\n")
    click.echo(f"wrote {len(records)} mask(s), overlay.png and masks.json to {out_dir}")
