"""Generators of the committed assets under assets/."""
