"""splitinf: split inference for object detection between a camera device and an edge server."""

__version__ = "0.1.0"
