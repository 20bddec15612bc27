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
@click.option("--auto", is_flag=True, help="Segment everything (automatic mask generation) instead of prompts.")
@click.option("--out", "out_dir", default=Path("out"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path))
@click.option("--single", is_flag=True, help="Prompts: one mask per object instead of the best of three.")
@click.option("--points-per-side", default=32, show_default=True, type=click.IntRange(min=1),
              help="--auto: grid of points per image side.")
@click.option("--points-per-batch", default=64, show_default=True, type=click.IntRange(min=1),
              help="--auto: prompts per decoder call.")
@click.option("--pred-iou-thresh", default=0.88, show_default=True, help="--auto: keep masks with higher predicted IoU.")
@click.option("--stability-score-thresh", default=0.95, show_default=True,
              help="--auto: keep masks with at least this stability score.")
@click.option("--crop-n-layers", default=0, show_default=True, type=click.IntRange(min=0),
              help="--auto: layers of overlapping crops to run again.")
@click.option("--min-mask-region-area", default=0, show_default=True, type=click.IntRange(min=0),
              help="--auto: remove holes and islands smaller than this (pixels).")
def segment(engine_dir: Path, image: Path, points, boxes, auto: bool, out_dir: Path, single: bool,
            points_per_side: int, points_per_batch: int, pred_iou_thresh: float, stability_score_thresh: float,
            crop_n_layers: int, min_mask_region_area: int) -> None:
    """Segment IMAGE with point and/or box prompts, or everything with --auto.

    Writes mask_<i>.png per mask, overlay.png, and masks.json (boxes XYWH, scores, and each mask
    as COCO RLE) to --out.
    """
    from samrt import SamRuntime
    from samrt.images import to_rgb_uint8

    parsed_points = [_parse_point(p) for p in points]
    parsed_boxes = [_parse_box(b) for b in boxes]
    if auto and (parsed_points or parsed_boxes):
        _fail("--auto segments everything: give it without --point / --box")
    if not auto and not parsed_points and not parsed_boxes:
        _fail("give at least one --point or --box, or --auto")
    try:
        runtime = SamRuntime.load(engine_dir)
        rgb = to_rgb_uint8(str(image), argument="IMAGE")
        if auto:
            with click.progressbar(length=1, label="segmenting everything", file=sys.stderr) as bar:
                def progress(done: int, total: int) -> None:
                    bar.length = total
                    bar.update(done - bar.pos)

                records = runtime.generate(
                    rgb, points_per_side=points_per_side, points_per_batch=points_per_batch,
                    pred_iou_thresh=pred_iou_thresh, stability_score_thresh=stability_score_thresh,
                    crop_n_layers=crop_n_layers, min_mask_region_area=min_mask_region_area, progress=progress,
                )
            masks = [r.pop("segmentation") for r in records]
        else:
            masks, records = _prompted(runtime, rgb, parsed_points, parsed_boxes, single)
    except SamError as exc:
        _fail(str(exc))
    _write_segmentation(out_dir, str(image), rgb, masks, records)
    if auto and not records:
        click.echo("no mask passed the thresholds (random weights keep none at the defaults; "
                   "try --pred-iou-thresh 0 --stability-score-thresh 0)", err=True)
    click.echo(f"wrote {len(records)} mask(s), overlay.png and masks.json to {out_dir}")


def _prompted(runtime, rgb, parsed_points, parsed_boxes, single: bool):
    """Masks (bool [H, W] list) and records for the prompts: one object per box (the points
    apply to each), or one object for points alone."""
    import numpy as np
    from samrt.amg import batched_mask_to_box, box_xyxy_to_xywh

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
    best = result.iou_scores.argmax(axis=1)
    masks = [result.masks[i, k] for i, k in enumerate(best)]
    records = [{"object": i, "area": int(m.sum()), "bbox": box_xyxy_to_xywh(batched_mask_to_box(m)).tolist(),
                "predicted_iou": float(result.iou_scores[i, k])} for i, (m, k) in enumerate(zip(masks, best, strict=True))]
    return masks, records


def _write_segmentation(out_dir: Path, image: str, rgb, masks, records) -> None:
    import numpy as np
    from PIL import Image
    from samrt.amg import coco_encode_rle, mask_to_rle

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        overlay = rgb.astype(np.float32)
        colours = np.random.default_rng(0).integers(64, 256, (len(masks), 3))
        # Largest first, so small masks stay visible on top.
        for i in sorted(range(len(masks)), key=lambda j: -records[j]["area"]):
            mask = masks[i]
            Image.fromarray(mask.astype(np.uint8) * 255).save(out_dir / f"mask_{i}.png")
            overlay[mask] = 0.5 * overlay[mask] + 0.5 * colours[i]
            records[i]["mask"] = f"mask_{i}.png"
            records[i]["segmentation"] = coco_encode_rle(mask_to_rle(mask)[0])
        Image.fromarray(overlay.astype(np.uint8)).save(out_dir / "overlay.png")
        (out_dir / "masks.json").write_text(json.dumps({"image": image, "masks": records}, indent=2) + "\n")
    except OSError as exc:
        _fail(f"cannot write to {out_dir}: {exc.strerror or exc}")
