"""The README's Python examples run as written (on the tiny engine instead of ViT-B)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run(random_tiny_engine, tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    photo = tmp_path / "photo.jpg"
    image = np.random.default_rng(0).integers(0, 256, (375, 500, 3), dtype=np.uint8)
    Image.fromarray(image).save(photo)
    namespace = {"np": np, "image": image}
    for block in blocks:
        code = block.replace('"engines/vit_b"', repr(str(random_tiny_engine))).replace('"photo.jpg"', repr(str(photo)))
        exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["boxes"].masks.shape[:2] == (2, 3)
    assert namespace["masks"].shape == (3, 375, 500) and namespace["scores"].shape == (3,)
    assert isinstance(namespace["records"], list) and isinstance(namespace["everything"], list)
