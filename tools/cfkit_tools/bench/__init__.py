"""`just bench-*`: cfkit next to the PyTorch ecosystem, same machine, same run (results/bench/)."""
