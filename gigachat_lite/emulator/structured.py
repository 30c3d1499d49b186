"""Structured output stand-ins: a deterministic JSON value for a schema, a string for a regex.

JSON schema: every declared property is filled (so every ``required`` key is there),
in the schema's order; ``$ref`` into ``$defs``/``definitions`` is followed, ``anyOf`` /
``oneOf`` / ``allOf`` take their first branch, a list of types its first non-null one.
Values: ``const``, else the first ``enum`` value, else ``default``, else by type: string
-> ``"text"`` (stretched to ``minLength``; ``format`` date/date-time/email/uri/uuid get a
valid sample), integer/number -> ``minimum`` (or ``exclusiveMinimum`` + 1, or 0, capped
at ``maximum``), boolean -> true, array -> ``max(minItems, 1)`` items, null -> null.
The reply text is the value as JSON indented by 4, as the recorded GigaChat-3 reply.

Regex: the pattern is walked with Python's own regex parser, taking the first branch of
each alternation, the smallest repeat count and the first character of each class. The
limits: lookarounds, backreferences to optional groups and conditionals are not
generated; a pattern whose sample does not ``re.fullmatch`` (or does not parse) gets
the plain reply text instead, as a model that ignored the format would.
"""

import json
import re
import string
from typing import Any, Dict, List

try:  # Python 3.11+ moved the parser; the old name warns there.
    from re import _parser as sre_parse  # type: ignore[attr-defined,unused-ignore]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_parse  # type: ignore[no-redef,unused-ignore]

_FORMATS = {
    "date": "2026-01-01",
    "date-time": "2026-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
_MAX_DEPTH = 16  # a recursive schema ends in null instead of looping


def schema_text(schema: Dict[str, Any]) -> str:
    """The reply text for a ``json_schema`` response format."""
    return json.dumps(schema_value(schema, schema, 0), ensure_ascii=False, indent=4)


def schema_value(node: Any, root: Dict[str, Any], depth: int) -> Any:
    """A deterministic value valid for ``node`` (see the module doc)."""
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return None
    if isinstance(node.get("$ref"), str):
        return schema_value(_resolve(node["$ref"], root), root, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        branches = node.get(key)
        if isinstance(branches, list) and branches:
            usable = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
            return schema_value((usable or branches)[0], root, depth + 1)
    if "const" in node:
        return node["const"]
    if isinstance(node.get("enum"), list) and node["enum"]:
        return node["enum"][0]
    if "default" in node:
        return node["default"]
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in node else "string"
    if kind == "object":
        declared = node.get("properties")
        properties: Dict[str, Any] = declared if isinstance(declared, dict) else {}
        value = {name: schema_value(sub, root, depth + 1) for name, sub in properties.items()}
        for name in node.get("required") or []:
            value.setdefault(name, "text")  # required but undeclared: any value will do
        return value
    if kind == "array":
        count = max(int(node.get("minItems") or 0), 1)
        return [schema_value(node.get("items"), root, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        return _number(node, kind)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(node)


def _resolve(ref: str, root: Dict[str, Any]) -> Any:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _number(node: Dict[str, Any], kind: str) -> Any:
    low = node.get("minimum")
    if low is None and isinstance(node.get("exclusiveMinimum"), (int, float)):
        low = node["exclusiveMinimum"] + 1
    value = low if isinstance(low, (int, float)) else 0
    high = node.get("maximum")
    if isinstance(high, (int, float)) and value > high:
        value = high
    return int(value) if kind == "integer" else float(value)


def _string(node: Dict[str, Any]) -> str:
    text = _FORMATS.get(str(node.get("format")), "text")
    low = node.get("minLength")
    if isinstance(low, int) and len(text) < low:
        text += "x" * (low - len(text))
    high = node.get("maxLength")
    if isinstance(high, int) and len(text) > high:
        text = text[:high]
    return text


def regex_text(pattern: str, fallback: str) -> str:
    """A string matching ``pattern``, or ``fallback`` where that is out of reach."""
    try:
        sample = _walk(sre_parse.parse(pattern), {})
        if re.fullmatch(pattern, sample):
            return sample
    except (re.error, _Unsupported, RecursionError):
        pass
    return fallback


class _Unsupported(Exception):
    """A regex construct this generator does not produce."""


_CATEGORIES = {
    "CATEGORY_DIGIT": "0",
    "CATEGORY_NOT_DIGIT": "a",
    "CATEGORY_WORD": "a",
    "CATEGORY_NOT_WORD": " ",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": "a",
}


def _walk(parsed: Any, groups: Dict[int, str]) -> str:
    out: List[str] = []
    for op, arg in parsed:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "NOT_LITERAL":
            out.append("a" if chr(arg) != "a" else "b")
        elif name == "ANY":
            out.append("a")
        elif name == "IN":
            out.append(_class_char(arg))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, _high, sub = arg
            out.append(_walk(sub, groups) * low)
        elif name == "SUBPATTERN":
            number, sub = arg[0], arg[-1]
            text = _walk(sub, groups)
            if number is not None:
                groups[number] = text
            out.append(text)
        elif name == "BRANCH":
            out.append(_walk(arg[1][0], groups))
        elif name == "ATOMIC_GROUP":
            out.append(_walk(arg, groups))
        elif name == "GROUPREF" and arg in groups:
            out.append(groups[arg])
        elif name == "AT":
            continue  # anchors take no characters
        else:
            raise _Unsupported(name)
    return "".join(out)


def _class_char(items: List[Any]) -> str:
    negate = bool(items) and str(items[0][0]) == "NEGATE"
    if not negate:
        op, arg = items[0]
        if str(op) == "LITERAL":
            return chr(arg)
        if str(op) == "RANGE":
            return chr(arg[0])
        if str(op) == "CATEGORY":
            return _CATEGORIES.get(str(arg), "a")
        raise _Unsupported(str(op))
    pattern = "[" + "".join(_class_source(op, arg) for op, arg in items) + "]"
    return next((c for c in string.ascii_letters + string.digits + " " if re.fullmatch(pattern, c)), "a")


def _class_source(op: Any, arg: Any) -> str:
    name = str(op)
    if name == "NEGATE":
        return "^"
    if name == "LITERAL":
        return re.escape(chr(arg))
    if name == "RANGE":
        return re.escape(chr(arg[0])) + "-" + re.escape(chr(arg[1]))
    if name == "CATEGORY":
        return {"CATEGORY_DIGIT": r"\d", "CATEGORY_WORD": r"\w", "CATEGORY_SPACE": r"\s",
                "CATEGORY_NOT_DIGIT": r"\D", "CATEGORY_NOT_WORD": r"\W", "CATEGORY_NOT_SPACE": r"\S"}[str(arg)]
    raise _Unsupported(name)
