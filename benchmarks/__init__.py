"""Speed benchmarks of lensbox, kept beside the library: ``python -m benchmarks.bench``."""
