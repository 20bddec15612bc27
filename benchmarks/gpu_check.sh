#!/usr/bin/env bash
# One prepared device check for a session that is lent a GPU machine (the `device` tool): what the
# machine has, then whatever of the GPU work it can run, everything written under $OUT.
#
# The machine's image has no network: its python3 (3.12) already holds torch, onnx, onnxscript,
# onnxruntime (CPU), transformers, safetensors, click, tqdm, matplotlib, scikit-image and
# cuda-bindings, but neither TensorRT nor onnxruntime-gpu (each is far over the 64 MiB a call
# may carry). Carry polygraphy as a wheel; prepare it here, once:
#
#     python -m pip download --no-deps --dest wheels polygraphy   # wheels/ is git-ignored
#
# then, from the device tool:  run(command="bash benchmarks/gpu_check.sh", carry=["wheels"], timeout_s=600)
#
# Steps (each bounded: 150 + 120 + 180 + 120 s at most, inside one 600 s call):
#   1. environment.txt: nvidia-smi, python, torch/CUDA, onnxruntime providers, tensorrt, cuda-bindings
#   2. samexport + samrt from the working tree on PYTHONPATH, wheels/*.whl installed if carried
#   3. tests/gpu (marker gpu): TensorRT fp32/fp16 engines of tiny models against the reference;
#      they skip with the reason where TensorRT is missing, and the log says so
#   4. where TensorRT or onnxruntime's CUDA provider exists: export random:vit_b and
#      `samexport bench` it on that backend, JSON into $OUT (copy it to benchmarks/results/)
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv 2>&1
    "$PY" - <<'EOF'
import importlib, platform
print("python", platform.python_version())
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception as exc:
    print("torch: unavailable", exc)
try:
    import onnxruntime as ort
    print("onnxruntime", ort.__version__, ort.get_available_providers())
except Exception as exc:
    print("onnxruntime: unavailable", exc)
for name in ("tensorrt", "cuda.bindings", "polygraphy"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "present"))
    except Exception as exc:
        print(f"{name}: unavailable ({exc})")
EOF
} > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

# samexport and samrt straight from the working tree (nothing to build there); carried wheels
# (pure-Python polygraphy) installed without an index.
export PYTHONPATH="$PWD/runtime:$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G "wheels/*.whl" > /dev/null; then
    "$PY" -m pip install --quiet --no-deps --no-index wheels/*.whl > "$OUT/install.txt" 2>&1 \
        || { echo "installing wheels/ failed: see install.txt"; exit 1; }
fi
SAMEXPORT=("$PY" -m samexport.cli)

timeout 150 "$PY" -m pytest -q -m gpu tests/gpu -k "not vit_b" 2>&1 | tee "$OUT/gpu_tests.txt"

backend=""
if "$PY" -c "import tensorrt" 2>/dev/null; then
    backend=tensorrt
elif "$PY" -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())"; then
    backend=onnxruntime
fi
if [ -z "$backend" ]; then
    echo "no TensorRT and no onnxruntime CUDA provider here: nothing GPU-side of samexport can run" | tee "$OUT/bench.txt"
    exit 0
fi
engines=$(mktemp -d)
timeout 120 "${SAMEXPORT[@]}" export --model random:vit_b --out "$engines/vit_b" 2>&1 | tee "$OUT/bench.txt"
if [ "$backend" = tensorrt ]; then
    timeout 180 "${SAMEXPORT[@]}" build "$engines/vit_b" --precision fp16 --target tensorrt --out "$engines/vit_b-trt-fp16" \
        2>&1 | tee -a "$OUT/bench.txt"
    target="$engines/vit_b-trt-fp16"
else
    target="$engines/vit_b"
fi
timeout 120 "${SAMEXPORT[@]}" bench "$target" --backend "$backend" --out "$OUT/bench_vit_b_${backend}_cuda.json" \
    2>&1 | tee -a "$OUT/bench.txt"
