"""What a camera board runs, without torch: the exported device halves on ONNX Runtime (preprocessing, the head
and its bottleneck encoder, the prefilter, the whole detector for ``local``), the JPEG half, and the manifest
that ties exported files to the model fingerprint the edge checks. :mod:`splitinf.head` is the same device
halves as eager PyTorch; ``splitinf-device --engine`` picks one."""
