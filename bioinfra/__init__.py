"""bioinfra: take a research pipeline from a laptop to a data centre to the cloud without rewriting it."""

__version__ = "0.1.0"
