"""Rehearsals of the real path at its real shape, small enough for a CPU."""
