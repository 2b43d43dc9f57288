"""Maintainers' checks of the code base itself (``python -m csml.devtools.layers``); nothing here runs models."""
