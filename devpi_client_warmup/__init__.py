"""devpi warmup: make a devpi index hold every file a Python x platform matrix installs offline."""

__version__ = "0.1.0"
