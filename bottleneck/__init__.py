"""Learned bottleneck: encoder/decoder layers, quantizer, entropy model and codec (built in a later step)."""
