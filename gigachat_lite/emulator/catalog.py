"""Read-only account and model endpoints: ``/models``, ``/balance``, ``/tokens/count``, ``/embeddings``."""

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from .replies import embeddings_body, model_entry, models_body, tokens_count_body
from .wire import Reply, dumps, error_reply, json_reply

ModelSpec = Union[str, Tuple[str, str]]
#: The models served by default: ``GET /models`` of the real service as recorded on
#: 21 Jan 2026 (``test_get_models.yaml``, same order), plus the GigaChat-3 family
#: (``GigaChat-3-Ultra`` answered the June 2026 v2 recordings; gigachat-java names Pro
#: and Lightning) where the real list's sort order puts them.
DEFAULT_MODELS: Tuple[ModelSpec, ...] = (
    "GigaChat",
    "GigaChat-2",
    "GigaChat-2-Max",
    "GigaChat-2-Max-preview",
    "GigaChat-2-Pro",
    "GigaChat-2-Pro-preview",
    "GigaChat-2-preview",
    "GigaChat-3-Lightning",
    "GigaChat-3-Pro",
    "GigaChat-3-Ultra",
    "GigaChat-Max",
    "GigaChat-Max-preview",
    "GigaChat-Plus",
    "GigaChat-Pro",
    "GigaChat-Pro-preview",
    "GigaChat-preview",
    ("GigaFilter", "filter"),
    ("GigaCheckClassification", "aicheck"),
    ("GigaCheckDetection", "aicheck"),
    ("Embeddings", "embedder"),
    ("Embeddings-2", "embedder"),
    ("EmbeddingsGigaR", "embedder"),
    ("GigaEmbeddings-3B-2025-09", "embedder"),
)
#: The balance served by default, as in ``tests/data/fixtures/balance.json``.
DEFAULT_BALANCE: Tuple[Tuple[str, int], ...] = (
    ("embeddings", 9999967),
    ("GigaChat-Pro", 991490),
    ("GigaChat-Max", 50000),
    ("GigaChat", 900000),
)


def models(model_list: List[Tuple[str, str]]) -> Reply:
    """``GET /models``."""
    return Reply(200, models_body(model_list))


def get_model(model_list: List[Tuple[str, str]], model_id: str) -> Reply:
    """``GET /models/{id}``."""
    for known, kind in model_list:
        if known == model_id:
            return Reply(200, dumps(model_entry(known, kind)))
    return error_reply(404, "No such model")


def balance(values: Dict[str, int], postpaid: bool) -> Reply:
    """``GET /balance``, as in ``tests/data/fixtures/balance.json``; 403 when post-paid."""
    if postpaid:
        return error_reply(403, "Permission denied")
    return json_reply({"balance": [{"usage": usage, "value": value} for usage, value in values.items()]})


def texts(
    model_list: List[Tuple[str, str]], sub: str, data: Dict[str, Any], piece_size: int
) -> Reply:
    """``POST /embeddings`` and ``POST /tokens/count``: ``input`` is a list of strings."""
    given: Optional[Sequence[Any]] = data.get("input")
    listed: Any = [given] if isinstance(given, str) else given
    if not isinstance(listed, list) or not all(isinstance(t, str) for t in listed):
        return error_reply(422, "input must be a list of strings")
    if sub == "/tokens/count":
        return Reply(200, tokens_count_body(listed, piece_size))
    model = data.get("model", "Embeddings")
    if (model, "embedder") not in model_list:
        return error_reply(404, "No such model")
    return Reply(200, embeddings_body(listed, model, piece_size))
