"""Parameter-by-parameter differences between two policies (or two versions of one), with citations.

Why on the compiled values: two files may write the same number differently (``55%`` and ``0.55``),
and a version may override a parameter; comparing resolved values per version shows what really
differs, and each side's ``source`` says where its number comes from.
"""

from __future__ import annotations

from decimal import Decimal

from medins.policy.compiled import CompiledPolicy, ScaleBand


def _flatten(name: str, value: object) -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, inner in value.items():
            out.update(_flatten(f"{name}.{key}", inner))
        return out
    return {name: value}


def _text(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, list) and value and isinstance(value[0], ScaleBand):
        return "; ".join(f"≤{b.hi / 100:,.0f}: {format((b.rate * 100).normalize(), 'f')}%" if b.hi is not None
                         else f"above: {format((b.rate * 100).normalize(), 'f')}%" for b in value)
    return str(value)


def _values(policy: CompiledPolicy) -> dict[str, tuple[str, str]]:
    """key → (value text, source) over every version (keys prefixed by the version when versions differ)."""
    out: dict[str, tuple[str, str]] = {}
    several = len(policy.versions) > 1
    for version in policy.versions:
        params = version.params
        prefix = f"{version.id}:" if several else ""
        for name in sorted(set(params.constants) | set(params.scales)):
            source = params.sources.get(name, "")
            if name in params.missing:
                out[prefix + name] = ("MISSING", source)
            elif name in params.scales and not isinstance(params.constants.get(name), Decimal):
                out[prefix + name] = (_text(params.scales[name]), source)
            else:
                for key, value in _flatten(name, params.constants.get(name)).items():
                    out[prefix + key] = (_text(value), source)
    model = policy.model
    out["admission.excluded_causes"] = (", ".join(sorted(model.admission.excluded_causes)) or "—",
                                        model.admission.excluded_causes_source or "")
    for rule in model.rules:
        parts = [f"when {rule.when}"]
        if rule.deductible:
            parts.append(f"deductible {rule.deductible.standard} per {rule.deductible.per}")
        if rule.bands:
            parts.append(f"bands {rule.bands.scale or rule.bands.rate} ({rule.bands.axis})")
        if rule.cap:
            parts.append(f"cap {rule.cap.amount} per {rule.cap.per}")
        out[f"rule.{rule.id}"] = (" · ".join(" ".join(p.split()) for p in parts), rule.source)
    return out


def policy_diff(a: CompiledPolicy, b: CompiledPolicy, *, all_rows: bool = False) -> list[dict[str, str]]:
    """Rows {key, a, b, a_source, b_source, change} for keys that differ (or all with ``all_rows``)."""
    left, right = _values(a), _values(b)
    rows = []
    for key in sorted(set(left) | set(right)):
        av, asrc = left.get(key, ("—", ""))
        bv, bsrc = right.get(key, ("—", ""))
        change = "same" if av == bv else ("only in A" if key not in right else "only in B" if key not in left
                                          else "changed")
        if all_rows or change != "same":
            rows.append({"key": key, "a": av, "b": bv, "a_source": asrc, "b_source": bsrc, "change": change})
    return rows
