"""Accuracy measurement: COCO-style AP, fidelity against a reference model, and offload pipelines with bytes."""
