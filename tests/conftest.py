"""Test-wide settings.

Why no Hypothesis deadline: the property tests check correctness, not speed (benchmarks/ measures speed),
and on a 2-core machine shared by several test runs one example's first call can take several times the
default 200 ms, failing a correct test as "Flaky: DeadlineExceeded".
"""

from hypothesis import settings

settings.register_profile("medins", deadline=None)
settings.load_profile("medins")
