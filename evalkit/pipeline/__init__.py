"""The run pipeline: data, requests, the shared generator, cache, judge, controls and distribution."""
