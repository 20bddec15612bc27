"""Runtime reliability: health check, threads, failing backends, deleted files, hostile prompts."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from samrt import SamRuntime
from samrt.errors import InferenceError, ManifestError, SamError


@pytest.fixture(scope="module")
def engine_dir(random_tiny_engine):
    return random_tiny_engine


@pytest.fixture(scope="module")
def runtime(engine_dir):
    return SamRuntime.load(engine_dir, backend="onnxruntime", warmup=True)


@pytest.fixture(scope="module")
def blank(runtime):
    return runtime.embed(np.zeros((30, 40, 3), np.uint8))


def test_ready_only_after_warmup_and_until_close(engine_dir):
    cold = SamRuntime.load(engine_dir, backend="onnxruntime")
    assert not cold.ready()
    assert cold.warmup() is cold and cold.ready()
    cold.close()
    assert not cold.ready()
    with pytest.raises(InferenceError, match="closed"):
        cold.embed(np.zeros((8, 8, 3), np.uint8))
    assert SamRuntime.load(engine_dir, backend="onnxruntime", warmup=True).ready()


def _job(runtime, seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(20, 200)), int(rng.integers(20, 200))
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    embedding = runtime.embed(image)
    n = int(rng.integers(1, 6))
    points = rng.random((n, 2, 2)) * (w, h)
    boxes = np.sort(rng.random((n, 2, 2)) * (w, h), axis=1).reshape(n, 4)
    result = runtime.predict(embedding, points=points, labels=rng.integers(0, 2, (n, 2)), boxes=boxes)
    return embedding.embeddings, result.iou_scores, result.low_res_logits, result.masks


def test_eight_threads_share_one_runtime_bit_for_bit(runtime):
    seeds = list(range(24))
    serial = {s: _job(runtime, s) for s in seeds}
    parallel: dict[int, tuple] = {}
    errors: list[BaseException] = []

    def worker(mine):
        try:
            for s in mine:
                parallel[s] = _job(runtime, s)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seeds[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for s in seeds:
        for a, b in zip(serial[s], parallel[s], strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b), s


class _FlakySession:
    """Wraps an onnxruntime session; the first ``failures`` runs raise like a kernel failure."""

    def __init__(self, session, failures):
        self.session, self.failures = session, failures

    def run(self, *args, **kwargs):
        if self.failures:
            self.failures -= 1
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : simulated")
        return self.session.run(*args, **kwargs)


def test_a_failing_backend_call_is_typed_and_the_runtime_recovers(engine_dir):
    runtime = SamRuntime.load(engine_dir, backend="onnxruntime", warmup=True)
    image = np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    embedding = runtime.embed(image)
    expected = runtime.predict(embedding, boxes=[5, 5, 80, 60])
    runtime.decoder.session = _FlakySession(runtime.decoder.session, failures=1)
    with pytest.raises(InferenceError, match="decoder.onnx.*simulated") as info:
        runtime.predict(embedding, boxes=[5, 5, 80, 60])
    assert info.value.graph == "decoder.onnx"
    again = runtime.predict(embedding, boxes=[5, 5, 80, 60])
    assert np.array_equal(again.low_res_logits, expected.low_res_logits)
    runtime.encoder.session = _FlakySession(runtime.encoder.session, failures=1)
    with pytest.raises(InferenceError, match="encoder.onnx"):
        runtime.embed(image)
    assert np.array_equal(runtime.embed(image).embeddings, embedding.embeddings)
    assert runtime.ready()


def test_engine_file_deleted_after_load(engine_dir, tmp_path):
    import shutil

    copy = tmp_path / "engine"
    shutil.copytree(engine_dir, copy)
    runtime = SamRuntime.load(copy, backend="onnxruntime")
    (copy / "decoder.onnx").unlink()
    embedding = runtime.embed(np.zeros((40, 50, 3), np.uint8))
    assert runtime.predict(embedding, points=[[10, 10]]).masks.shape == (1, 3, 40, 50)  # already in memory
    with pytest.raises(ManifestError, match="decoder.onnx"):
        SamRuntime.load(copy, backend="onnxruntime")


_floats = st.floats(allow_nan=True, allow_infinity=True, width=32)
_prompt_arrays = st.one_of(
    st.none(),
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4), elements=_floats),
    hnp.arrays(np.float64, st.sampled_from([(1, 2), (3, 2), (2, 1, 2), (4,), (2, 4)]),
               elements=st.floats(-1e12, 1e12)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(points=_prompt_arrays, boxes=_prompt_arrays,
       labels=st.one_of(st.none(), hnp.arrays(np.int64, st.sampled_from([(1,), (1, 2), (3, 2), (2,)]),
                                              elements=st.integers(-20, 5))),
       mask_input=st.one_of(st.none(), st.just(np.zeros((1, 1, 256, 256), np.float32)),
                            st.just(np.full((1, 256, 256), np.nan, np.float32))),
       multimask=st.booleans())
def test_hostile_prompts_give_a_result_or_a_typed_error(runtime, blank, points, boxes, labels, mask_input,
                                                        multimask):
    embedding = blank
    try:
        result = runtime.predict(embedding, points=points, labels=labels, boxes=boxes, mask_input=mask_input,
                                 multimask_output=multimask)
    except SamError as exc:
        assert str(exc)  # names the argument; any other exception type fails the test
        return
    n = result.masks.shape[0]
    assert result.masks.shape == (n, 3 if multimask else 1, 30, 40) and result.masks.dtype == np.bool_
    assert np.isfinite(result.iou_scores).all()
