"""Structured output: ``response_format=`` in, the parsed object out.

``response_format`` may be:

* a JSON schema ``dict`` (``{"type": "object", ...}``), sent as
  ``{"type": "json_schema", "schema": ..., "strict": True}``;
* a ready wire object, ``{"type": "json_schema", "schema", "strict"}`` or
  ``{"type": "regex", "regex": "[A-Z]{3}-\\d{4}"}``, sent as is once checked;
* a compiled ``re.Pattern``: the regex format (its flags cannot travel);
* a class: a pydantic model (its own ``model_json_schema()``; pydantic is
  touched only because the caller passed one of its classes), a dataclass or
  a ``TypedDict`` (schema derived here from the type hints, no pydantic).

:func:`parse_output` turns the reply's text into a model instance, a
dataclass instance, a ``dict`` (schemas, TypedDicts) or a ``str`` (regex), or
raises :class:`StructuredOutputError` saying why it does not match.
"""

from __future__ import annotations

import json
import re
import typing
from typing import Any, Dict, List, Optional, Tuple

from .errors import StructuredOutputError

__all__ = ["OutputSpec", "output_spec", "parse_output", "parse_reply", "schema_of"]

_FORMAT_TYPES = ("json_schema", "regex", "text")
MAX_DEPTH = 100  # levels of nesting a structured reply may have: far beyond any real one, well within the stack
_SCALARS: Dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


class OutputSpec:
    """A checked ``response_format``: the wire object and how to read the reply."""

    __slots__ = ("wire", "target", "regex")

    def __init__(self, wire: Dict[str, Any], target: Optional[type] = None, regex: Optional[str] = None) -> None:
        self.wire = wire
        self.target = target
        self.regex = regex

    def __repr__(self) -> str:
        return f"OutputSpec({self.wire.get('type')!r}, target={self.target!r})"


def output_spec(value: Any, *, strict: bool = True) -> OutputSpec:
    """Check ``response_format`` and build its wire object.

    Raises:
        TypeError, ValueError: naming ``response_format``.
    """
    if isinstance(value, re.Pattern):
        return output_spec({"type": "regex", "regex": value.pattern})
    if isinstance(value, type):
        return OutputSpec({"type": "json_schema", "schema": schema_of(value), "strict": strict}, target=value)
    if not isinstance(value, dict):
        raise TypeError(
            "response_format must be a JSON schema dict, {'type': 'regex', 'regex': ...}, a re.Pattern, "
            f"or a pydantic model, dataclass or TypedDict class; got {type(value).__name__}"
        )
    kind = value.get("type")
    if kind == "regex":
        regex = value.get("regex")
        if not isinstance(regex, str) or not regex:
            raise ValueError("response_format: the regex format needs a non-empty 'regex' str")
        try:
            re.compile(regex)
        except re.error as exc:
            raise ValueError(f"response_format: bad regex {regex!r} ({exc})") from None
        return OutputSpec({"type": "regex", "regex": regex}, regex=regex)
    if kind == "json_schema":
        schema = value.get("schema")
        if isinstance(schema, type):
            return OutputSpec({**value, "schema": schema_of(schema)}, target=schema)
        if not isinstance(schema, dict):
            raise TypeError("response_format: 'json_schema' needs a 'schema' dict")
        return OutputSpec(dict(value))
    if kind == "text":
        return OutputSpec(dict(value))
    # Anything else is a JSON schema itself ({"type": "object", ...}).
    _check_json(value)
    return OutputSpec({"type": "json_schema", "schema": value, "strict": strict})


def schema_of(cls: type) -> Dict[str, Any]:
    """The JSON schema of a pydantic model, a dataclass or a TypedDict class."""
    pydantic_schema = getattr(cls, "model_json_schema", None)
    if callable(pydantic_schema):
        schema: Dict[str, Any] = pydantic_schema()
        return schema
    if _is_dataclass(cls) or _is_typeddict(cls):
        defs: Dict[str, Any] = {}
        schema = _object_schema(cls, [cls], defs)
        if defs:  # classes that refer back to themselves: described once, referred to by $ref
            schema["$defs"] = defs
        return schema
    raise TypeError(f"response_format: {cls.__name__} is not a pydantic model, a dataclass or a TypedDict")


def parse_output(text: str, spec: OutputSpec, finish_reason: Optional[str] = None) -> Any:
    """The reply ``text`` read as ``spec`` says.

    Raises:
        StructuredOutputError: the reply was cut (``finish_reason`` length), is
            not JSON, misses a required key, has a wrong type, or does not
            match the regex.
    """
    if finish_reason == "length":
        raise StructuredOutputError("the reply was cut at max_tokens (finish_reason 'length')", text=text)
    if spec.regex is not None:
        for candidate in (text, text.strip()):  # as it came, else without the blank lines a model adds
            if re.fullmatch(spec.regex, candidate) is not None:
                return candidate
        raise StructuredOutputError(f"the reply does not match the regex {spec.regex!r}: {text[:80]!r}", text=text)
    if spec.wire.get("type") == "text":
        return text
    try:
        data = json.loads(text, parse_constant=_not_json)
    except ValueError:
        raise StructuredOutputError(f"the reply is not JSON: {text[:80]!r}", text=text) from None
    except RecursionError:
        raise StructuredOutputError(f"the reply is nested too deeply to read (over {MAX_DEPTH} levels)", text=text) from None
    schema = spec.wire.get("schema")
    if isinstance(schema, dict):
        problem = _mismatch(data, schema, "reply", schema, 0)
        if problem:
            raise StructuredOutputError(f"the reply does not match the schema: {problem}", text=text)
    target = spec.target
    if target is None or _is_typeddict(target):
        return data
    validate = getattr(target, "model_validate", None)
    if callable(validate):  # pydantic: its own validation, its errors wrapped in ours
        try:
            return validate(data)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise StructuredOutputError(f"the reply does not fit {target.__name__}: {exc}", text=text) from exc
    return _build(target, data, text)


def parse_reply(reply: Any, response_format: Any) -> Any:
    """``reply``'s text (a whole reply or a stream, read to its end) read as ``response_format`` asks.

    Raises:
        StructuredOutputError: carrying the reply as ``.reply``.
    """
    spec = output_spec(response_format)
    text = "".join(reply)  # a stream is read to its end; a whole reply yields its text once
    try:
        return parse_output(text, spec, reply.finish_reason)
    except StructuredOutputError as exc:
        exc.reply = reply
        raise


# -- schemas from type hints ------------------------------------------------------------


def _is_dataclass(cls: Any) -> bool:
    # dataclasses.is_dataclass would import dataclasses (and inspect): this attribute is what it checks.
    return isinstance(cls, type) and hasattr(cls, "__dataclass_fields__")


def _is_typeddict(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, dict) and hasattr(cls, "__required_keys__")


def _hints(cls: type) -> Dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError) as exc:  # a class defined in a function, under postponed annotations
        raise TypeError(f"response_format: cannot read the field types of {cls.__name__} ({exc}); "
                        "define the classes it uses at module level") from None


def _object_schema(cls: type, stack: List[type], defs: Dict[str, Any]) -> Dict[str, Any]:
    """``cls``'s schema; ``stack``: the classes being described around it (a recursive one becomes a ``$ref``)."""
    hints = _hints(cls)
    if _is_dataclass(cls):
        fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
        names = [name for name in fields if repr(fields[name]._field_type) == "_FIELD"]  # not ClassVar/InitVar
        required = [n for n in names if _no_default(fields[n])]
    else:
        names = list(hints)
        required = [n for n in names if n in cls.__required_keys__]  # type: ignore[attr-defined]
    schema: Dict[str, Any] = {
        "type": "object",
        "title": cls.__name__,
        "properties": {name: _type_schema(hints.get(name, Any), stack, defs) for name in names},
        "required": required,
        "additionalProperties": False,
    }
    return schema


def _no_default(field: Any) -> bool:
    missing = type(field.default).__name__ == "_MISSING_TYPE"
    return missing and type(field.default_factory).__name__ == "_MISSING_TYPE"


def _type_schema(hint: Any, stack: List[type], defs: Dict[str, Any]) -> Dict[str, Any]:
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if hint is Any:
        return {}
    if _is_dataclass(hint) or _is_typeddict(hint):
        if hint is stack[0]:
            return {"$ref": "#"}
        if hint in stack:  # described further out: once, in $defs
            if hint.__name__ not in defs:
                defs[hint.__name__] = {}  # taken before it is filled, so its own fields refer to it too
                defs[hint.__name__] = _object_schema(hint, stack, defs)
            return {"$ref": f"#/$defs/{hint.__name__}"}
        return _object_schema(hint, stack + [hint], defs)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):  # Tuple[int, str]: one type a place
        places = [_type_schema(arg, stack, defs) for arg in args]
        return {"type": "array", "prefixItems": places, "items": False, "minItems": len(args), "maxItems": len(args)}
    if origin in (list, tuple, set, frozenset):
        return {"type": "array", "items": _type_schema(args[0], stack, defs) if args else {}}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1], stack, defs) if len(args) == 2 else {}}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        return {"anyOf": [_type_schema(arg, stack, defs) for arg in args]}
    raise TypeError(f"response_format: cannot describe the type {hint!r} as JSON schema")


# -- checking and building ----------------------------------------------------------------


_JSON_TYPES: Dict[str, Tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "null": (type(None),), "object": (dict,), "array": (list,),
}


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # json.loads would take NaN and Infinity into float fields


def _mismatch(value: Any, schema: Any, where: str, root: Dict[str, Any], depth: int) -> Optional[str]:
    """The first way ``value`` breaks ``schema`` (types, required keys, enum), or None."""
    if not isinstance(schema, dict):
        return None
    if depth > MAX_DEPTH:
        return f"the reply is nested deeper than {MAX_DEPTH} levels"
    ref = schema.get("$ref")
    if isinstance(ref, str) and (ref == "#" or ref.startswith("#/")):
        target: Any = root
        for key in ref[2:].split("/") if ref != "#" else ():
            target = target.get(key, {}) if isinstance(target, dict) else {}
        return _mismatch(value, target, where, root, depth + 1)
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list) and options:
        if all(_mismatch(value, option, where, root, depth + 1) for option in options):
            return f"{where} matches none of the allowed shapes"
    if "enum" in schema and isinstance(schema["enum"], list) and not any(_same(value, e) for e in schema["enum"]):
        return f"{where} is {value!r}, not one of {schema['enum']!r}"
    kinds = schema.get("type")
    for kind in kinds if isinstance(kinds, list) else [kinds] if isinstance(kinds, str) else []:
        allowed = _JSON_TYPES.get(kind, (object,))
        if isinstance(value, allowed) and not (isinstance(value, bool) and kind in ("integer", "number")):
            break
    else:
        if kinds is not None:
            return f"{where} should be {kinds}, got {type(value).__name__}"
    if isinstance(value, dict):
        for key in schema.get("required") or []:
            if key not in value:
                return f"{where} has no {key!r}"
        properties = schema.get("properties") or {}
        for key, sub in properties.items():
            if key in value:
                problem = _mismatch(value[key], sub, f"{where}.{key}", root, depth + 1)
                if problem:
                    return problem
        extra = schema.get("additionalProperties")
        for key in value:
            if key in properties or extra is None or extra is True:
                continue
            if extra is False:
                return f"{where} has a key the schema does not allow: {key!r}"
            problem = _mismatch(value[key], extra, f"{where}[{key!r}]", root, depth + 1)
            if problem:
                return problem
    if isinstance(value, list):
        places = schema.get("prefixItems")
        places = places if isinstance(places, list) else []
        for i, (item, sub) in enumerate(zip(value, places)):
            problem = _mismatch(item, sub, f"{where}[{i}]", root, depth + 1)
            if problem:
                return problem
        rest = schema.get("items")
        if rest is False and len(value) > len(places):
            return f"{where} has {len(value)} items, the schema {len(places)}"
        if isinstance(rest, dict):
            for i, item in enumerate(value[len(places):], len(places)):
                problem = _mismatch(item, rest, f"{where}[{i}]", root, depth + 1)
                if problem:
                    return problem
        if isinstance(schema.get("minItems"), int) and len(value) < schema["minItems"]:
            return f"{where} has {len(value)} items, fewer than {schema['minItems']}"
    return None


def _same(value: Any, option: Any) -> bool:
    """JSON equality: ``true`` is not ``1`` (Python's ``True == 1``)."""
    return value == option and isinstance(value, bool) == isinstance(option, bool)


def _build(cls: type, data: Any, text: str) -> Any:
    """A dataclass instance (nested dataclasses built too) from checked JSON data."""
    if not isinstance(data, dict):
        raise StructuredOutputError(f"the reply is not a JSON object for {cls.__name__}", text=text)
    hints = _hints(cls)
    values: Dict[str, Any] = {}
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    for name in fields:
        if name in data and repr(fields[name]._field_type) == "_FIELD":
            values[name] = _value(hints.get(name, Any), data[name], text)
    try:
        return cls(**values)
    except TypeError as exc:
        raise StructuredOutputError(f"the reply does not fit {cls.__name__}: {exc}", text=text) from None


def _value(hint: Any, value: Any, text: str) -> Any:
    """``value`` (checked against ``hint``'s schema already) with its dataclasses built, however deep."""
    if _is_dataclass(hint):
        return _build(hint, value, text)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        # The first member the value fits, as the schema's anyOf took it (not merely the first dataclass).
        for arg in args:
            if _fits(arg, value):
                return _value(arg, value, text)
        return value
    if origin in (list, set, frozenset) and args and isinstance(value, list):
        return [_value(args[0], item, text) for item in value]
    if origin is tuple and args and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], item, text) for item in value)
        return tuple(_value(arg, item, text) for arg, item in zip(args, value))
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return {key: _value(args[1], item, text) for key, item in value.items()}
    return value


class _Top:
    """Stands at the bottom of the stack when a member of a union is described alone."""


def _fits(hint: Any, value: Any) -> bool:
    defs: Dict[str, Any] = {}
    schema = _type_schema(hint, [_Top], defs)
    root = {**schema, "$defs": defs} if defs else schema
    return _mismatch(value, schema, "value", root, 0) is None


def _check_json(value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"response_format cannot be sent as JSON ({exc})") from None

