"""The app's logic without a screen: states, runner, output, gathering, topology, records.

Nothing here imports Textual; the headless mode and the tests use it directly.
"""
