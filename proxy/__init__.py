"""Rosetta, the protocol-translating reverse proxy: ASGI app, pipeline, backends, CLI."""

__version__ = "0.1.0"
