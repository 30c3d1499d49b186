"""The package version, in one place (setup.cfg and the User-Agent read it)."""

__version__ = "0.1.0"
