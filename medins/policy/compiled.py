"""A loaded policy made ready to settle: parameter values resolved, expressions parsed, overrides applied.

Why a separate step: the YAML model says what the author wrote; the engine needs typed values
(Decimal yuan, fractions, dates, nested tables, bands) per version, and every expression parsed once
against the names a claim offers. ``--set`` overrides land here, validated with the parameter's unit,
so a what-if run cannot smuggle in a malformed number either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from medins.claims.fields import CLAIM_FIELDS, ITEM_FIELDS
from medins.policy.schema import Band, Parameter, Policy, check_scalar

#: Names the engine computes for every claim, usable in expressions next to the claim fields.
DERIVED_NAMES = frozenset({
    "service_date", "year", "age", "stay_days", "admissions", "inscope", "eligible", "class_b_inscope",
    "rate", "total_items",
})
CLAIM_NAMES = frozenset(f.name for f in CLAIM_FIELDS)
ITEM_NAMES = frozenset(f.name for f in ITEM_FIELDS)

_SET_KEY = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)(?P<rest>(\.[^.\[\]=]+|\[\d+\](\.(upto|rate))?)*)$")


@dataclass(frozen=True)
class ScaleBand:
    """One band in fen and ppm: (lo, hi] paid at rate; hi None = open."""

    lo: int
    hi: int | None
    rate: Decimal
    source: str | None


@dataclass
class ParamSet:
    """Parameter values of one version: expression constants plus scales."""

    constants: dict[str, object]
    scales: dict[str, list[ScaleBand]]
    missing: set[str]
    sources: dict[str, str]


@dataclass
class CompiledVersion:
    id: str
    valid_from: date | str | None
    valid_to: date | str | None
    params: ParamSet


@dataclass
class CompiledPolicy:
    """What the engine runs: the model plus resolved values per version."""

    model: Policy
    file: str
    versions: list[CompiledVersion]
    overrides: dict[str, str] = field(default_factory=dict)
    benefit_year_start: str | None = "01-01"
    #: Values of expressions already evaluated (``engine.context``): a year of claims repeats the same
    #: dates and codes in every partition. Not part of the policy's identity, not pickled.
    memo: dict = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "memo": {}}

    @property
    def id(self) -> str:
        return self.model.id

    def label(self) -> str:
        ids = ",".join(v.id for v in self.versions if v.id != "default")
        return f"{self.model.id}@{ids}" if ids else self.model.id


def _convert(value: object, unit: str | None) -> object:
    if isinstance(value, dict):
        return {_key(k): _convert(v, unit) for k, v in value.items()}
    return check_scalar(value, unit)


def _key(key: object) -> object:
    text = str(key)
    return int(text) if text.isdigit() else text


def scale_from_bands(bands: list[Band]) -> list[ScaleBand]:
    out: list[ScaleBand] = []
    lo = 0
    for band in bands:
        hi = None if band.upto is None else int(band.upto * 100)
        out.append(ScaleBand(lo, hi, band.rate, band.source))
        lo = hi if hi is not None else lo
    return out


def _resolve(params: dict[str, Parameter]) -> ParamSet:
    constants: dict[str, object] = {}
    scales: dict[str, list[ScaleBand]] = {}
    missing: set[str] = set()
    sources: dict[str, str] = {}
    for name, param in params.items():
        sources[name] = param.source
        if param.missing:
            missing.add(name)
            constants[name] = None
        elif param.scale is not None:
            scales[name] = scale_from_bands(param.scale)
        elif param.values is not None:
            constants[name] = _convert(param.values, param.unit)
        else:
            value = check_scalar(param.value, param.unit)
            constants[name] = value
            if param.unit == "rate":
                scales[name] = [ScaleBand(0, None, value, param.source)]  # a rate doubles as a one-band scale
    return ParamSet(constants, scales, missing, sources)


def apply_override(params: dict[str, Parameter], key: str, raw: str) -> dict[str, Parameter]:
    """Return ``params`` with ``--set key=raw`` applied; raise ValueError with a hint when it cannot be."""
    match = _SET_KEY.match(key)
    if not match or match.group("name") not in params:
        import difflib

        close = difflib.get_close_matches(key.split(".")[0].split("[")[0], list(params), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"--set {key}: no parameter of that name.{hint} See `medins policy show`.")
    name, rest = match.group("name"), match.group("rest")
    param = params[name]
    data = param.model_dump(exclude_none=True)
    if not rest:
        if param.scale is not None or (param.missing and param.unit == "scale"):
            raise ValueError(f"--set {key}: {name} is a scale; set a band, e.g. {name}[0].rate=50%")
        unit = param.unit
        check_scalar(raw, unit)
        data.pop("values", None)
        data.pop("missing", None)
        data["value"] = raw
    elif rest.startswith("["):
        index = int(rest[1 : rest.index("]")])
        attr = rest.split(".")[-1] if "." in rest else "rate"
        scale = data.get("scale")
        if scale is None:
            raise ValueError(f"--set {key}: {name} is not a scale")
        if index > len(scale):
            raise ValueError(f"--set {key}: {name} has bands [0] to [{len(scale) - 1}]; "
                             f"[{len(scale)}] adds one, [{index}] is past the end")
        if index == len(scale):
            scale.append({"rate": "0"})
        scale[index][attr] = raw
    else:
        path = rest.strip(".").split(".")
        values = data.get("values")
        if values is None:
            raise ValueError(f"--set {key}: {name} is not a table")
        node = values
        for part in path[:-1]:
            node = node.setdefault(part if part in node else _key(part), {})
        existing = next((k for k in node if str(k) == path[-1]), path[-1])
        node[existing] = raw
    data["source"] = f"--set {key}={raw} (was: {param.source})"
    return {**params, name: Parameter.model_validate(data)}


def compile_policy(model: Policy, file: str, overrides: dict[str, str] | None = None) -> CompiledPolicy:
    """Resolve parameters per version, applying ``overrides`` (``--set``) to every version."""
    overrides = dict(overrides or {})
    start = None if model.benefit_year.missing else model.benefit_year.start
    version_dates: dict[tuple[str, str], str] = {}
    base = dict(model.parameters)
    for key, raw in overrides.items():
        if key == "benefit_year_start":
            if not re.fullmatch(r"\d{2}-\d{2}", raw):
                raise ValueError(f"--set benefit_year_start={raw}: expected MM-DD, e.g. 01-01")
            start = raw
        elif key.startswith("versions."):
            parts = key.split(".")
            if len(parts) != 3 or parts[2] not in ("valid_from", "valid_to"):
                raise ValueError(f"--set {key}: expected versions.ID.valid_from or versions.ID.valid_to")
            date.fromisoformat(raw)
            version_dates[(parts[1], parts[2])] = raw
        else:
            base = apply_override(base, key, raw)
    versions: list[CompiledVersion] = []
    specs = model.versions or []
    if not specs:
        versions.append(CompiledVersion("default", None, None, _resolve(base)))
    for spec in specs:
        merged = {**base}
        for name, param in spec.parameters.items():
            merged[name] = param
            for key, raw in overrides.items():  # --set wins over the version's own value
                if key.split(".")[0].split("[")[0] == name:
                    merged = apply_override(merged, key, raw)
        params = _resolve(merged)
        dates = []
        for attr in ("valid_from", "valid_to"):
            given = version_dates.get((spec.id, attr), getattr(spec, attr))
            dates.append(_version_date(given, params))
        versions.append(CompiledVersion(spec.id, dates[0], dates[1], params))
    known_versions = {v.id for v in specs}
    for vid, _attr in version_dates:
        if vid not in known_versions:
            raise ValueError(f"--set versions.{vid}: no version {vid!r}; versions are {sorted(known_versions)}")
    return CompiledPolicy(model, file, versions, overrides, start)


def _version_date(given: str | None, params: ParamSet) -> date | str | None:
    """A version date is ISO text, or the name of a date parameter (which may be missing)."""
    if given is None:
        return None
    try:
        return date.fromisoformat(str(given))
    except ValueError:
        pass
    if given in params.missing:
        return given  # the engine rejects claims needing it: missing_parameter:<name>
    value = params.constants.get(given)
    if isinstance(value, date):
        return value
    raise ValueError(f"version date {given!r} is neither YYYY-MM-DD nor a date parameter")
