"""Compatibility tests against the upstream packages (a package so its conftest does not shadow tests/conftest)."""
