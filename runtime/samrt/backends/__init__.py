"""Inference backends: one small runner class each (load, infer, close). Imported lazily."""
