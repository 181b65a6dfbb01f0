"""Test-session settings shared by every test module.

Why no hypothesis deadline: the properties here settle whole claim tables through Polars, whose
first call of a plan compiles it and whose speed on a shared 2-core machine varies several-fold.
A per-example time limit would then fail tests for the machine's load, not for a wrong answer;
speed is measured by the scripts in ``benchmarks/``, never by the test suite.
"""

from hypothesis import settings

settings.register_profile("medins", deadline=None)
settings.load_profile("medins")
