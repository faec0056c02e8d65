"""Training of the learned parts (bottleneck distillation, prefilter) on label-free shared data."""
