"""The ``samexport`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from samrt.backends import BACKENDS
from samrt.errors import SamError
from samrt.generate import GenerateSettings

from samexport.build import PRECISIONS, TARGETS
from samexport.precision import DEFAULT_POLICY, POLICIES
from samexport.timing import result_path

_GENERATE = GenerateSettings()  # the --auto options' defaults are segment_anything's, declared once there


def _fail(message: str, *, code: int = 1) -> None:
    from .interrupts import raise_if_requested

    raise_if_requested()  # an error that followed a swallowed Ctrl-C / SIGTERM is reported as the signal
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _cannot_write(target: object, exc: OSError, *, code: int = 1) -> None:
    """One sentence naming the path that could not be written (the OS's, when it says) and why."""
    _fail(f"cannot write {exc.filename or target}: {exc.strerror or exc}", code=code)


class _Commands(click.Group):
    """Every command: Ctrl-C ends with one sentence and exit status 130 (128 + SIGINT), SIGTERM
    the same way with 143. Writers stage their output in a temporary directory that is removed on
    the way out, so nothing half-written is left behind."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        from . import interrupts

        interrupts.install()
        try:
            try:
                interrupts.raise_if_requested()  # a signal during start-up that something swallowed
                return super().invoke(ctx)
            except Exception:
                # Library code that swallowed the signal may fail in its own way afterwards (torch's
                # exporter retries with a half-imported module): the signal is the cause to report.
                interrupts.raise_if_requested()
                raise
        except KeyboardInterrupt as exc:
            click.echo(f"error: {interrupts.describe(exc)}; nothing half-written was left behind", err=True)
            sys.exit(interrupts.exit_status(exc))


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="samexport")
def main() -> None:
    """Export Segment Anything to ONNX / TensorRT, prove it, and run it."""


@main.command()
@click.option("--model", "source", required=True,
              help="HF directory, Meta .pth file, or random:tiny|vit_b|vit_l|vit_h (random weights: "
                   "for smoke tests and benchmarks only; add -stress, e.g. random:vit_b-stress, for "
                   "FP16-hostile outlier channels).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Engine directory to write: a new or empty directory, or an engine directory with --overwrite.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing engine directory at --out (atomically; other directories are never removed).")
def export(source: str, out_dir: Path, overwrite: bool) -> None:
    """Export the encoder and decoder graphs to ONNX, check and verify them."""
    from .checkpoints.sources import load_source
    from .export import export_model

    try:
        click.echo(f"loading {source}")
        model, digest = load_source(source)
        export_model(model, out_dir, source=source, source_sha256=digest, overwrite=overwrite,
                     progress=lambda msg: click.echo(f"  {msg} ..."))
    except SamError as exc:
        _fail(str(exc))
    except OSError as exc:
        _cannot_write(out_dir, exc)
    click.echo(f"wrote {out_dir}")


@main.command()
@click.argument("engine_dir", type=click.Path(path_type=Path))
@click.option("--backend", default="auto", show_default=True,
              type=click.Choice(list(BACKENDS)), help="Runtime backend to time.")
@click.option("--compare-transformers", is_flag=True,
              help="Also time transformers' SamModel (eager and sdpa attention) with the same weights "
                   "(needs transformers).")
@click.option("--reference", default=None,
              help="Checkpoint for --compare-transformers (default: the source recorded in the manifest).")
@click.option("--image", "image_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Image to time pre/post-processing on (default: a synthetic 2250x1500 image).")
@click.option("--encoder-runs", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--decoder-runs", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-prompts", default=64, show_default=True, type=click.IntRange(min=1),
              help="N of the batched decoder call.")
@click.option("--out", "out_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="JSON file to write [default: benchmarks/results/<machine id>/bench_<engine>_<backend>.json].")
def bench(engine_dir: Path, backend: str, compare_transformers: bool, reference: str | None,
          image_path: Path | None, encoder_runs: int, decoder_runs: int, batch_prompts: int,
          out_path: Path | None) -> None:
    """Time ENGINE_DIR: encoder, decoder at N = 1 and N = --batch-prompts, pre/post-processing.

    Prints p50/p90 latencies and writes them as JSON with the machine described.
    """
    from samrt.images import to_rgb_uint8
    from samrt.manifest import read_manifest

    from .bench import BenchSettings, run_bench
    from .checkpoints.sources import reference_for_engine

    try:
        manifest = read_manifest(engine_dir)
        image = to_rgb_uint8(str(image_path), argument="--image") if image_path else None
        model = reference_for_engine(manifest.model, reference) if compare_transformers else None
        settings = BenchSettings(encoder_runs=encoder_runs, decoder_runs=decoder_runs, batch_prompts=batch_prompts)
        record = run_bench(engine_dir, settings=settings, backend=backend, reference=model, image=image,
                           progress=lambda msg: click.echo(f"  timing {msg} ...", err=True))
    except SamError as exc:
        _fail(str(exc))
    ours = record["samrt"]
    out_path = out_path or result_path(f"bench_{engine_dir.name}_{ours['backend']}", record["machine"])
    for key in ("encoder", "decoder_n1", "decoder_batch", "preprocess", "postprocess_3_masks", "predict_n1"):
        click.echo(f"{key:>20}: p50 {ours[key]['p50_ms']:9.2f} ms   p90 {ours[key]['p90_ms']:9.2f} ms")
    for baseline, ratios in record.get("comparison", {}).items():
        click.echo(f"transformers {baseline.replace('_', ' ')}:")
        for key, value in ratios.items():
            click.echo(f"{key:>36}: {value}")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(record, indent=2) + "\n")
    except OSError as exc:
        _cannot_write(out_path, exc)
    click.echo(f"wrote {out_path}")


@main.command()
@click.argument("engine_dir", type=click.Path(path_type=Path))
@click.option("--images", "image_paths", multiple=True,
              help="Image file or directory (repeatable) [default: scikit-image's astronaut, coffee, chelsea].")
@click.option("--prompts", "prompts_per_kind", default=8, show_default=True, type=click.IntRange(min=1),
              help="Prompts of each kind (point, points, box, point_box, refine) per image.")
@click.option("--reference", default=None,
              help="Reference checkpoint (default: the source recorded in the manifest; random:NAME is rebuilt).")
@click.option("--backends", default=None,
              help="Comma-separated backends to check: onnxruntime,tensorrt [default: those available].")
@click.option("--thresholds", "thresholds_file", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="JSON object overriding pass/fail thresholds (keys: see samexport.report.thresholds).")
@click.option("--worst", default=6, show_default=True, type=click.IntRange(min=0),
              help="Worst cases to draw as overlays, per backend.")
@click.option("--out", "out_dir", default=Path("report"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path))
def report(engine_dir: Path, image_paths: tuple[str, ...], prompts_per_kind: int, reference: str | None,
           backends: str | None, thresholds_file: Path | None, worst: int, out_dir: Path) -> None:
    """Accuracy of ENGINE_DIR against the fp32 PyTorch reference: report.json, report.md, report.html.

    Exit status: 0 when every check passes, 1 when one fails, 2 for bad arguments.
    """
    from samrt.manifest import read_manifest

    from .checkpoints.sources import reference_for_engine
    from .report import available_backends, load_images, run_report, sample_images
    from .report.checks import describe_failure
    from .report.compare import CompareSettings
    from .report.render import write_report

    try:
        manifest = read_manifest(engine_dir)
        chosen = [b.strip() for b in backends.split(",") if b.strip()] if backends else None
        images = load_images(image_paths) if image_paths else sample_images()
        click.echo(f"loading the reference ({reference or manifest.model.source})", err=True)
        model = reference_for_engine(manifest.model, reference)
        chosen = chosen or available_backends(engine_dir, manifest)
        with click.progressbar(length=len(images) * len(chosen), label="comparing", file=sys.stderr) as bar:
            def progress(backend: str, done: int, total: int) -> None:
                bar.label = f"comparing {backend}"
                bar.update(1)

            record, results = run_report(engine_dir, model, images=images, backends=chosen,
                                         thresholds_file=thresholds_file,
                                         settings=CompareSettings(prompts_per_kind=prompts_per_kind, worst_cases=worst),
                                         reference_name=f"fp32 PyTorch ({reference or manifest.model.source})",
                                         progress=progress)
    except SamError as exc:
        _fail(str(exc), code=2)
    try:
        written = write_report(out_dir, record, results, dict(images))
    except OSError as exc:
        _cannot_write(out_dir, exc, code=2)
    for backend, entry in record["backends"].items():
        click.echo(f"{backend}: {'PASS' if entry['passed'] else 'FAIL'}")
        for check in entry["checks"]:
            if not check["passed"]:
                click.echo(f"  FAILED {describe_failure(check)}")
    click.echo(f"wrote {written['json']}, {written['markdown'].name}, {written['html'].name}")
    sys.exit(0 if record["passed"] else 1)


@main.command()
@click.argument("engine_dir", type=click.Path(path_type=Path))
@click.option("--precision", required=True, type=click.Choice(list(PRECISIONS)),
              help="fp16: FP16 with FP32 islands (--policy); int8: dynamic quantisation for CPU servers "
                   "with int8 kernels (onnxruntime; --int8-terms); bf16: OpenVINO on CPUs with AVX512_BF16 or "
                   "AMX (--target openvino); fp32: a verified copy.")
@click.option("--target", default="auto", show_default=True, type=click.Choice(["auto", *TARGETS]),
              help="auto: tensorrt for fp16/fp32 when TensorRT and a GPU are present, openvino for bf16, else "
                   "onnxruntime.")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="New engine directory [default: ENGINE_DIR-<precision> beside ENGINE_DIR]; must not overlap "
                   "ENGINE_DIR.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing engine directory at --out (atomically; other directories are never removed).")
@click.option("--check-prompts", default=4, show_default=True, type=click.IntRange(min=0),
              help="Prompts of each kind in the closing accuracy check (0 skips it).")
@click.option("--reference", default=None,
              help="Reference checkpoint for the check (default: the source recorded in the manifest).")
@click.option("--policy", default=DEFAULT_POLICY.name, show_default=True, type=click.Choice(list(POLICIES)),
              help="fp16: what stays FP32 (see samexport.precision; naive keeps nothing: for demonstrating "
                   "the failure only).")
@click.option("--emulate", is_flag=True,
              help="fp16 on onnxruntime: write FP32 graphs that round like FP16 (runs on any CPU).")
@click.option("--int8-terms", default=2, show_default=True, type=click.IntRange(1, 2),
              help="int8: int8 terms per weight. 2 keeps ~15 bits of each weight (two int8 products; "
                   "accurate); 1 is onnxruntime's quantize_dynamic (faster, loses mask accuracy).")
@click.option("--int8-activation-terms", default=None, type=click.IntRange(1, 2),
              help="int8 with --int8-terms 2: int8 terms per activation. 2 adds the uint8 remainder "
                   "(~16 bits; accurate on outlier-heavy weights, ~1.15x the time of 1); 1 rounds each "
                   "activation to uint8 only. [default: 2 with --int8-terms 2, else 1]")
@click.option("--max-prompts", default=64, show_default=True, type=int,
              help="TensorRT: most prompts per decoder call in the batch profile (more are split).")
@click.option("--max-points", default=16, show_default=True, type=int,
              help="TensorRT: most points per prompt (besides a box).")
@click.option("--workspace", "workspace_mb", default=None, type=int,
              help="TensorRT: builder workspace limit in MiB [default: TensorRT's].")
@click.option("--timing-cache", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="TensorRT: shared timing cache file [default: timing.cache in the output, reused on rebuild].")
def build(engine_dir: Path, precision: str, target: str, out_dir: Path | None, overwrite: bool, check_prompts: int,
          reference: str | None, policy: str, emulate: bool, int8_terms: int, int8_activation_terms: int | None,
          max_prompts: int, max_points: int, workspace_mb: int | None, timing_cache: Path | None) -> None:
    """Build an engine directory at another precision from the fp32 one `export` wrote.

    Ends with a short accuracy check against the fp32 PyTorch reference; its summary is stored
    in the new manifest (`accuracy`) and a failed check makes the exit status 1.
    """
    from samrt.manifest import read_manifest

    from .build import BuildSettings, build_engine, tensorrt_missing
    from .checkpoints.sources import reference_for_engine

    if target == "auto":
        missing = tensorrt_missing()
        target = ("openvino" if precision == "bf16" else
                  "tensorrt" if precision != "int8" and not emulate and missing is None else "onnxruntime")
        if precision == "fp16" and not emulate and missing is not None:
            click.echo(f"note: {missing}, so --target auto builds FP16 ONNX for onnxruntime "
                       "(pass --target tensorrt to require TensorRT)", err=True)
    try:
        settings = BuildSettings(target=target, precision=precision, check_prompts=check_prompts, policy=policy,
                                 emulate=emulate, int8_terms=int8_terms,
                                 int8_activation_terms=int8_activation_terms, max_prompts=max_prompts,
                                 max_points=max_points,
                                 workspace_mb=workspace_mb, timing_cache=timing_cache)
        manifest = read_manifest(engine_dir)
        model = reference_for_engine(manifest.model, reference) if check_prompts else None
        built = build_engine(engine_dir, settings=settings, out_dir=out_dir, reference=model, overwrite=overwrite,
                             progress=lambda msg: click.echo(f"  {msg} ...", err=True))
    except SamError as exc:
        _fail(str(exc))
    except OSError as exc:
        _cannot_write(out_dir or "the engine directory", exc)
    result = read_manifest(built)
    click.echo(f"wrote {built} ({result.build.seconds} s)")
    accuracy = result.accuracy
    if accuracy:
        iou = accuracy.mask_iou
        click.echo(f"accuracy vs fp32 reference: {'PASS' if accuracy.passed else 'FAIL'} "
                   f"(embedding cosine {accuracy.embeddings_cosine_min:.5f}, mask IoU min {iou['min']:.4f} "
                   f"p5 {iou['p5']:.4f} mean {iou['mean']:.4f} over {accuracy.prompts} prompts)")
        for line in accuracy.failed:
            click.echo(f"  FAILED {line}")
        if not accuracy.passed:
            sys.exit(1)


@main.command()
@click.argument("engine_dir", type=click.Path(path_type=Path))
def inspect(engine_dir: Path) -> None:
    """Verify ENGINE_DIR (manifest, sha256 of every artefact) and describe it: source, precision,
    policy, graphs, accuracy, and whether its TensorRT engines can run on this machine."""
    from .inspection import inspect_engine

    try:
        inspection = inspect_engine(engine_dir)
    except SamError as exc:
        _fail(str(exc))
    for line in inspection.lines():
        click.echo(line)
    if inspection.incompatible is not None:
        _fail(str(inspection.incompatible))


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
@click.option("--points-per-side", default=_GENERATE.points_per_side, show_default=True, type=click.IntRange(min=1),
              help="--auto: grid of points per image side.")
@click.option("--points-per-batch", default=_GENERATE.points_per_batch, show_default=True, type=click.IntRange(min=1),
              help="--auto: prompts per decoder call.")
@click.option("--pred-iou-thresh", default=_GENERATE.pred_iou_thresh, show_default=True, help="--auto: keep masks with higher predicted IoU.")
@click.option("--stability-score-thresh", default=_GENERATE.stability_score_thresh, show_default=True,
              help="--auto: keep masks with at least this stability score.")
@click.option("--crop-n-layers", default=_GENERATE.crop_n_layers, show_default=True, type=click.IntRange(min=0),
              help="--auto: layers of overlapping crops to run again.")
@click.option("--min-mask-region-area", default=_GENERATE.min_mask_region_area, show_default=True, type=click.IntRange(min=0),
              help="--auto: remove holes and islands smaller than this (pixels).")
def segment(engine_dir: Path, image: Path, points, boxes, auto: bool, out_dir: Path, single: bool,
            points_per_side: int, points_per_batch: int, pred_iou_thresh: float, stability_score_thresh: float,
            crop_n_layers: int, min_mask_region_area: int) -> None:
    """Segment IMAGE with point and/or box prompts, or everything with --auto.

    Writes mask_<i>.png per mask, overlay.png (the masks, with the points coloured by label and
    the boxes drawn), and masks.json (boxes XYWH, scores, and each mask as COCO RLE) to --out.
    """
    from samrt import SamRuntime
    from samrt.images import to_rgb_uint8
    from samrt.segmentation import Segmentation, segment_prompts, write_segmentation

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
            result = Segmentation(masks=[r.pop("segmentation") for r in records], records=records)
        else:
            result = segment_prompts(runtime, rgb, points=parsed_points, boxes=parsed_boxes,
                                     multimask_output=not single)
    except SamError as exc:
        _fail(str(exc))
    try:
        write_segmentation(out_dir, image_name=str(image), rgb=rgb, segmentation=result, points=parsed_points,
                           boxes=parsed_boxes)
    except OSError as exc:
        _cannot_write(out_dir, exc)
    records = result.records
    if runtime.manifest.model.source.startswith("random:"):
        click.echo(f"note: {engine_dir} holds random weights ({runtime.manifest.model.source}): these masks are "
                   "meaningless; export a real checkpoint (--model path/to/sam_vit_b_01ec64.pth) for real ones",
                   err=True)
    if auto and not records:
        click.echo("no mask passed the thresholds (random weights keep none at the defaults; "
                   "try --pred-iou-thresh 0 --stability-score-thresh 0)", err=True)
    click.echo(f"wrote {len(records)} mask(s), overlay.png and masks.json to {out_dir}")


if __name__ == "__main__":  # python -m samexport.cli (the console script is samexport.console:run)
    from . import interrupts

    try:
        main()
    except SystemExit as exc:
        interrupts.finish(exc.code)
