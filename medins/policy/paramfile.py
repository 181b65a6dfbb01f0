"""``--set-file PARAMS.yaml``: parameters for a what-if run, written as the policy writes them.

Why a file: a published page often gives a whole scale, a table per category or several numbers a
policy marks ``missing: true``; typing each as ``--set`` is error-prone and cannot hold a scale of
five bands readably. The file is the ``parameters:`` section of a policy (the ``parameters:`` line
itself may be left out) and is validated by the same model, so a bad rate names ``file:line:column``,
the key, what was found and what is allowed. Two conveniences: ``unit`` defaults to the policy's own
unit and ``source`` to ``--set-file FILE:LINE``; a plain value (``basic_deductible: 800``) is a
``value`` and a plain list of bands is a ``scale``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError

from medins.errors import PolicyError, PolicyIssue, UsageError, close_names
from medins.policy.compiled import parse_compact_scale
from medins.policy.messages import issues_from_validation_error
from medins.policy.schema import Model, Name, Parameter, Policy
from medins.policy.yamlsource import Positions, load_yaml

_FORM_KEYS = frozenset(Parameter.model_fields)


class ParameterFile(Model):
    """The document of ``--set-file``: parameters by name, in the policy's own form."""

    parameters: dict[Name, Parameter] = Field(default_factory=dict)


def load_parameter_file(path: str | Path, model: Policy, *, only_known: bool = False) -> dict[str, Parameter]:
    """Read, complete and validate ``path`` against ``model``'s parameters; PolicyError lists every issue.

    ``only_known``: names ``model`` does not declare are skipped (one file for the several policies of
    ``compare`` or ``curve``; the command checks that each name belongs to one of them)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--set-file {path}: cannot read it ({exc})", f"--set-file {path}:无法读取({exc})") from None
    display = str(path)
    data, positions = load_yaml(text, display, strict=False)
    if data is None:
        data = {}
    if not (isinstance(data, dict) and set(data) == {"parameters"}):
        data = {"parameters": data}
        positions = Positions({("parameters", *k): positions[k] for k in positions}, positions.issues, data)
    issues = list(positions.issues)
    entries = data["parameters"]
    if not isinstance(entries, dict):
        line, col = positions.locate(("parameters",))
        raise PolicyError([PolicyIssue(
            file=display, line=line, column=col, key_path="parameters", found=type(entries).__name__,
            allowed="a mapping NAME: {unit, value | values | scale, source}", code="wrong_type",
            message_en="a parameter file maps parameter names to their values",
            message_zh="参数文件应为“参数名: 取值”的映射")])
    completed: dict[str, object] = {}
    for name, entry in entries.items():
        declared = model.parameters.get(str(name))
        if declared is None and only_known:
            continue
        if declared is None:
            close = close_names(str(name), model.parameters, n=3)
            line, col = positions.locate(("parameters", name), prefer="key")
            issues.append(PolicyIssue(
                file=display, line=line, column=col, key_path=f"parameters.{name}", found=repr(name),
                allowed=", ".join(model.parameters), code="unknown_parameter",
                message_en=f"policy {model.id} has no parameter {name!r}",
                message_zh=f"政策 {model.id} 没有参数 {name!r}",
                hint_en=f"did you mean {', '.join(close)}?" if close else "see `medins policy show`",
                hint_zh=f"是否应为 {', '.join(close)}?" if close else "见 `medins policy show`"))
            continue
        line, _col = positions.locate(("parameters", name), prefer="key")
        completed[name] = _complete(entry, declared, f"--set-file {display}:{line}")
    try:
        parsed = ParameterFile.model_validate({"parameters": completed})
    except ValidationError as exc:
        issues += issues_from_validation_error(exc, positions, display, ParameterFile)
        parsed = None
    if issues or parsed is None:
        issues.sort(key=lambda i: (i.line is None, i.line or 0, i.column or 0))
        raise PolicyError(issues)
    return dict(parsed.parameters)


def declared_name(declared: Parameter) -> str:
    return declared.label.en if declared.label else "parameter"


def _complete(entry: object, declared: Parameter, source: str) -> object:
    """The entry in full policy form: shorthands expanded, ``unit`` and ``source`` filled when absent."""
    if isinstance(entry, list):
        entry = {"scale": entry}
    elif isinstance(entry, str) and (declared.scale is not None or declared.unit == "scale" or ":" in entry):
        try:
            entry = {"scale": parse_compact_scale(declared_name(declared), entry)}
        except ValueError:
            entry = {"value": entry}  # reported by the model, located
    elif not isinstance(entry, dict):
        entry = {"value": entry}
    elif not set(map(str, entry)) & _FORM_KEYS:
        entry = {"values": entry}  # a bare table: {retired: 90%, in_service: 80%}
    full = dict(entry)
    if "unit" not in full and "scale" not in full and declared.unit != "scale":
        full["unit"] = declared.unit
    full.setdefault("source", source)
    if "value" in full and full["value"] is not None and not isinstance(full["value"], (dict, list)):
        full["value"] = str(full["value"])
    return full
