"""The other endpoints' inputs checked before any request: texts, ids, names, files to upload.

A bad value is a ``TypeError`` or ``ValueError`` that names it.
"""

from __future__ import annotations

import os
from typing import IO, Any, List, Optional, Sequence, Tuple, Union
from urllib.parse import quote

__all__ = ["Texts", "FileArg", "check_texts", "quote_id", "check_name", "file_part"]

Texts = Union[str, Sequence[str]]
FileArg = Union[str, "os.PathLike[str]", IO[bytes]]


def check_texts(texts: Texts) -> List[str]:
    # A str is one text, as chat() takes a str as one message.
    if isinstance(texts, str):
        texts = [texts]
    elif not isinstance(texts, (list, tuple)):
        raise TypeError(f"texts must be a str or a list of str, got {type(texts).__name__}")
    if not texts:
        raise ValueError("texts is empty")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError(f"texts[{i}] is an empty str")
    return list(texts)


def quote_id(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must be a non-empty str")
    return quote(value, safe="")  # an id with "/" or "?" must stay one path segment


def check_name(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must be a non-empty str")
    return value


def file_part(source: FileArg, filename: Optional[str], mime_type: Optional[str]) -> Tuple[Tuple[str, Any, str], Optional[IO[bytes]]]:
    """The multipart ``file`` part and the file we opened (to close), if any."""
    import mimetypes  # only uploads need it

    opened: Optional[IO[bytes]] = None
    fileobj: IO[bytes]
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise ValueError(f"path_or_fileobj: no such file: {path}")
        opened = fileobj = open(path, "rb")
        name = filename or os.path.basename(path)
    elif hasattr(source, "read"):
        fileobj = source
        given = getattr(source, "name", None)
        name = filename or (os.path.basename(given) if isinstance(given, str) else "")
        if not name:
            raise ValueError("filename= is needed for a file object without a name (GigaChat types files by name)")
    else:
        raise TypeError(f"path_or_fileobj must be a path or a binary file object, got {type(source).__name__}")
    # GigaChat checks the part's type against what it accepts; requests would send none.
    kind = mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return (name, fileobj, kind), opened
