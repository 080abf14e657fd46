"""What to warm: requirement files and command lines, ``[tool.devpi-warmup]`` tables, locks."""
