"""The benchmark: this pipeline against the tutorial's naive design, on the same machine."""
