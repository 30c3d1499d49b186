"""``POST /ai/check``: a deterministic stand-in for GigaChat's AI-text detector.

Rule: the text is cut into sentences (ending in ``.``, ``!``, ``?`` or the end); a
sentence of :data:`AI_SENTENCE` characters or more counts as machine-written. The reply
has the shape of ``tests/data/fixtures/ai_check.json``: ``category`` (``human`` with
no such sentence, ``ai`` when they cover the whole text, else ``mixed``),
``characters``, ``tokens`` and ``ai_intervals``, character ``[start, end)`` offsets
of the machine-written runs (adjacent sentences merged).
"""

import re
from typing import Any, Dict, List

from .replies import count_tokens
from .wire import Reply, error_reply, json_reply

AI_SENTENCE = 100
_SENTENCE = re.compile(r"[^.!?]+[.!?]*\s*|[.!?]+\s*")


def intervals(text: str) -> List[List[int]]:
    """The ``[start, end)`` runs of machine-written sentences."""
    runs: List[List[int]] = []
    for match in _SENTENCE.finditer(text):
        if len(match.group(0).strip()) < AI_SENTENCE:
            continue
        start, end = match.start(), match.start() + len(match.group(0).rstrip())
        if runs and text[runs[-1][1]:start].strip() == "":
            runs[-1][1] = end
        else:
            runs.append([start, end])
    return runs


def ai_check(data: Dict[str, Any], piece_size: int) -> Reply:
    """Answer ``{"input": text, "model": name}``."""
    text = data.get("input")
    if not isinstance(text, str) or not text.strip():
        return error_reply(422, "input must be a non-empty string")
    if not isinstance(data.get("model", ""), str):
        return error_reply(422, "model must be a string")
    runs = intervals(text)
    covered = sum(end - start for start, end in runs)
    category = "human" if not runs else "ai" if covered >= len(text.strip()) else "mixed"
    return json_reply(
        {"category": category, "characters": len(text), "tokens": count_tokens(text, piece_size), "ai_intervals": runs}
    )
