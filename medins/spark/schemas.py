"""Spark schemas of the tables medins passes through Spark, derived from medins' own Polars schemas.

Why derived: the claims table (``medins.claims.parse.CLAIMS_SCHEMA``) and the settlement columns are
defined once; Spark gets their exact types — Int64 fen, dates, booleans, ``Decimal(18, 2)`` yuan —
so no value is ever a double on the way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql.types import DataType, StructType


def spark_type(dtype: pl.DataType) -> DataType:
    from pyspark.sql import types as T

    if isinstance(dtype, pl.List):
        return T.ArrayType(spark_type(dtype.inner))  # type: ignore[arg-type]
    if isinstance(dtype, pl.Decimal):
        return T.DecimalType(dtype.precision or 38, dtype.scale or 0)
    simple = {pl.String: T.StringType(), pl.Int64: T.LongType(), pl.Int32: T.IntegerType(), pl.Date: T.DateType(),
              pl.Boolean: T.BooleanType()}
    return simple[dtype.base_type()]  # type: ignore[index]


def struct(columns: dict[str, pl.DataType]) -> StructType:
    from pyspark.sql import types as T

    return T.StructType([T.StructField(name, spark_type(dtype), True) for name, dtype in columns.items()])


def parsed_schema() -> StructType:
    from medins.spark.tasks import PARSED_COLUMNS

    return struct(PARSED_COLUMNS)


def settled_schema() -> StructType:
    """``row``, the batch output columns (money ``Decimal(18, 2)``, text joined), the summary columns."""
    from medins.engine.settle import MONEY_OUTPUTS, OUTPUT_COLUMNS
    from medins.spark.tasks import SUMMARY_COLUMNS

    columns: dict[str, pl.DataType] = {"row": pl.Int64()}
    columns |= {c: pl.Decimal(18, 2) if c in MONEY_OUTPUTS else pl.String() for c in OUTPUT_COLUMNS}
    return struct(columns | SUMMARY_COLUMNS)


def arrow_schema(schema: StructType) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema)
