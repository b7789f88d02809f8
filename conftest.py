"""pytest set-up for the whole repository: every shared fixture lives in ``tests/qwc_fixtures.py`` (``tests/`` is
on ``sys.path`` through the ``pythonpath`` option in pyproject.toml), loaded once for ``tests/`` and
``compat_tests/`` alike."""

pytest_plugins = ["qwc_fixtures"]
