"""openk2: an open, Python implementation of the Kimi K2.6 system."""

__version__ = "0.1.0"
