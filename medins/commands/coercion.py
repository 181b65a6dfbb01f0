"""Command-line values coerced without pydantic: the same values and the same errors as typer's own path.

Why: typer 0.29 turns every parameter's value into its Python type through a pydantic ``TypeAdapter`` built
for that parameter (``typer._coercion.build_runtime_param``), and it builds one for every parameter of the
command that runs, given or not. Importing pydantic and building those adapters is a third of what
``medins calc`` costs beyond importing typer, rich and polars, for values that are plain ``str``, ``Path``,
``bool``, ``int`` and ``Literal`` strings.

How it stays the same: for each parameter, :func:`install` sets the runtime coercion typer would build lazily
(``_TyperParameter._runtime_param``) to a :class:`PlainRuntimeParam`. It coerces a value only where the result
is certain to be what typer's adapter returns (a ``str`` as itself, an ASCII integer within its bounds, a
choice that matches, a path that ``Path`` keeps as written, through typer's own ``coerce_cli_path`` and
``coerce_cli_choice``); anything else — a bad value, a number out of range, a path ``Path`` would rewrite,
an annotation it does not know — goes to the coercion typer builds itself, so every error message and exit
code is typer's. ``tests/test_cli_coercion.py`` checks both paths give equal values and errors.

If a typer upgrade changes these internals, :func:`install` leaves the parameters alone (typer's own path,
slower, never wrong), and the test that the hook is active fails so someone looks.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

try:  # typer's internals this hooks into; without them typer's own path runs
    from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
    from typer._param_types import coerce_cli_choice, coerce_cli_path, routes_to_path
    from typer.core import _TyperParameter
except ImportError:  # pragma: no cover - a typer without them
    RuntimeParam = None  # type: ignore[assignment,misc]

#: What a plain coercer returns when it cannot be sure: typer's own coercion decides.
_UNSURE = object()

#: Integers as typer's adapter (pydantic, lax) reads them and ``int()`` gives the same number.
_INT = re.compile(r"-?[0-9]+", re.ASCII)
#: Decimals read the same by pydantic and ``float()`` (no exponent, no ``inf``/``nan``, no underscores).
_FLOAT = re.compile(r"-?[0-9]+(\.[0-9]+)?", re.ASCII)

#: A plain coercer: (value, parameter, context) → the value typer's adapter gives, or ``_UNSURE``.
Coercer = Callable[[Any, Any, Any], Any]


def install(params: Iterable[Any]) -> None:
    """Give each typer parameter whose annotation is plain a :class:`PlainRuntimeParam` (the rest keep typer's)."""
    if RuntimeParam is None:  # pragma: no cover
        return
    for param in params:
        if not isinstance(param, _TyperParameter) or getattr(param, "_runtime_param", False) is not None:
            continue  # not typer's, already built, or a typer whose parameters no longer have the slot
        descriptor = getattr(param, "type_descriptor", None)
        if not isinstance(descriptor, TypeDescriptor) or descriptor.file_annotation is not None:
            continue
        coercer = _coercer(descriptor.annotation, descriptor.parameter_info)
        if coercer is not None:
            param._runtime_param = PlainRuntimeParam(parameter_info=descriptor.parameter_info,
                                                     annotation=descriptor.annotation, descriptor=descriptor,
                                                     plain=coercer)


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class PlainRuntimeParam(RuntimeParam):  # type: ignore[misc,valid-type]
        """Typer's coercion contract for one parameter: the plain coercer, else typer's own adapter."""

        descriptor: TypeDescriptor
        plain: Coercer

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            out = self.plain(value, param, ctx)
            if out is _UNSURE:  # typer's path: its value, or its error message
                return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)
            return out


def _coercer(annotation: Any, info: Any) -> Coercer | None:
    """The plain coercer for ``annotation`` (typer's ``build_adapter`` order), or None for typer's own path."""
    if get_origin(annotation) is list:
        args = get_args(annotation)
        leaf = _leaf(args[0], info) if len(args) == 1 else None
        return None if leaf is None else _list_of(leaf)
    return _leaf(annotation, info)


def _list_of(leaf: Coercer) -> Coercer:
    def coerce(value: Any, param: Any, ctx: Any) -> Any:
        items = value if isinstance(value, (list, tuple)) else [value]
        out = [leaf(item, param, ctx) for item in items]
        return _UNSURE if any(o is _UNSURE for o in out) else out

    return coerce


def _leaf(annotation: Any, info: Any) -> Coercer | None:
    """Typer's ``build_leaf_adapter``, case by case, for the annotations whose result is certain."""
    if info.parser is not None or (get_origin(annotation) is not None and get_origin(annotation) is not Literal):
        return None
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return _choice(tuple(annotation), info.case_sensitive)
    if get_origin(annotation) is Literal:
        return _choice(get_args(annotation), info.case_sensitive)
    if annotation is int or annotation is float:
        return None if info.clamp else _number(annotation, info.min, info.max)
    if annotation is bool:
        return lambda value, param, ctx: value if isinstance(value, bool) else _UNSURE
    if annotation is str:
        return lambda value, param, ctx: value if type(value) is str else _UNSURE
    if isinstance(annotation, type) and routes_to_path(annotation, info):
        return _path(annotation, info)
    return None


def _choice(choices: tuple[Any, ...], case_sensitive: bool) -> Coercer:
    def coerce(value: Any, param: Any, ctx: Any) -> Any:
        try:
            return coerce_cli_choice(value, choices=choices, case_sensitive=case_sensitive, ctx=ctx)
        except ValueError:  # not a choice: typer's adapter words the error
            return _UNSURE

    return coerce


def _number(kind: type, low: Any, high: Any) -> Coercer:
    pattern = _INT if kind is int else _FLOAT

    def coerce(value: Any, param: Any, ctx: Any) -> Any:
        if type(value) is kind:
            number = value
        elif type(value) is str and pattern.fullmatch(value):
            number = kind(value)
        else:
            return _UNSURE
        if (low is not None and number < low) or (high is not None and number > high):
            return _UNSURE  # out of bounds: typer's message
        return number

    return coerce


def _path(annotation: type, info: Any) -> Coercer:
    path_type = info.path_type
    if path_type is None and issubclass(annotation, Path):
        path_type = annotation

    def coerce(value: Any, param: Any, ctx: Any) -> Any:
        if path_type is None or path_type is str or path_type is bytes or isinstance(value, path_type):
            return coerce_cli_path(value, info, path_type=path_type, param=param, ctx=ctx)  # no pydantic here
        if type(value) is str:
            path = path_type(value)  # what pydantic's Path validation makes of a str
            if os.fspath(path) == value:  # written as Path keeps it: the checks and messages see the same text
                return coerce_cli_path(path, info, path_type=path_type, param=param, ctx=ctx)
        return _UNSURE

    return coerce
