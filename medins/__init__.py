"""medins: Chinese public medical-insurance (医保) policies as executable, reviewable YAML."""

__version__ = "0.1.0"

#: Commands that settle or show a handful of rows (``medins.cli._quiet_gc``): they allocate tens of thousands
#: of small objects (imports, schema classes, Polars expressions), none of them cyclic garbage worth collecting.
SMALL_COMMANDS = frozenset({"calc"})
