"""A loaded policy made ready to settle: parameter values resolved, expressions parsed, overrides applied.

Why a separate step: the YAML model says what the author wrote; the engine needs typed values
(Decimal yuan, fractions, dates, nested tables, bands) per version, and every expression parsed once
against the names a claim offers. ``--set`` overrides land here, validated with the parameter's unit,
so a what-if run cannot smuggle in a malformed number either.
"""

from __future__ import annotations

import re
from datetime import date

from pydantic import ValidationError

from medins.policy.expr import MissingEntry
from medins.policy.plan import (  # noqa: F401 - the compiled policy's classes and names, here as before
    CLAIM_NAMES,
    DERIVED_NAMES,
    ITEM_NAMES,
    PAYER_NAMES,
    CompiledPolicy,
    CompiledVersion,
    ParamSet,
    ScaleBand,
)
from medins.policy.schema import Band, Parameter, Policy, check_scalar, is_missing_entry, iter_expressions

_SET_KEY = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)(?P<rest>(\.[^.\[\]=]+|\[\d+\](\.(upto|rate))?)*)$")


def _convert(value: object, unit: str | None, path: str) -> object:
    """A table's values typed by ``unit``; an entry ``{missing: true}`` becomes a :class:`MissingEntry` named
    by its ``--set`` path (``rate_by_category.in_service``)."""
    if is_missing_entry(value):
        return MissingEntry(path)
    if isinstance(value, dict):
        return {_key(k): _convert(v, unit, f"{path}.{k}") for k, v in value.items()}
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
            constants[name] = _convert(param.values, param.unit, name)
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
        from medins.errors import close_names

        close = close_names(key.split(".")[0].split("[")[0], params, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"--set {key}: no parameter of that name.{hint} See `medins policy show`.")
    name, rest = match.group("name"), match.group("rest")
    param = params[name]
    data = param.model_dump(exclude_none=True)
    is_scale = param.scale is not None or param.unit == "scale"
    if not rest:
        data.pop("values", None)
        data.pop("missing", None)
        data.pop("value", None)
        if is_scale or (param.unit == "rate" and ":" in raw):  # a rate doubles as a one-band scale: bands too
            data["scale"] = parse_compact_scale(key, raw)
        else:
            try:
                check_scalar(raw, param.unit)
            except ValueError as exc:
                raise ValueError(f"--set {key}={raw}: {exc}") from None
            data["value"] = raw
    elif rest.startswith("["):
        index = int(rest[1 : rest.index("]")])
        attr = rest.split(".")[-1] if "." in rest else "rate"
        if not is_scale:
            raise ValueError(f"--set {key}: {name} is not a scale; set it with --set {name}=VALUE")
        scale = data.setdefault("scale", [])
        data.pop("missing", None)
        if index > len(scale):
            raise ValueError(f"--set {key}: {name} has {len(scale)} band(s); the next band is [{len(scale)}], "
                             f"[{index}] is past the end")
        if index == len(scale):
            scale.append({"rate": "0"})
        scale[index][attr] = raw
    else:
        path = rest.strip(".").split(".")
        values = data.get("values")
        if values is None and param.missing and not is_scale:
            values = data["values"] = {}  # a missing table supplied entry by entry
            data.pop("missing", None)
        if values is None:
            raise ValueError(f"--set {key}: {name} is not a table")
        node = values
        for part in path[:-1]:
            node = node.setdefault(part if part in node else _key(part), {})
        existing = next((k for k in node if str(k) == path[-1]), path[-1])
        node[existing] = raw
    data["source"] = f"--set {key}={raw} (was: {param.source})"
    try:
        return {**params, name: Parameter.model_validate(data)}
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("scale", "values"))
        message = str(first.get("ctx", {}).get("error", "") or first.get("msg", ""))
        raise ValueError(f"--set {key}={raw}: {message}" + (f" (at {where})" if where else "")) from None


def parse_compact_scale(key: str, raw: str) -> list[dict[str, str]]:
    """``--set NAME=60%`` (one open band) or ``--set "NAME=5000:50%,10000:60%,:70%"`` (bands ``upto:rate``,
    the last without ``upto``) → the scale's bands as the policy writes them (validated by the caller)."""
    bands: list[dict[str, str]] = []
    parts = [p.strip() for p in raw.split(",")]
    for i, part in enumerate(parts):
        upto, sep, rate = part.rpartition(":")
        if not sep and len(parts) > 1:
            raise ValueError(f"--set {key}={raw}: band {part!r} needs upto:rate, e.g. 5000:50% (the last band :70%)")
        if not rate:
            raise ValueError(f"--set {key}={raw}: band {i + 1} has no rate; write upto:rate, e.g. 5000:50%")
        for text, unit in ((rate, "rate"), (upto.strip(), "yuan")):
            if text:
                try:
                    check_scalar(text, unit)
                except ValueError as exc:
                    raise ValueError(f"--set {key}={raw}: band {i + 1}: {exc}") from None
        bands.append({"upto": upto.strip(), "rate": rate} if upto.strip() else {"rate": rate})
    return bands


def compile_policy(model: Policy, file: str, overrides: dict[str, str] | None = None,
                   replaced: dict[str, Parameter] | None = None) -> CompiledPolicy:
    """Resolve parameters per version, applying ``replaced`` (``--set-file``), then ``overrides`` (``--set``),
    to every version (they win over a version's own value)."""
    overrides = dict(overrides or {})
    replaced = dict(replaced or {})
    start = None if model.benefit_year.missing else model.benefit_year.start
    version_dates: dict[tuple[str, str], str] = {}
    base = {**model.parameters, **replaced}
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
            merged[name] = replaced.get(name, param)
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
    expressions = tuple(text for _loc, text, _holder in iter_expressions(model))
    return CompiledPolicy(model, file, versions, overrides, start, expressions)


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
