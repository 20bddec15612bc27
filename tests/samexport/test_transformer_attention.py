"""The decoder's cross-attentions (projections carried into the image's channels) against the
textbook form (project queries, keys and values into heads, softmax, out_proj), in float64."""

from __future__ import annotations

import pytest
import torch

from samexport.config import SamMaskDecoderConfig
from samexport.modeling.transformer import Attention


def _attention(heads: int, rate: int, seed: int) -> Attention:
    torch.manual_seed(seed)
    attention = Attention(SamMaskDecoderConfig(hidden_size=48, num_attention_heads=heads), downsample_rate=rate)
    for parameter in attention.parameters():
        torch.nn.init.normal_(parameter, std=0.3)  # biases too: the fold treats them specially
    return attention.double()


@pytest.mark.parametrize(("heads", "rate", "tokens", "prompts", "image_batch"),
                         [(8, 2, 7, 1, 1), (4, 1, 23, 3, 1), (2, 3, 1, 2, 2), (1, 2, 5, 4, 4)])
def test_folded_cross_attention_equals_the_textbook_form(heads, rate, tokens, prompts, image_batch):
    attention = _attention(heads, rate, seed=tokens)
    g = torch.Generator().manual_seed(prompts)
    queries = torch.randn(prompts, tokens, 48, generator=g, dtype=torch.float64)
    image = torch.randn(image_batch, 30, 48, generator=g, dtype=torch.float64) * 3
    image_pe = torch.randn(1, 30, 48, generator=g, dtype=torch.float64)

    full_image = image.expand(prompts, -1, -1)
    expected_to_image = attention(queries, full_image + image_pe, full_image)
    got_to_image = attention.attend_to_image(queries, image + image_pe, image)
    torch.testing.assert_close(got_to_image, expected_to_image, rtol=1e-10, atol=1e-10)

    expected_from_image = attention(full_image + image_pe, queries, queries)
    got_from_image = attention.attend_from_image(full_image + image_pe, queries, queries)
    torch.testing.assert_close(got_from_image, expected_from_image, rtol=1e-10, atol=1e-10)


def test_the_fold_is_not_a_no_op():
    """Guards the test above: zeroing a bias that the fold keeps changes the result."""
    attention = _attention(4, 2, seed=0)
    g = torch.Generator().manual_seed(0)
    queries = torch.randn(1, 6, 48, generator=g, dtype=torch.float64)
    image = torch.randn(1, 30, 48, generator=g, dtype=torch.float64)
    before = attention.attend_from_image(image, queries, queries)
    with torch.no_grad():
        attention.q_proj.bias.zero_()
    assert not torch.allclose(attention.attend_from_image(image, queries, queries), before)
