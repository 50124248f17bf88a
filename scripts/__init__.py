"""Developer tooling: the local stack launcher and the bootstrap script."""
