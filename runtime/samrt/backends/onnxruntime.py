"""onnxruntime runner: CPUExecutionProvider everywhere, CUDA when onnxruntime-gpu sees a GPU."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, InferenceError, InvalidInputError, ManifestError
from ..spec import TensorSpec
from .feeds import check_feeds, leading_rows, row_inputs
from .rows import RowScheduler

_ORT_TYPES = {"float32": "tensor(float)", "int32": "tensor(int32)", "int64": "tensor(int64)",
              "float16": "tensor(float16)"}
_NUMPY_TYPES = {ort_type: np.dtype(name) for name, ort_type in _ORT_TYPES.items()}


def available_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BackendUnavailableError(
            "onnxruntime is not installed: pip install 'samexport-runtime[onnxruntime]'"
        ) from exc
    return list(ort.get_available_providers())


# onnxruntime's SkipLayerNormFusion makes the prompt decoder slower on CPU: its fused kernel
# took ~3.5 ms per [1, 4096, 256] LayerNorm on the ViT-B decoder (2-core x86), and switching the
# fusion off cut the whole decoder call from ~37 to ~32 ms (N = 1) and from ~39 to ~36 ms per
# prompt (N = 16). The encoder gains from it (6.4 s vs 7.1 s), so it keeps the fusion.
DECODER_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


def decoder_rows_per_call(providers: Sequence[str]) -> int:
    """Prompts per decoder run: 1 on the CPU provider, unlimited (0) on a GPU provider.

    Each prompt carries its own [256, 64, 64] image stream through the decoder, so on a CPU a
    batch's tensors outgrow the caches: measured on the ViT-B decoder (2-core x86, fresh
    processes), one call of 64 prompts took 42-47 ms per prompt and calls of 8 took 45, while
    single-prompt calls took 31 (38 with a 1 MiB malloc mmap threshold and no arena)."""
    return 1 if providers and providers[0] == "CPUExecutionProvider" else 0


# Memory of the concurrent runs grows with the workers (each holds its own activations: the
# second session and two workers cost ~40 MB resident on ViT-B), and past a handful of cores a
# batch of 64 has few runs per worker.
MAX_ROW_WORKERS = 8
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """Cores this process may run on: its CPU affinity where the OS reports one, capped by a
    cgroup v2 CPU quota (``cpu.max``, e.g. a container's CPU limit) rounded up."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS and Windows have no affinity call
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, -(-int(quota) // int(period)))
    except (OSError, ValueError):  # no cgroup v2 file, or one we do not understand: no cap
        pass
    return max(1, cores)


def decoder_row_workers(providers: Sequence[str]) -> int:
    """Threads a CPU decoder call of several prompts spreads its one-prompt runs over: the
    usable cores, at most :data:`MAX_ROW_WORKERS`; 1 (no spreading) off the CPU provider.

    Each worker runs whole prompts in a session limited to one intra-op thread, so the cores
    work on different prompts instead of splitting every operator of one prompt. Measured on the
    ViT-B decoder (2-core x86, ``benchmarks/decoder_workers.py``, two runs of 7 alternating
    rounds): 64 prompts took 0.71x and 0.89x a single call's time per prompt this way, 1.06x and
    1.05x one after another on two intra-op threads. Outputs are bit-identical.
    """
    if decoder_rows_per_call(providers) != 1:
        return 1
    return min(MAX_ROW_WORKERS, usable_cores())


@dataclass(frozen=True, kw_only=True)
class SessionLoader:
    """Creates onnxruntime sessions of one graph file: the loader half of the backend.

    providers: the execution providers to ask for (None: :meth:`default_providers`); an
    explicit list must name providers onnxruntime offers here, and the session must start on
    the first of them (BackendUnavailableError otherwise: never a silent fallback to the CPU).
    threads: intra-op threads (0: onnxruntime's default); arena: onnxruntime's CPU memory arena;
    disabled_optimizers: onnxruntime graph optimisers to switch off.
    """

    path: Path
    providers: tuple[str, ...] | None = None
    threads: int = 0
    arena: bool = True
    disabled_optimizers: tuple[str, ...] = ()

    def __call__(self, *, threads: int | None = None) -> Any:
        """A new session (``threads``: intra-op threads instead of the loader's own)."""
        explicit = self.providers is not None
        chosen = _check_providers(self.providers) if explicit else default_providers()
        session = self._session(chosen, threads=self.threads if threads is None else threads)
        if explicit and session.get_providers()[:1] != chosen[:1]:
            raise BackendUnavailableError(
                f"onnxruntime could not start {chosen[0]} for {self.path.name} (it would have run on "
                f"{session.get_providers()} instead); ask for those providers explicitly, or fix the "
                f"{chosen[0]} install")
        return session

    def _session(self, chosen: list[str], *, threads: int) -> Any:
        import onnxruntime as ort  # optional dependency, imported when a graph is loaded

        path, arena, disabled_optimizers = self.path, self.arena, self.disabled_optimizers
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # arena=False for a graph whose input shapes vary without bound: onnxruntime's CPU
        # arena grows on every new input shape (onnxruntime #11118) and keeps what it took.
        # SamRuntime keeps it for the encoder (fixed shape) and for the CPU decoder (one prompt
        # per run, so only the point count varies); its large tensors would otherwise be
        # page-faulted in on every call.
        options.enable_cpu_mem_arena = arena
        if threads:
            options.intra_op_num_threads = threads
        if chosen and chosen[0] == "CPUExecutionProvider":
            # onnxruntime's memory pattern plans one block for a run's tensors after the first
            # run and allocates it fresh on the second, so the first two runs page-fault every
            # tensor in. Without it, the arena's chunks from the first run are reused from the
            # second on. Measured on the ViT-B encoder (2-core x86, 4 runs each): with the
            # pattern 11.7 s, 12.9 s, then 6.2 s, 5.9 s, 820k page faults in each of the first
            # two runs, peak 6.96 GB; without it 10.9 s, then 6.5, 6.3, 6.7 s, peak 3.81 GB.
            # Steady-state speed is the same (alternating runs: 6.1-6.6 s either way).
            options.enable_mem_pattern = False
            # Idle worker threads block instead of spinning: after a run they otherwise keep
            # the cores busy while samrt's own threads post-process. ViT-B, three runs each
            # (2 cores): predict for one prompt 61-78 ms spinning, 46-58 ms not; the decoder
            # alone 37-53 vs 32-34 ms; the encoder unchanged (6.3-8.4 s vs 6.6-7.7 s).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(str(path), options, providers=chosen,
                                        disabled_optimizers=list(disabled_optimizers))
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ManifestError(f"onnxruntime could not load the graph ({exc})", path=str(path)) from exc


def _check_providers(providers: Any) -> list[str]:
    """Explicitly requested providers: a non-empty list of names onnxruntime offers here
    (onnxruntime itself would drop an unknown one with a warning and run on the CPU)."""
    available = available_providers()
    if isinstance(providers, str) or not providers or not all(isinstance(p, str) for p in providers):
        raise InvalidInputError("providers", providers, f"a non-empty list of provider names from {available}")
    unknown = [p for p in providers if p not in available]
    if unknown:
        raise InvalidInputError("providers", list(providers), f"providers onnxruntime offers here: {available}")
    return list(providers)


def default_providers() -> list[str]:
    """CUDA when onnxruntime-gpu offers it, then the CPU."""
    providers = available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in providers]


def _spec(node: Any) -> TensorSpec:
    return TensorSpec(node.name, _NUMPY_TYPES[node.type].name if node.type in _NUMPY_TYPES else node.type,
                      tuple(d if isinstance(d, (int, str)) else f"axis{i}" for i, d in enumerate(node.shape)))


class OnnxRuntimeRunner:
    """One ONNX graph in onnxruntime sessions made by a :class:`SessionLoader` (a
    :class:`samrt.backends.Runner`). onnxruntime sessions are safe to call from several threads.

    max_rows: when > 0, a call whose row inputs (those with a symbolic leading axis, e.g. the
    decoder's ``num_prompts``) have more rows runs as several runs of at most ``max_rows``
    rows (:class:`samrt.backends.rows.RowScheduler`), written into one set of outputs. The
    graphs treat rows independently, so the result is the same; on a CPU it is faster (see
    :func:`decoder_rows_per_call`).

    row_workers: when > 1 (with ``max_rows`` > 0), the runs of such a call are shared out over
    this many threads (the calling thread and ``row_workers - 1`` pool threads), in a second
    session of the same graph limited to one intra-op thread. Single-run calls keep the first
    session and its threads. Same results; see :func:`decoder_row_workers` for why.
    """

    def __init__(self, loader: SessionLoader, *, max_rows: int = 0, row_workers: int = 1) -> None:
        self.loader = loader
        self.path = loader.path
        self.graph = loader.path.name
        self.scheduler = RowScheduler(rows_per_run=max_rows, workers=row_workers, graph=self.graph)
        self.session = loader()
        self.inputs = {node.name: _spec(node) for node in self.session.get_inputs()}
        self.outputs = {node.name: _spec(node) for node in self.session.get_outputs()}
        self.row_inputs = row_inputs(self.inputs)
        self._row_session = loader(threads=1) if self.scheduler.workers > 1 else None

    @classmethod
    def from_path(cls, path: Path, *, providers: Sequence[str] | None = None, threads: int = 0,
                  disabled_optimizers: Sequence[str] = (), arena: bool = True, max_rows: int = 0,
                  row_workers: int = 1) -> OnnxRuntimeRunner:
        """Loader and runner in one call (the arguments of :class:`SessionLoader` and this class)."""
        if providers is not None and not isinstance(providers, str):
            providers = tuple(providers)
        loader = SessionLoader(path=Path(path), providers=providers, threads=threads, arena=arena,
                               disabled_optimizers=tuple(disabled_optimizers))
        return cls(loader, max_rows=max_rows, row_workers=row_workers)

    # -- the Runner interface --------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self.session is None

    @property
    def max_rows(self) -> int:
        return self.scheduler.rows_per_run

    @property
    def row_workers(self) -> int:
        return self.scheduler.workers

    @property
    def providers(self) -> list[str]:
        """The providers the session got, in priority order."""
        if self.session is None:
            raise InferenceError("the runner was closed", graph=self.graph)
        return list(self.session.get_providers())

    def describe(self) -> dict[str, Any]:
        providers = self.providers
        return {"backend": "onnxruntime", "providers": providers,
                "device": "cpu" if providers[:1] == ["CPUExecutionProvider"] else "cuda",
                "threads": self.loader.threads, "row_workers": self.row_workers}

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.session is None:
            raise InferenceError("the runner was closed", graph=self.graph)
        described = check_feeds(feeds, self.inputs)
        total = leading_rows(described, self.row_inputs)
        if not self.scheduler.splits(total):
            return self._run(self.session, feeds, None)
        session = self.session if self._row_session is None else self._row_session
        return self.scheduler.run(feeds, rows=self.row_inputs, total=total, outputs=self.outputs,
                                  run_part=lambda part, into: self._run(session, part, into))

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
        self._row_session = None
        self.scheduler.close()

    # -- internals -------------------------------------------------------------------------------
    def _run(self, session: Any, feeds: dict[str, np.ndarray], into: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        """One session run. into: C-contiguous arrays (e.g. row slices of the full outputs) that
        onnxruntime writes the outputs into, through an IOBinding; returned as given."""
        if session is None or self.session is None:
            raise InferenceError("the runner was closed", graph=self.graph)
        names = list(self.outputs)
        try:
            if into is None:
                return dict(zip(names, session.run(names, feeds), strict=True))
            binding = session.io_binding()
            for name, value in feeds.items():
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
            for name, target in into.items():
                binding.bind_output(name, "cpu", 0, target.dtype, list(target.shape), target.ctypes.data)
            session.run_with_iobinding(binding)
            return into
        except Exception as exc:  # onnxruntime raises untyped errors (allocation, kernel failures)
            raise InferenceError(f"onnxruntime failed ({type(exc).__name__}: {exc})", graph=self.graph) from exc


def decoder_runner(path: Path, *, providers: Sequence[str] | None, running_on: Sequence[str],
                   workers: int | None = None) -> OnnxRuntimeRunner:
    """The decoder graph's runner as SamRuntime uses it.

    providers: the providers to ask for (None: :meth:`OnnxRuntimeRunner.default_providers`);
    running_on: the providers the encoder's session actually got, which decide the prompts per
    run (:func:`decoder_rows_per_call`) and the threads a batch spreads over
    (:func:`decoder_row_workers`); workers: that thread count instead (1: none; it only applies
    where prompts run one per run). One prompt per run keeps the decoder's tensor sizes
    fixed, so its arena stops growing after the first call and its buffers are reused; with
    whole batches the arena grew on every new prompt count (onnxruntime #11118), so a batch
    runner goes without one.
    """
    rows = decoder_rows_per_call(running_on)
    if workers is None:
        workers = decoder_row_workers(running_on)
    return OnnxRuntimeRunner.from_path(path, providers=providers, disabled_optimizers=DECODER_DISABLED_OPTIMIZERS,
                             arena=rows == 1, max_rows=rows, row_workers=workers)
