"""The version of the apssh distribution (apssh and apssh-tui); above 0.27, the apssh it replaces."""

__version__ = "1.0.0"
