"""Version of the studentstatus package."""

__version__ = "0.1.0"
