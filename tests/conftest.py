"""Test-session settings shared by every test module.

Why no hypothesis deadline: the properties here settle whole claim tables through Polars, whose
first call of a plan compiles it and whose speed on a shared 2-core machine varies several-fold.
A per-example time limit would then fail tests for the machine's load, not for a wrong answer;
speed is measured by the scripts in ``benchmarks/``, never by the test suite.

Why a policy cache folder of its own: the command line keeps compiled policies on disk
(``medins.policy.cache``); the suite's entries go to a temporary folder, never the user's cache.
"""

import os

import pytest
from hypothesis import settings

settings.register_profile("medins", deadline=None)
settings.load_profile("medins")


@pytest.fixture(autouse=True, scope="session")
def _policy_cache_folder(tmp_path_factory):
    """``MEDINS_CACHE_DIR`` for the whole session (subprocesses inherit it), then the user's value again."""
    before = os.environ.get("MEDINS_CACHE_DIR")
    os.environ["MEDINS_CACHE_DIR"] = str(tmp_path_factory.mktemp("policy-cache"))
    yield
    if before is None:
        del os.environ["MEDINS_CACHE_DIR"]
    else:
        os.environ["MEDINS_CACHE_DIR"] = before


@pytest.fixture(scope="session")
def spark():
    """One ``local[2]`` Spark session for the whole test session (tests/spark, the README's Spark command)."""
    from tests.spark_support import skip_or_fail, spark_missing

    skip_or_fail(spark_missing())
    from medins.spark import session

    spark = session("local[2]", app="medins-tests")
    yield spark
    spark.stop()
