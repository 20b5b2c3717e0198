"""Unit tests of cfkit_tools (tests/tools_py.rs runs them)."""
