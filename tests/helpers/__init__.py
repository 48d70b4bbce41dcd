"""Helpers of the test suite that are not tests themselves.

``pytest.ini`` makes ``tests/`` importable (``pythonpath = tests``), so
test modules and ``conftest.py`` files import these as ``helpers.<module>``.
Fixtures live in the ``conftest.py`` files; what is here is plain code:
paths, tiny configs, tool runners, crafted pickles, the official reference
forward and the release file layouts.
"""
