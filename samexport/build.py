"""``samexport build``: a new engine directory at another precision / for another backend.

Targets and precisions:

- ``--target onnxruntime --precision int8``: dynamic quantisation (activations quantised per
  call, int8 weights) of the encoder's weight MatMuls, for CPU servers with int8 kernels
  (VNNI, AMX). By default each weight is kept as two int8 terms per output channel and each
  activation as its uint8 quantisation plus that of its remainder (:mod:`samexport.int8`:
  ~15-16 bits of each; on ViT-B 100 % of prompts at mask IoU >= 0.95, random and stress weights).
  ``--int8-activation-terms 1`` rounds activations to uint8 only (faster; 98 % on random weights,
  76 % on stress weights); ``--int8-terms 1`` is onnxruntime's ``quantize_dynamic`` (one int8
  term per tensor: faster still, 79 %). Attention products,
  convolutions, LayerNorm, softmax and the positional terms stay fp32, and so does the whole
  decoder: quantised, the ViT-B decoder ran slower on CPU (35 vs 31 ms per call) and lost mask
  accuracy for nothing.
- ``--target onnxruntime --precision fp16``: both graphs with FP16 weights and activations
  except the FP32 islands of the precision policy (:mod:`samexport.precision`, default
  ``layernorm-residual-fp32-decoder``); graph inputs and outputs stay FP32, so the runtime and the graph contract are
  unchanged. Meant for onnxruntime-gpu's CUDA provider (on a CPU onnxruntime computes most FP16
  ops in FP32, which runs but proves little about a GPU).
- ``--precision fp16 --emulate``: instead of FP16 graphs, FP32 graphs that round every tensor an
  FP16 engine stores in FP16 (:func:`samexport.precision.emulate_fp16`): runs on any CPU and
  reproduces FP16 overflow, e.g. ``--policy naive`` on ``random:vit_b-stress``.
- ``--target onnxruntime --precision fp32``: a verified copy (useful as a baseline directory).
- ``--target tensorrt --precision fp16|fp32``: TensorRT plans through polygraphy
  (:mod:`samexport.tensorrt.plans`): fp16 as a strongly typed network from the same mixed FP16
  ONNX, so the policy's FP32 islands hold; optimisation profiles from :mod:`samexport.tensorrt.profile_planning`
  (``--max-prompts``, ``--max-points``); timing cache ``timing.cache`` reused between builds;
  the manifest's ``tensorrt`` record names the TensorRT version, GPU and compute capability that
  ``samrt.backends.tensorrt.compat`` checks before loading. Needs TensorRT and a CUDA GPU: without them the build
  fails with one sentence naming what is missing and the ``--target onnxruntime`` alternative
  (never a silent downgrade). int8 on TensorRT is refused (it needs calibration data).

The build writes to a temporary sibling and renames it into place; it ends with a short accuracy
report against the fp32 PyTorch reference (one photograph, a few prompts of each kind) whose
summary is stored in the new manifest under ``accuracy``; ``--no-check`` skips it.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from samrt import spec
from samrt.backends import openvino as openvino_backend
from samrt.backends.openvino_record import OpenVINORecord
from samrt.backends.tensorrt import cuda
from samrt.backends.tensorrt.record import TensorRTRecord
from samrt.checks import check_int
from samrt.engine_manifest import AccuracySummary, BuildRecord, EngineManifest, PrecisionPolicyRecord
from samrt.errors import BackendUnavailableError, InvalidInputError, SamError
from samrt.manifest import artifacts_of, read_manifest, sha256_file, write_manifest

from .int8 import check_term_count, two_term_int8
from .precision import DEFAULT_POLICY, emulate_fp16, fp32_islands, policy_named, to_mixed_fp16
from .report import run_report, sample_images
from .report.checks import describe_failure
from .report.compare import CompareSettings
from .staging import staged_directory
from .tensorrt.plans import build_plan, built_tensorrt_record
from .tensorrt.profile_planning import plan_profiles, planned_axes

TARGETS = ("onnxruntime", "tensorrt", "openvino")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
OPENVINO_PRECISIONS = ("fp32", "bf16")
INT8_GRAPHS = ("encoder",)
TIMING_CACHE = "timing.cache"  # graphs quantised by an int8 build (see the module docstring)


class BuildError(SamError):
    """A build could not be completed (the reason names what is missing or failed)."""


@dataclass(frozen=True, kw_only=True)
class BuildSettings:
    """target: "onnxruntime" | "tensorrt"; precision: "fp32" | "fp16" | "int8";
    check_prompts: prompts of each kind in the closing accuracy check (0 skips it);
    policy: FP16 precision policy name (:data:`samexport.precision.POLICIES`);
    emulate: with fp16 on onnxruntime, write the FP32 emulation graphs instead of FP16 graphs;
    int8_terms: with int8, int8 terms per weight: 2 (:mod:`samexport.int8`) or 1 (``quantize_dynamic``);
    int8_activation_terms: with two weight terms, int8 terms per activation: 2 (uint8 plus its
    remainder, the default) or 1 (uint8 only: faster, less accurate); None: 2 with two weight terms,
    else 1 (see :attr:`activation_terms`);
    max_prompts / max_points / max_batch: TensorRT profile limits (:mod:`samexport.tensorrt.profile_planning`);
    workspace_mb: TensorRT workspace limit (None: TensorRT's default, the GPU's memory);
    timing_cache: a shared TensorRT timing cache file (None: ``timing.cache`` in the output,
    seeded from a previous build in the same output directory)."""

    target: str = "onnxruntime"
    precision: str = "int8"
    check_prompts: int = 4
    policy: str = DEFAULT_POLICY.name
    emulate: bool = False
    int8_terms: int = 2
    int8_activation_terms: int | None = None
    max_prompts: int = 64
    max_points: int = 16
    max_batch: int = 1
    workspace_mb: int | None = None
    timing_cache: Path | None = None

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise InvalidInputError("--target", self.target, f"one of {list(TARGETS)}")
        if self.precision not in PRECISIONS:
            raise InvalidInputError("--precision", self.precision, f"one of {list(PRECISIONS)}")
        check_int("check_prompts", self.check_prompts, low=0)
        policy_named(self.policy)
        check_term_count("--int8-terms", self.int8_terms)
        if self.int8_activation_terms is not None:
            check_term_count("--int8-activation-terms", self.int8_activation_terms)
            if self.int8_activation_terms == 2 and self.int8_terms == 1:
                raise InvalidInputError("--int8-activation-terms", self.int8_activation_terms,
                                        "1 with --int8-terms 1 (two activation terms need two weight terms)")
        planned_axes(max_batch=self.max_batch, max_prompts=self.max_prompts, max_points=self.max_points)
        if self.workspace_mb is not None:
            check_int("--workspace", self.workspace_mb, low=64)  # MiB
        if self.emulate and (self.precision != "fp16" or self.target != "onnxruntime"):
            raise InvalidInputError("--emulate", f"{self.target} {self.precision}",
                                    "--precision fp16 --target onnxruntime (emulation reproduces FP16 only)")


    @property
    def activation_terms(self) -> int:
        """int8 terms per activation this build writes (1 or 2)."""
        if self.int8_activation_terms is not None:
            return self.int8_activation_terms
        return 2 if self.int8_terms == 2 else 1


def tensorrt_missing() -> str | None:
    """Why a TensorRT build cannot run here (None when TensorRT and a CUDA GPU are present)."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "TensorRT is not installed (the tensorrt Python package cannot be imported)"
    try:
        error, count = cuda.load_cudart().cudaGetDeviceCount()
        if int(error) != 0 or count == 0:
            return "no CUDA GPU is visible"
    except ImportError:
        return "the CUDA Python bindings (cuda-python) are not installed"
    return None


def _check_supported(settings: BuildSettings) -> None:
    if settings.target == "openvino":
        if settings.precision not in OPENVINO_PRECISIONS:
            raise BuildError(f"--target openvino builds {' or '.join(OPENVINO_PRECISIONS)} in this release "
                             f"(not {settings.precision}); int8 for CPUs: --target onnxruntime --precision int8")
        needed = {"fp32": "FP32", "bf16": "BF16"}[settings.precision]
        if needed not in openvino_backend.cpu_capabilities():
            raise BackendUnavailableError(
                f"this CPU cannot run OpenVINO at {settings.precision} (its capabilities: "
                f"{list(openvino_backend.cpu_capabilities())}); build --precision fp32, or on a CPU with "
                "AVX512_BF16 or AMX")
    elif settings.precision == "bf16":
        raise InvalidInputError("--precision", "bf16", "--target openvino with bf16 (onnxruntime and TensorRT "
                                "builds take fp32, fp16 or int8)")
    if settings.target == "tensorrt":
        missing = tensorrt_missing()
        if missing:
            raise BackendUnavailableError(
                f"cannot build TensorRT engines here: {missing}; build for onnxruntime instead with "
                f"--target onnxruntime (fp16 for onnxruntime-gpu, int8 for CPU servers, fp32 as a baseline)"
            )
        if settings.precision == "int8":
            raise BuildError("int8 TensorRT engines need calibration data, which this release does not collect; "
                             "use --precision fp16 for TensorRT, or --target onnxruntime --precision int8 for CPUs")


def quantize_int8(source: Path, target: Path, *, terms: int = 2, activation_terms: int = 2) -> None:
    """Dynamic int8 quantisation of the weight MatMuls of one graph: each weight as ``terms`` int8
    terms (2: :func:`samexport.int8.two_term_int8`, per output channel, with ``activation_terms``
    int8 terms per activation; 1: onnxruntime's ``quantize_dynamic``, per tensor, one activation term)."""
    if terms == 2:
        import onnx

        onnx.save(two_term_int8(onnx.load(str(source)), activation_terms=activation_terms)[0], str(target))
        return

    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    # quantize_dynamic logs a pre-processing suggestion through the root logger
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                         extra_options={"MatMulConstBOnly": True})
    finally:
        root.setLevel(level)


def default_output(engine_dir: Path, settings: BuildSettings) -> Path:
    suffix = {"onnxruntime": settings.precision, "tensorrt": f"trt-{settings.precision}",
              "openvino": f"ov-{settings.precision}"}[settings.target]
    if settings.emulate:
        suffix += "-emulated"
    if settings.precision == "int8" and settings.int8_terms == 1:
        suffix += "-one-term"
    elif settings.precision == "int8" and settings.activation_terms == 1:
        suffix += "-uint8-activations"
    if settings.precision == "fp16" and settings.policy != DEFAULT_POLICY.name:
        suffix += f"-{settings.policy}"
    return engine_dir.parent / f"{engine_dir.name}-{suffix}"


def _write_fp16(source: Path, target: Path, settings: BuildSettings, graph: str) -> int:
    """The FP16 (or FP16-emulating) version of one graph under the settings' policy.
    Returns how many nodes of the source graph the policy keeps in FP32."""
    import onnx

    model = onnx.load(str(source))
    policy = policy_named(settings.policy)
    convert = emulate_fp16 if settings.emulate else to_mixed_fp16
    onnx.save(convert(model, policy, graph=graph), str(target))
    return len(fp32_islands(model, policy, graph=graph))


def _method(settings: BuildSettings) -> str:
    if settings.precision == "int8":
        if settings.int8_terms == 2:
            activations = ("uint8 activations plus their uint8 remainder per call" if settings.activation_terms == 2
                           else "uint8 activations per call")
            return (f"samexport.int8.two_term_int8 (encoder weight MatMuls: two int8 terms per output channel, "
                    f"{activations})")
        return "onnxruntime.quantization.quantize_dynamic (encoder weight MatMuls, QInt8)"
    if settings.precision == "fp16":
        if settings.emulate:
            return f"samexport.precision.emulate_fp16 (FP32 graph rounding to FP16; policy {settings.policy})"
        return f"samexport.precision.to_mixed_fp16 (FP16 with FP32 islands; policy {settings.policy})"
    if settings.target == "openvino":
        return f"openvino.save_model (FP32 IR beside the ONNX graphs; compiled at {settings.precision})"
    return "copy"


def build_engine(engine_dir: str | Path, *, settings: BuildSettings, out_dir: str | Path | None = None,
                 reference: Any = None, progress: Callable[[str], None] | None = None,
                 overwrite: bool = False) -> Path:
    """Build ``settings`` from the fp32 engine directory ``engine_dir`` into ``out_dir``.

    ``out_dir`` must not overlap ``engine_dir``; an existing engine directory there is replaced
    (atomically) only with ``overwrite=True``, and any other existing contents are refused
    (:class:`samrt.errors.OutputError`, raised before any work; see :mod:`samexport.staging`).

    ``reference``: the PyTorch model for the closing accuracy check (None skips the check).
    Returns the new directory. Raises BackendUnavailableError / BuildError / InvalidInputError.
    """
    import onnx
    import onnxruntime

    say = progress or (lambda _msg: None)
    engine_dir = Path(engine_dir)
    _check_supported(settings)
    manifest = read_manifest(engine_dir)
    if manifest.precision != "fp32":
        raise InvalidInputError("ENGINE_DIR", str(engine_dir), f"an fp32 engine directory (this one is "
                                f"{manifest.precision}); build from the directory `samexport export` wrote")
    out_dir = Path(out_dir) if out_dir is not None else default_output(engine_dir, settings)
    started = _dt.datetime.now(_dt.timezone.utc)
    with staged_directory(out_dir, overwrite=overwrite, sources=[engine_dir]) as staging:
        fp32_nodes: dict[str, int] = {}
        for graph in ("encoder", "decoder"):
            name = manifest.graphs[graph].file
            if settings.precision == "int8" and graph in INT8_GRAPHS:
                say(f"quantising the {graph} (dynamic int8: {settings.int8_terms} per weight, "
                    f"{settings.activation_terms} per activation)")
                quantize_int8(engine_dir / name, staging / name, terms=settings.int8_terms,
                              activation_terms=settings.activation_terms)
            elif settings.precision == "fp16":
                say(f"converting the {graph} to FP16 ({'emulated, ' if settings.emulate else ''}"
                    f"policy {settings.policy})")
                fp32_nodes[graph] = _write_fp16(engine_dir / name, staging / name, settings, graph)
            else:
                shutil.copy2(engine_dir / name, staging / name)
            onnx.checker.check_model(str(staging / name), full_check=True)
        plans = _build_tensorrt(staging, manifest, settings, out_dir, say) if settings.target == "tensorrt" else None
        models = _build_openvino(staging, manifest, settings, say) if settings.target == "openvino" else None
        build = BuildRecord(target=settings.target, precision=settings.precision, source_dir=str(engine_dir),
                            from_manifest_sha256=sha256_file(engine_dir / spec.MANIFEST_NAME),
                            method=_method(settings))
        if settings.precision == "int8":  # samrt reads these to judge the engine's speed on the serving CPU
            build = replace(build, int8_terms=settings.int8_terms, int8_activation_terms=settings.activation_terms)
        fp16 = settings.precision == "fp16"
        built = replace(
            manifest,
            name=out_dir.name,
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            precision=settings.precision,
            build=build,
            versions={**manifest.versions, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
            artifacts=artifacts_of(staging),
            verification=None,
            tensorrt=plans,
            openvino=models,
            precision_policy=PrecisionPolicyRecord.from_dict(
                {**policy_named(settings.policy).to_dict(), "fp32_nodes": fp32_nodes}) if fp16 else None,
            emulation=settings.emulate if fp16 else None,
        )
        write_manifest(staging, built)
        if reference is not None and settings.check_prompts:
            say("checking accuracy against the fp32 reference")
            built = replace(built, accuracy=AccuracySummary.from_dict(_accuracy_summary(staging, reference, settings)))
        seconds = round((_dt.datetime.now(_dt.timezone.utc) - started).total_seconds(), 1)
        write_manifest(staging, replace(built, build=replace(built.build, seconds=seconds)))
    return out_dir


def _build_openvino(staging: Path, manifest: EngineManifest, settings: BuildSettings,
                    say: Callable[[str], None]) -> OpenVINORecord:
    """OpenVINO IR of both graphs of ``staging`` (FP32 weights; the runner compiles them at
    ``settings.precision``, read back from the compiled model)."""
    ov = openvino_backend.openvino_module()
    models = {}
    for graph in ("encoder", "decoder"):
        say(f"converting the {graph} to OpenVINO IR (runs at {settings.precision})")
        models[graph] = f"{graph}.xml"
        # Core.read_model, not convert_model: convert_model sends usage telemetry over the network
        # (openvino_telemetry), and hangs the process at exit where there is none.
        model = ov.Core().read_model(str(staging / manifest.graphs[graph].file))
        ov.save_model(model, str(staging / models[graph]), compress_to_fp16=False)
    return OpenVINORecord(version=ov.__version__.split("-")[0], precision=settings.precision, models=models,
                          cpu_capabilities=openvino_backend.cpu_capabilities())


def _build_tensorrt(staging: Path, manifest: EngineManifest, settings: BuildSettings, out_dir: Path,
                    say: Callable[[str], None]) -> TensorRTRecord:
    """Plans for both graphs of ``staging`` (its ONNX already in the precision's form)."""
    profiles = plan_profiles(manifest, max_batch=settings.max_batch, max_prompts=settings.max_prompts,
                             max_points=settings.max_points)
    cache = settings.timing_cache or staging / TIMING_CACHE
    if settings.timing_cache is None and (out_dir / TIMING_CACHE).is_file():
        shutil.copy2(out_dir / TIMING_CACHE, cache)  # reuse the previous build's kernel timings
    engines, seconds = {}, {}
    for graph in ("encoder", "decoder"):
        engines[graph] = f"{graph}.engine"
        say(f"building the {graph} TensorRT engine ({settings.precision}, {len(profiles[graph])} profile(s))")
        seconds[graph] = build_plan(staging / manifest.graphs[graph].file, staging / engines[graph],
                                    precision=settings.precision, profiles=profiles[graph], timing_cache=cache,
                                    workspace_mb=settings.workspace_mb, say=say)
    return built_tensorrt_record(precision=settings.precision, profiles=profiles, engines=engines, seconds=seconds,
                                 workspace_mb=settings.workspace_mb,
                                 timing_cache=TIMING_CACHE if settings.timing_cache is None
                                 else str(settings.timing_cache))


def _accuracy_summary(directory: Path, reference: Any, settings: BuildSettings) -> dict[str, Any]:
    """A short report (one photograph) stored in the manifest: verdict, failed checks, key figures."""
    backend = settings.target
    record, _ = run_report(directory, reference, images=sample_images(("astronaut",)), backends=[backend],
                           settings=CompareSettings(prompts_per_kind=settings.check_prompts, worst_cases=0))
    entry = record["backends"][backend]
    summary = {
        "passed": entry["passed"],
        "backend": backend,
        "images": record["images"],
        "prompts": entry["all"]["count"],
        "embeddings_cosine_min": min(e["cosine"] for e in entry["embeddings"]),
        "mask_iou": entry["all"]["mask_iou"],
        "iou_scores_max_abs": entry["all"]["iou_scores"]["max_abs"],
        "failed": [describe_failure(c) for c in entry["checks"] if not c["passed"]],
        "thresholds": record["thresholds"],
    }
    return json.loads(json.dumps(summary))
