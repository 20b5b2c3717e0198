"""`just demo` (the FashionShift benchmark: runner, grid, validation weight rule, report) and the tools around it."""
