"""Safe, line-aware YAML loading for policy files.

Why: PyYAML's constructors guess types (``0.55`` becomes a binary float, ``010`` an octal 8,
``no`` a boolean, ``2007-07-01`` a date) and forget where each value came from. Policies pay
money, so this loader composes nodes with :class:`yaml.SafeLoader` (never constructing Python
objects from tags) and builds plain data itself: ``null``/``~``/empty → ``None``, ``true``/``false``
→ bool, and every other scalar stays the exact text written, for pydantic to read as Decimal,
int or date. Along the way it records the 1-based position of every key and value
(:class:`Positions`) so that validation errors can name ``file:line:col``.

Refused, as :class:`~medins.errors.PolicyIssue` rather than silently accepted:

* duplicate keys (``duplicate_key``: the later one is reported, the first one is kept);
* aliases ``*name`` (``yaml_alias``) and merge keys ``<<`` (``yaml_merge``): a policy must read
  top to bottom without jumping to anchors;
* tags other than YAML's core ones, e.g. ``!!python/object`` (``yaml_tag``);
* keys that are themselves mappings or lists (``complex_key``).

Syntax errors (``yaml_syntax``) stop loading at once, since nothing after them can be trusted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from medins.errors import PolicyError, PolicyIssue, format_key_path, unencodable_path

PathItem = str | int
KeyPath = tuple[PathItem, ...]

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_ALIAS = "!medins/alias"  # placeholder tag for an alias that was not expanded

SYNTAX_HINT_EN = "check indentation and quoting; a value containing ': ' or '#' must be quoted"
SYNTAX_HINT_ZH = "请检查缩进和引号；含有「: 」或「#」的值必须加引号"

# PyYAML's problem texts are English; the commonest get a Chinese explanation (English kept too).
_SYNTAX_ZH = (
    ("mapping values are not allowed", "这里不能出现「: 」（值中的冒号需要加引号）"),
    ("found character '\\t'", "不能用 Tab 缩进，请改用空格"),
    ("could not find expected ':'", "缺少「:」"),
    ("expected <block end>", "缩进不一致"),
    ("found unexpected end of stream", "引号或括号没有闭合"),
    ("found duplicate anchor", "锚点重复"),
    ("expected a single document", "文件中只能有一个 YAML 文档"),
)


@dataclass(frozen=True)
class Position:
    """Where one entry sits: its value at ``line:column``, its key (if any) at ``key_line:key_column``."""

    line: int
    column: int
    key_line: int | None = None
    key_column: int | None = None


class Positions(Mapping[KeyPath, Position]):
    """Positions of every mapping entry and list item, by key path (``("rules", 1, "rate")``).

    ``issues`` holds the non-fatal YAML problems found while loading (duplicate keys, aliases,
    tags, merge keys) so that :func:`medins.policy.messages.load_model` can report them together
    with the validation errors; ``data`` is the loaded document, which lets error messages show
    what was written at a path.
    """

    def __init__(
        self,
        entries: Mapping[KeyPath, Position] | None = None,
        issues: list[PolicyIssue] | None = None,
        data: object = None,
    ) -> None:
        self._entries: dict[KeyPath, Position] = dict(entries or {})
        self.issues: list[PolicyIssue] = list(issues or [])
        self.data = data

    def __getitem__(self, path: KeyPath) -> Position:
        return self._entries[tuple(path)]

    def __iter__(self) -> Iterator[KeyPath]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def locate(
        self, loc: tuple[PathItem, ...], prefer: Literal["key", "value"] = "value"
    ) -> tuple[int | None, int | None]:
        """1-based (line, column) of the deepest known prefix of ``loc``.

        With ``prefer="key"`` an exactly known mapping entry answers with its key's position (for
        errors about the key itself, such as an unknown key); otherwise with its value's. A path
        that is not in the file (a missing key) answers with the enclosing mapping.
        """
        loc = tuple(loc)
        for n in range(len(loc), -1, -1):
            pos = self._entries.get(loc[:n])
            if pos is None:
                continue
            if prefer == "key" and n == len(loc) and pos.key_line is not None:
                return pos.key_line, pos.key_column
            return pos.line, pos.column
        return None, None


class _Loader(yaml.SafeLoader):
    """SafeLoader that reports aliases instead of expanding them (no billion-laughs, no cycles)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()
            return yaml.ScalarNode(_ALIAS, event.anchor, event.start_mark, event.end_mark)
        return super().compose_node(parent, index)  # type: ignore[arg-type]


def _pos(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


class _Builder:
    """Turns composed nodes into plain dict/list/str/bool/None data, recording positions and issues."""

    def __init__(self, loader: _Loader, filename: str) -> None:
        self.loader = loader
        self.filename = filename
        self.entries: dict[KeyPath, Position] = {}
        self.issues: list[PolicyIssue] = []

    def issue(
        self, path: KeyPath, mark: yaml.Mark, code: str, found: str | None, texts: tuple[str, ...]
    ) -> None:
        en, zh, hint_en, hint_zh = texts
        line, column = _pos(mark)
        self.issues.append(
            PolicyIssue(
                file=self.filename,
                line=line,
                column=column,
                key_path=format_key_path(path),
                found=found,
                message_en=en,
                message_zh=zh,
                hint_en=hint_en,
                hint_zh=hint_zh,
                code=code,
            )
        )

    def check_tag(self, node: yaml.Node, path: KeyPath, allowed: frozenset[str]) -> None:
        if node.tag not in allowed:
            tag = _short_tag(node.tag)
            self.issue(path, node.start_mark, "yaml_tag", tag, (
                f"YAML tag {tag} is not allowed", f"不允许使用 YAML 标签 {tag}",
                "remove the tag; policy values are plain text, numbers, lists and mappings",
                "请删除该标签；策略文件只允许普通文本、数字、列表和映射",
            ))  # fmt: skip

    def build(self, node: yaml.Node, path: KeyPath, key_pos: tuple[int, int] | None = None) -> object:
        line, column = _pos(node.start_mark)
        if isinstance(node, yaml.ScalarNode) and node.style is None and node.value == "" and key_pos:
            line, column = key_pos  # an empty value has no text of its own: point at its key
        kl, kc = key_pos if key_pos else (None, None)
        self.entries[path] = Position(line, column, kl, kc)
        if node.tag == _ALIAS:
            self.alias(node, path)
            return None
        if isinstance(node, yaml.MappingNode):
            self.check_tag(node, path, frozenset({_CORE + "map"}))
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            self.check_tag(node, path, frozenset({_CORE + "seq"}))
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        self.check_tag(node, path, _SCALAR_TAGS)
        return self.scalar(node)

    def alias(self, node: yaml.Node, path: KeyPath) -> None:
        self.issue(path, node.start_mark, "yaml_alias", f"*{node.value}", (
            f"YAML aliases (*{node.value}) are not supported", f"不支持 YAML 别名（*{node.value}）",
            "write the value out in full so the policy reads top to bottom",
            "请把取值完整写出，使策略可以从上到下直接阅读",
        ))  # fmt: skip

    def scalar(self, node: yaml.ScalarNode) -> object:
        value: str = node.value
        if node.style is not None:  # quoted, literal | or folded >: always text
            return value
        if (
            node.tag == _CORE + "str"
            and self.loader.resolve(yaml.ScalarNode, value, (True, False)) != node.tag
        ):
            return value  # an explicit !!str
        if node.tag == _CORE + "null" or value in _NULLS:
            return None
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        return value

    def mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, object]:
        result: dict[str, object] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _CORE + "merge":
                self.issue(path, key_node.start_mark, "yaml_merge", "<<", (
                    "merge keys (<<) are not supported", "不支持合并键（<<）",
                    "write the keys out in full so the policy reads top to bottom",
                    "请把各个键完整写出，使策略可以从上到下直接阅读",
                ))  # fmt: skip
                continue
            if key_node.tag == _ALIAS:
                self.alias(key_node, path)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.issue(path, key_node.start_mark, "complex_key", None, (
                    "a key must be plain text, not a list or mapping", "键必须是普通文本，不能是列表或映射",
                    "remove the '? ' complex key", "请删除「? 」形式的复合键",
                ))  # fmt: skip
                continue
            self.check_tag(key_node, (*path, key_node.value), _SCALAR_TAGS)
            key = key_node.value  # keys stay as written: `3: 650` → "3"
            key_line, key_column = _pos(key_node.start_mark)
            if key in first_line:
                self.issue((*path, key), key_node.start_mark, "duplicate_key", repr(key), (
                    f"key '{key}' appears again (first at line {first_line[key]})",
                    f"键「{key}」重复出现（第一次在第 {first_line[key]} 行）",
                    f"keep one '{key}'; the first one is used, this one is ignored",
                    f"请只保留一个「{key}」；当前使用第一个，这一处被忽略",
                ))  # fmt: skip
                continue
            first_line[key] = key_line
            result[key] = self.build(value_node, (*path, key), (key_line, key_column))
        return result


#: Contexts of a construct that runs until it is closed: reported where it opened, not where YAML gave up.
_OPENING_CONTEXTS = ("while scanning", "while parsing a flow")


def read_policy_text(file: str | Path, display: str | None = None) -> str:
    """The text of a policy file (UTF-8, BOM allowed); a file in another encoding is a located PolicyError.

    Why here: a policy saved as GBK by a Windows editor, or a CSV given to ``policy check``, must read as
    a compiler error (file:line:column of the first byte that is not UTF-8, and how to convert it).
    """
    data = Path(file).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        guess = "GBK" if _decodes(data, "gb18030") else None
        found = f"byte 0x{data[exc.start]:02x}" + (f" (the file looks like {guess})" if guess else "")
        raise PolicyError([PolicyIssue(
            file=display or str(file), line=line, column=column, key_path="", found=found, allowed="UTF-8 text",
            message_en="the policy file is not UTF-8 text", message_zh="政策文件不是 UTF-8 编码",
            hint_en="save it as UTF-8, e.g. iconv -f gbk -t utf-8 OLD.yaml > NEW.yaml",
            hint_zh="请以 UTF-8 编码保存,例如 iconv -f gbk -t utf-8 旧.yaml > 新.yaml", code="encoding",
        )]) from None


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _syntax_issue(exc: yaml.YAMLError, text: str, filename: str) -> PolicyIssue:
    line = column = None
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = ": ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        if exc.context_mark is not None and exc.context and exc.context.startswith(_OPENING_CONTEXTS):
            # An unclosed quote or bracket is only noticed where the text ends; the mistake is where it opened.
            mark = exc.context_mark
            if exc.problem_mark is not None:
                found_line, found_column = _pos(exc.problem_mark)
                problem += f" (opened here; noticed at line {found_line}, column {found_column})"
        if mark is not None:
            line, column = _pos(mark)
    elif isinstance(exc, yaml.reader.ReaderError):
        pos = min(exc.position, len(text))
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        char = exc.character
        problem = (
            f"special character {f'U+{char:04X}' if isinstance(char, int) else repr(char)} is not allowed"
        )
    else:
        problem = str(exc)
    zh = next((zh for en, zh in _SYNTAX_ZH if en in problem), None)
    return PolicyIssue(
        file=filename, line=line, column=column, key_path="",
        message_en=f"YAML syntax error: {problem}",
        message_zh=f"YAML 语法错误：{zh}（{problem}）" if zh else f"YAML 语法错误：{problem}",
        hint_en=SYNTAX_HINT_EN, hint_zh=SYNTAX_HINT_ZH, code="yaml_syntax",
    )  # fmt: skip


def load_yaml(text: str, filename: str, *, strict: bool = True) -> tuple[object, Positions]:
    """Parse one YAML document into plain data (dict/list/str/bool/None) and its :class:`Positions`.

    A syntax error raises :class:`~medins.errors.PolicyError` at once. Other problems (duplicate
    keys, aliases, tags, merge keys) are collected in ``positions.issues``; with ``strict`` (the
    default) they are raised too, all together, so a caller that ignores ``issues`` cannot miss
    them. ``load_model`` passes ``strict=False`` to report them with the validation errors.
    """
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader already rejects unprintable characters here
        node = loader.get_single_node()
        builder = _Builder(loader, filename)
        data = builder.build(node, ()) if node is not None else None
        builder.entries.setdefault((), Position(1, 1))  # an empty document is still at line 1
    except yaml.YAMLError as exc:
        raise PolicyError([_syntax_issue(exc, text, filename)]) from None
    except RecursionError:
        raise PolicyError([_syntax_issue(yaml.YAMLError("nesting is too deep"), text, filename)]) from None
    finally:
        if loader is not None:
            loader.dispose()
    bad = unencodable_path(data)
    if bad is not None:  # a "\ud800" escape: not a character, and nothing could print it
        where = builder.entries.get(bad) or Position(None, None)  # type: ignore[arg-type]
        raise PolicyError([PolicyIssue(
            file=filename, line=where.line, column=where.column, key_path=format_key_path(bad),
            message_en="a text contains a lone surrogate (\\ud800-\\udfff), which is not a character",
            message_zh="文本中含有单独的代理码位(\\ud800-\\udfff),不是有效字符", code="bad_text",
            hint_en="remove the \\u escape or write the character itself", hint_zh="请删除该 \\u 转义,或直接写出字符",
        )])
    issues = sorted(builder.issues, key=lambda i: (i.line or 0, i.column or 0))
    if strict and issues:
        raise PolicyError(issues)
    return data, Positions(builder.entries, issues, data)
