"""SAM checkpoints, one concept per module:

- :mod:`.files`: hashing, reading one weight file safely (safetensors, or ``torch.load`` with
  ``weights_only=True``), transformers model directories (sharded or not), writing one;
- :mod:`.naming`: Meta ``segment_anything`` <-> transformers parameter names;
- :mod:`.meta_config`: a Meta checkpoint's architecture from its tensor shapes;
- :mod:`.loading`: strict loading into a model (``SamModel.from_pretrained`` uses it);
- :mod:`.random_weights`, :mod:`.stress`: seeded random weights, and FP16-hostile outliers;
- :mod:`.sources`: the ``--model`` grammar and the reference of an engine.

Every failure is a :class:`samrt.errors.CheckpointError` naming the file. This package module
imports nothing, so the model can import :mod:`.loading` without a cycle.
"""
