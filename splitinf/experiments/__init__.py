"""Experiments built on the whole system: the demo, the latency-vs-bandwidth sweep."""
