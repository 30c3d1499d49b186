"""``POST /functions/convert``: OpenAPI operations -> GigaChat function specifications.

The body is the OpenAPI description as JSON text (the SDK sends it raw; YAML is not
emulated, it is refused with 422). Each operation becomes one function, shaped like
``tests/data/fixtures/convert_functions.json``: ``name`` (the ``operationId``, else
``method_path``), ``description`` (``description`` or ``summary``), ``parameters``
(an object schema of the path/query parameters and the JSON request body's
properties, with their ``required``), ``return_parameters`` (the JSON schema of the
first 2xx or default response) and ``few_shot_examples`` from ``x-few-shot-examples``.
Every ``$ref`` inside the document is inlined.
"""

import json
import re
from typing import Any, Dict, List, Optional

from .wire import Reply, error_reply, json_reply

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_MAX_DEPTH = 32  # a recursive schema is cut off instead of looping


def inline(node: Any, root: Dict[str, Any], depth: int = 0) -> Any:
    """``node`` with every ``$ref`` into ``root`` replaced by what it points at."""
    if depth > _MAX_DEPTH:
        return {}
    if isinstance(node, list):
        return [inline(item, root, depth + 1) for item in node]
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("$ref"), str):
        target: Any = root
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return inline(target if target is not None else {}, root, depth + 1)
    return {key: inline(value, root, depth + 1) for key, value in node.items()}


def _json_schema(holder: Any) -> Optional[Dict[str, Any]]:
    content = holder.get("content") if isinstance(holder, dict) else None
    media = content.get("application/json") if isinstance(content, dict) else None
    schema = media.get("schema") if isinstance(media, dict) else None
    return schema if isinstance(schema, dict) else None


def _function(path: str, method: str, operation: Dict[str, Any], shared: List[Any]) -> Dict[str, Any]:
    properties: Dict[str, Any] = {}
    required: List[str] = []
    for parameter in shared + list(operation.get("parameters") or []):
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            continue
        schema = dict(parameter.get("schema") or {})
        if parameter.get("description"):
            schema = dict({"description": parameter["description"]}, **schema)
        properties[parameter["name"]] = schema
        if parameter.get("required"):
            required.append(parameter["name"])
    body = _json_schema(operation.get("requestBody")) or {}
    properties.update(body.get("properties") or {})
    required += [name for name in body.get("required") or [] if name not in required]
    name = operation.get("operationId") or re.sub(r"\W+", "_", "%s_%s" % (method, path)).strip("_")
    function: Dict[str, Any] = {
        "name": name,
        "description": operation.get("description") or operation.get("summary") or "",
        "parameters": {"type": "object", "properties": properties, "required": required},
    }
    responses = operation.get("responses") or {}
    codes = sorted(code for code in responses if str(code).startswith("2")) + ["default"]
    returns = next((s for s in (_json_schema(responses.get(c)) for c in codes) if s), None)
    if returns is not None:
        function["return_parameters"] = returns
    if isinstance(operation.get("x-few-shot-examples"), list):
        function["few_shot_examples"] = operation["x-few-shot-examples"]
    return function


def convert(body: bytes) -> Reply:
    """Answer the OpenAPI description in ``body``."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return error_reply(422, "the OpenAPI description must be JSON (YAML is not emulated)")
    if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        return error_reply(422, "the OpenAPI description needs a paths object")
    document = inline(document, document)
    functions = []
    for path, item in document["paths"].items():
        if not isinstance(item, dict):
            continue
        shared = list(item.get("parameters") or [])
        for method in METHODS:
            if isinstance(item.get(method), dict):
                functions.append(_function(path, method, item[method], shared))
    if not functions:
        return error_reply(422, "the OpenAPI description has no operations")
    return json_reply({"functions": functions})
