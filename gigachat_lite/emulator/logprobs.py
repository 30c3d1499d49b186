"""Deterministic log probabilities for v2 text, asked for with ``model_options.top_logprobs``.

Each emulated token (a ``piece_size`` piece of a text part) gets one entry,
``{"chosen": {"token", "token_id", "logprob"}, "top": [...]}``, the shape the official
SDK reads (``ChatLogprob``). ``top`` holds ``top_logprobs`` candidates, the chosen
token first, then ``<alt1>``, ``<alt2>``... each one nat less likely. The values mean
nothing; they are stable so a test can compare them.
"""

import zlib
from typing import Any, Dict, List

from .replies import split_pieces

CHOSEN_LOGPROB = -0.0625  # exact in binary, so the JSON text is stable too
MAX_TOP = 5  # gigachat-java documents top_logprobs 1..5


def token_id(token: str) -> int:
    """A stable id for a token."""
    return zlib.crc32(token.encode("utf-8")) % 100000


def entry(token: str, top: int) -> Dict[str, Any]:
    """The logprob entry of one token."""
    chosen = {"token": token, "token_id": token_id(token), "logprob": CHOSEN_LOGPROB}
    others = [
        {"token": "<alt%d>" % n, "token_id": token_id("<alt%d>" % n), "logprob": CHOSEN_LOGPROB - n}
        for n in range(1, top)
    ]
    return {"chosen": chosen, "top": [chosen] + others}


def for_text(text: str, top: int, piece_size: int) -> List[Dict[str, Any]]:
    """One entry per emulated token of ``text`` (none for an empty text)."""
    return [entry(piece, top) for piece in split_pieces(text, piece_size) if piece]
