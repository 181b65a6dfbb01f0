"""Test-session settings shared by every test module.

Why no hypothesis deadline: the properties here settle whole claim tables through Polars, whose
first call of a plan compiles it and whose speed on a shared 2-core machine varies several-fold.
A per-example time limit would then fail tests for the machine's load, not for a wrong answer;
speed is measured by the scripts in ``benchmarks/``, never by the test suite.
"""

import pytest
from hypothesis import settings

settings.register_profile("medins", deadline=None)
settings.load_profile("medins")


@pytest.fixture(scope="session")
def spark():
    """One ``local[2]`` Spark session for the whole test session (tests/spark, the README's Spark command)."""
    from tests.spark_support import skip_or_fail, spark_missing

    skip_or_fail(spark_missing())
    from medins.spark import session

    spark = session("local[2]", app="medins-tests")
    yield spark
    spark.stop()
