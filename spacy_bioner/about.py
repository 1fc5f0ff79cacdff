"""The package version: the one place setup.py, the CLI, packaging and project.yml read it from."""

__version__ = "0.1.0"
