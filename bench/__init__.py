"""edgelab benchmarks: ``python -m bench <name>`` (see ``bench/__main__.py``). They print figures; no asserts."""
