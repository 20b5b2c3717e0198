"""Checks of cfkit's outputs that are not benchmarks (`python -m cfkit_tools.check.<module>`)."""
