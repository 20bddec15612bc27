"""samrt.SamProcessor against transformers' SamProcessor (test-only oracle)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from samrt import SamProcessor
from samrt.errors import InvalidInputError

torch = pytest.importorskip("torch")
sam_ip = pytest.importorskip("transformers.models.sam.image_processing_sam")
sam_pil = pytest.importorskip("transformers.models.sam.image_processing_pil_sam")
transformers = pytest.importorskip("transformers")

SIZES = [(1, 1), (2, 4000), (4000, 3), (333, 517), (480, 640), (768, 1024), (1500, 2250), (3000, 4000)]
# transformers' default (torchvision) backend resizes float tensors with antialiasing where its
# Pillow backend and we resize uint8 with Pillow; measured max difference 0.0175 (1/255 / std).
DEFAULT_BACKEND_BOUND = 0.02


@pytest.fixture(scope="module")
def ours():
    return SamProcessor()


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", SIZES)
def test_pixel_values_match_transformers(ours, size):
    img = _image(*size)
    a = ours(img)
    b = sam_pil.SamImageProcessorPil()(Image.fromarray(img), return_tensors="np")
    c = sam_ip.SamImageProcessor()(Image.fromarray(img), return_tensors="pt")
    assert a["pixel_values"].dtype == np.float32 and a["pixel_values"].shape == (1, 3, 1024, 1024)
    np.testing.assert_array_equal(a["original_sizes"], [size])
    np.testing.assert_array_equal(a["reshaped_input_sizes"], np.asarray(b["reshaped_input_sizes"]))
    assert np.abs(a["pixel_values"] - b["pixel_values"]).max() <= 1e-5
    assert np.abs(a["pixel_values"] - c["pixel_values"].numpy()).max() <= DEFAULT_BACKEND_BOUND


@pytest.mark.parametrize("size", SIZES)
def test_post_process_masks_matches_transformers(ours, size):
    img = _image(*size)
    inputs = ours(img)
    logits = np.random.default_rng(1).normal(size=(1, 2, 3, 256, 256)).astype(np.float32) * 3
    hf = sam_ip.SamImageProcessor()
    args = (torch.tensor(inputs["original_sizes"]), torch.tensor(inputs["reshaped_input_sizes"]))
    ref_logits = hf.post_process_masks(torch.from_numpy(logits), *args, binarize=False)[0].numpy()
    ref_binary = hf.post_process_masks(torch.from_numpy(logits), *args)[0].numpy()
    got_logits = ours.post_process_masks(logits, inputs["original_sizes"], inputs["reshaped_input_sizes"],
                                         binarize=False)[0]
    got_binary = ours.post_process_masks(logits, inputs["original_sizes"], inputs["reshaped_input_sizes"])[0]
    assert got_binary.shape == ref_binary.shape == (2, 3, *size)
    assert np.abs(got_logits - ref_logits).max() <= 1e-5
    differ = got_binary != ref_binary
    assert not differ[np.abs(ref_logits) > 1e-5].any()


def test_points_boxes_and_ragged_labels_match_transformers(ours):
    images = [_image(480, 640), _image(1500, 2250, seed=2)]
    points = [[[10, 20], [300, 400]], [[5, 6]]]  # transformers' ragged form: [B][n][2]
    labels = [[1, 0], [1]]
    boxes = [[[10, 20, 300, 400]], [[0, 0, 2249, 1499]]]
    hf = transformers.SamProcessor(image_processor=sam_pil.SamImageProcessorPil())
    ref = hf(images=[Image.fromarray(i) for i in images], input_points=points, input_labels=labels,
             input_boxes=boxes, return_tensors="pt")
    got = ours(images, input_points=points, input_labels=labels, input_boxes=boxes)
    for key in ("input_points", "input_labels", "input_boxes"):
        assert got[key].shape == tuple(ref[key].shape), key
        np.testing.assert_allclose(got[key], ref[key].numpy(), atol=1e-4, err_msg=key)
    assert (got["input_labels"][1, 0, 1]) == -10


@pytest.mark.parametrize("mode", ["RGB", "L", "LA", "RGBA", "P", "CMYK"])
def test_pil_modes_become_rgb_like_transformers(ours, mode):
    img = Image.fromarray(_image(50, 70)).convert(mode)
    a = ours(img)
    b = sam_pil.SamImageProcessorPil()(img, return_tensors="np")
    assert np.abs(a["pixel_values"] - b["pixel_values"]).max() <= 1e-5


def test_arrays_of_other_layouts(ours):
    gray = _image(40, 60)[:, :, 0]
    ref = ours(np.repeat(gray[:, :, None], 3, axis=2))["pixel_values"]
    for variant in (gray, gray[:, :, None], np.dstack([np.repeat(gray[:, :, None], 3, 2), gray]),
                    gray.astype(np.float32) / 255.0, gray.astype(np.uint16) * 257):
        np.testing.assert_allclose(ours(variant)["pixel_values"], ref, atol=1e-6)
    i16 = Image.fromarray(gray.astype(np.uint16) * 257)
    assert i16.mode.startswith("I;16")
    np.testing.assert_allclose(ours(i16)["pixel_values"], ref, atol=1e-6)
    mixed = ours([gray, _image(90, 30)])
    assert mixed["pixel_values"].shape == (2, 3, 1024, 1024)


def test_file_path_applies_exif_orientation(ours, tmp_path):
    img = Image.fromarray(_image(30, 50))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif)
    out = ours(str(path))
    assert tuple(out["original_sizes"][0]) == (50, 30)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(images=np.zeros((0, 5, 3), np.uint8)), "images"),
        (dict(images=np.zeros((5, 5, 2), np.uint8)), "images"),
        (dict(images=np.full((5, 5, 3), np.nan, np.float32)), "images"),
        (dict(images=[]), "images"),
        (dict(images=np.zeros((5, 5, 3), np.uint8), input_points=[[[[1, 1]]]], input_labels=[[[7]]]), "input_labels"),
        (dict(images=np.zeros((5, 5, 3), np.uint8), input_boxes=[[[4, 0, 1, 3]]]), "input_boxes"),
        (dict(images=np.zeros((5, 5, 3), np.uint8), input_points=[[[[1, 1]]], [[[2, 2]]]]), "input_points"),
        (dict(images=np.zeros((5, 5, 3), np.uint8), input_points=[[[[np.inf, 1]]]]), "input_points"),
    ],
)
def test_bad_input_names_the_argument(ours, kwargs, argument):
    with pytest.raises(InvalidInputError) as info:
        ours(**kwargs)
    assert info.value.argument == argument
    assert argument in str(info.value)


def test_decompression_bomb_refused_before_decoding(ours, tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(InvalidInputError, match="limit"):
        ours(str(path))


def test_points_outside_the_image_are_kept(ours):
    out = ours(_image(100, 200), input_points=[[[[-50, 500]]]], input_labels=[[[1]]])
    np.testing.assert_allclose(out["input_points"][0, 0, 0], [-50 * 1024 / 200, 500 * 512 / 100], rtol=1e-6)


def test_import_samrt_without_torch():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, *a, **k):\n"
        "        if name.split('.')[0] in ('torch', 'transformers', 'samexport'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import samrt, numpy as np\n"
        "out = samrt.SamProcessor()(np.zeros((20, 30, 3), np.uint8))\n"
        "assert out['pixel_values'].shape == (1, 3, 1024, 1024)\n"
        "assert 'torch' not in sys.modules\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
