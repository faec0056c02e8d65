"""The device/edge runtime: model setup shared by both sides, the ZeroMQ transport, the edge server and the
device client. ``device`` and ``edge`` never import each other."""
