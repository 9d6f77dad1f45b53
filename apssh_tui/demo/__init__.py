"""The self-contained demo: an in-process SSH testbed and a bundled scenario."""
