"""Widgets, one per module, by screen area: jobs, details, summary, output, topology, services."""
