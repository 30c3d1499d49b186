"""Images, audio and documents in chat messages: found, checked, uploaded once, sent as file ids.

GigaChat reads a file only by the id ``POST /files`` gave it. A message may
instead carry the file itself, on either contract::

    {"role": "user", "content": "What is this?", "attachments": ["cat.png"]}
    {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                 {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}]}
    {"role": "user", "content": ["What is this?", {"image": pathlib.Path("cat.png")}]}

An *attachment* is a file id (a ``str`` that names no file and does not look
like a path), a path (``str`` or ``os.PathLike``), ``bytes``, a ``data:`` URI,
a ``(data, filename)`` pair (gpt4free's ``media=`` items) or a binary file
object. It goes in a message's ``attachments`` list, or in a content part:
OpenAI's ``image_url``, ``input_audio`` and ``file`` parts, or the short
``{"image": ...}``, ``{"audio": ...}``, ``{"file": ...}``. A remote
``http(s)://`` URL is refused: GigaChat cannot fetch it and this library does
not download on anyone's behalf.

Two steps, split as a chat call is:

1. :func:`find_attachments`, while the call is checked (on the event loop for
   ``aio``): each attachment is recognised, typed (from the ``data:`` URI's
   type, the file name, else the first bytes) and sized (``os.stat``, never a
   read), GigaChat's limits are checked (:data:`SIZE_LIMITS`,
   :data:`MAX_FILES`, one image a message, :data:`MAX_MEDIA_BYTES`), and the
   messages get a placeholder id for each file to upload: ``attachments`` on
   v1, a ``{"files": [{"id"}]}`` part on v2.
2. :meth:`Uploads.send`, when the call is sent (in the stream's thread for
   ``aio``): each file is read, hashed (SHA-256) and uploaded with
   ``purpose="general"`` and GigaChat's MIME type, unless the same bytes are
   already known (:data:`UPLOADS` in the process, and the fleet's store when
   ``coordination`` is set: one upload per distinct file for every worker);
   the placeholders become the ids and the request goes. A reused id the
   server no longer knows (the file was deleted) is forgotten, the file
   uploaded again and the request sent again, once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import mimetypes
import os
import re
import threading
import time
from collections import OrderedDict
from typing import (
    TYPE_CHECKING, Any, Callable, Dict, Hashable, List, Mapping, NamedTuple, NoReturn, Optional, Protocol, Sequence,
    Tuple, TypeVar, Union,
)
from urllib.parse import unquote_to_bytes, urlsplit

from .errors import APIError, InvalidResponseError
from .results import json_object, json_reply

if TYPE_CHECKING:
    from .session import Session

__all__ = [
    "Format", "FORMATS", "SIZE_LIMITS", "MAX_FILES", "MAX_IMAGES_PER_MESSAGE", "MAX_MEDIA_BYTES", "FILE_ID_TTL",
    "Attachment", "Media", "Uploads", "FileIds", "UPLOADS", "SharedFiles", "find_attachments", "with_media",
]

log = logging.getLogger("gigachat_lite")

R = TypeVar("R")
MiB = 1024 * 1024


class Format(NamedTuple):
    """A file format GigaChat takes: its kind, the MIME type it is uploaded with, its extensions, other names of its type."""

    kind: str  # "image", "audio" or "document": the size limit that applies
    mime: str
    extensions: Tuple[str, ...]
    aliases: Tuple[str, ...] = ()


# The formats of developers.sber.ru's POST /files page (15 Oct 2025), with the MIME types it lists
# (some are not IANA's, e.g. application/pptx): the upload is typed as GigaChat expects.
FORMATS: Tuple[Format, ...] = (
    Format("image", "image/jpeg", ("jpg", "jpeg"), ("image/jpg", "image/pjpeg")),
    Format("image", "image/png", ("png",)),
    Format("image", "image/tiff", ("tiff", "tif")),
    Format("image", "image/bmp", ("bmp",), ("image/x-ms-bmp", "image/x-bmp")),
    Format("audio", "audio/mp4", ("mp4",), ("video/mp4",)),
    Format("audio", "audio/mp3", ("mp3",), ("audio/mpeg", "audio/mpeg3", "audio/x-mpeg-3")),
    Format("audio", "audio/x-m4a", ("m4a",), ("audio/m4a",)),
    Format("audio", "audio/x-wav", ("wav",), ("audio/wav", "audio/wave", "audio/x-pn-wav", "audio/vnd.wave")),
    Format("audio", "audio/webm", ("weba",)),
    Format("audio", "audio/x-ogg", ("ogg",), ("audio/ogg", "application/ogg")),
    Format("audio", "audio/opus", ("opus",)),
    Format("document", "text/plain", ("txt",)),
    Format("document", "application/msword", ("doc",)),
    Format("document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ("docx",)),
    Format("document", "application/pdf", ("pdf",)),
    Format("document", "application/epub", ("epub",), ("application/epub+zip",)),
    Format("document", "application/ppt", ("ppt",), ("application/vnd.ms-powerpoint",)),
    Format("document", "application/pptx", ("pptx",),
           ("application/vnd.openxmlformats-officedocument.presentationml.presentation",)),
)
_BY_EXTENSION = {extension: f for f in FORMATS for extension in f.extensions}
_BY_MIME = {mime: f for f in FORMATS for mime in (f.mime, *f.aliases)}
_KINDS = {"image": "images", "audio": "audio files", "document": "documents"}
_ACCEPTED = "; ".join(f"{_KINDS[kind]}: " + ", ".join(f.extensions[0] for f in FORMATS if f.kind == kind)
                      for kind in _KINDS)

#: Bytes GigaChat takes in one file of each kind (API_FACTS 5.1).
SIZE_LIMITS = {"image": 15 * MiB, "audio": 35 * MiB, "document": 40 * MiB}
#: Files one request may reference.
MAX_FILES = 10
#: Images one message may carry.
MAX_IMAGES_PER_MESSAGE = 1
#: Bytes of images and audio one request may carry in all.
MAX_MEDIA_BYTES = 80 * MiB
#: Seconds an uploaded file's id is reused for the same bytes (GigaChat keeps a file until it is deleted;
#: a deleted one is uploaded again when the server says so).
FILE_ID_TTL = 24 * 3600.0

# First bytes -> extension, for bytes and data: URIs that do not say what they are.
_MAGIC: Tuple[Tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "png"), (0, b"\xff\xd8\xff", "jpg"), (0, b"II*\x00", "tiff"), (0, b"MM\x00*", "tiff"),
    (0, b"%PDF-", "pdf"), (0, b"ID3", "mp3"), (0, b"\xff\xfb", "mp3"), (0, b"\xff\xf3", "mp3"), (0, b"\xff\xf2", "mp3"),
    (8, b"WAVE", "wav"), (0, b"OggS", "ogg"), (0, b"\x1aE\xdf\xa3", "weba"), (4, b"ftypM4A", "m4a"),
)
# ISO media brands (bytes 8-12, after "ftyp") of still images: HEIC/HEIF (phones' default photo format) and AVIF.
_IMAGE_BRANDS = {b"heic": "image/heic", b"heix": "image/heic", b"heim": "image/heic", b"heis": "image/heic",
                 b"hevc": "image/heic", b"hevx": "image/heic", b"mif1": "image/heif", b"msf1": "image/heif",
                 b"avif": "image/avif", b"avis": "image/avif"}
# A BMP's 14-byte file header ("BM", size, two reserved words that are 0, offset), then its info header's size:
# "BM" alone is also how a text may begin ("BMI ...").
_BMP_INFO_SIZES = {12, 40, 52, 56, 64, 108, 124}
# Recognised, but not taken by GigaChat: named in the error.
_OTHER_MAGIC: Tuple[Tuple[int, bytes, str], ...] = (
    (0, b"GIF8", "image/gif"), (8, b"WEBP", "image/webp"), (0, b"PK\x03\x04", "a zip archive (docx, pptx or epub?)"),
    (0, b"\xd0\xcf\x11\xe0", "an OLE file (doc or ppt?)"),
)
_PLACEHOLDER = "pending-upload:"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")  # two letters at least: C://x is a Windows path
_HOST = re.compile(r"[a-z0-9.-]+")
_ITEM_TYPES = "a file id, a path, bytes, a data: URI, a (data, filename) pair or a binary file object"
# Headers of the call an upload does not carry: its own request id, and the JSON call's types.
_NOT_FOR_UPLOADS = ("x-request-id", "content-type", "accept", "accept-encoding")


def _mb(size: int) -> str:
    return f"{size / MiB:.1f} MB"


def _check_size(where: str, label: str, fmt: Format, size: Optional[int]) -> None:
    """Raise the ``ValueError`` naming the attachment if ``size`` is over GigaChat's limit for ``fmt`` (or 0)."""
    if size is None:
        return
    if size == 0:
        raise ValueError(f"{where}: {label} is empty")
    limit = SIZE_LIMITS[fmt.kind]
    if size > limit:
        shown = _mb(size) if round(size / MiB, 1) > limit / MiB else f"{_mb(size)} ({size:,} bytes)"
        raise ValueError(f"{where}: {label} is {shown}; GigaChat takes {_KINDS[fmt.kind]} up to {limit // MiB} MB")


# -- one attachment ------------------------------------------------------------------------------


class Media(NamedTuple):
    """A gpt4free ``media=`` item attached to a message: its data, its file name, and where the caller gave it."""

    data: Any
    filename: Optional[str]
    where: str


class Attachment:
    """One file to upload: where the caller put it, how to read it, its format and size (known before any read).

    ``source`` is ``"path"``, ``"bytes"`` (also base64 text, decoded when the
    call is checked), ``"percent"`` (a data: URI without base64) or
    ``"fileobj"`` (put back where it was after each read, so the same object
    in a conversation's next turn reads the same).
    """

    __slots__ = ("where", "label", "source", "value", "format", "size", "filename", "_start", "_kept")

    def __init__(self, where: str, label: str, source: str, value: Any, fmt: Format, size: Optional[int],
                 filename: Optional[str]) -> None:
        self.where, self.label, self.source, self.value = where, label, source, value
        self.format, self.size, self.filename = fmt, size, filename
        self._start: Optional[int] = None
        self._kept: Optional[bytes] = None
        if source == "fileobj":
            try:
                self._start = value.tell()
            except (AttributeError, OSError, ValueError):
                self._start = None  # not seekable: read once and kept for a second upload
        self.check_size(size)

    @property
    def limit(self) -> int:
        return SIZE_LIMITS[self.format.kind]

    def check_size(self, size: Optional[int]) -> None:
        """Raise the ``ValueError`` that names this attachment if ``size`` is over GigaChat's limit (or 0)."""
        _check_size(self.where, self.label, self.format, size)

    def read(self) -> bytes:
        """The bytes (blocking I/O for a path or a file object), checked against the limit again.

        Raises:
            ValueError: naming the attachment: unreadable, undecodable, empty or too large.
        """
        try:
            data = self._read()
        except (OSError, ValueError) as exc:  # ValueError: a file object closed since the call was checked
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ValueError(f"{self.where}: cannot read {self.label}: {reason}") from exc
        self.check_size(len(data))
        return data

    def _read(self) -> bytes:
        # Never more than the limit and one byte: a file that grew since it was checked is refused, not read whole.
        if self.source == "path":
            with open(self.value, "rb") as handle:
                # Bounded by the size it has, too: read(n) would allocate the whole limit first.
                return handle.read(min(os.fstat(handle.fileno()).st_size, self.limit) + 1)
        if self.source == "bytes":
            return bytes(self.value)
        if self.source == "percent":
            return unquote_to_bytes(self.value)
        if self._kept is not None:
            return self._kept
        if self._start is not None:
            self.value.seek(self._start)
        try:
            data = self.value.read(self.limit + 1)
        finally:
            if self._start is not None:
                self.value.seek(self._start)  # the caller's object as it was: sent again, it reads the same
        if not isinstance(data, bytes):
            raise TypeError(f"{self.where}: {self.label} gave {type(data).__name__}, not bytes: open it in binary mode ('rb')")
        if self._start is None:
            self._kept = data
        return data

    def identity(self) -> Optional[Tuple[int, int, int, int]]:
        """A path's device, inode, size and modification time (ns) now, its size checked; ``None`` for other sources."""
        if self.source != "path":
            return None
        try:
            info = os.stat(self.value)
        except OSError as exc:
            raise ValueError(f"{self.where}: cannot read {self.label}: {exc.strerror or exc}") from exc
        self.check_size(info.st_size)
        return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns

    def upload_name(self, digest: str) -> str:
        """The file name sent with the upload: the caller's, else one made from the content's hash."""
        if self.filename:
            return os.path.basename(self.filename)
        return f"{digest[:16]}.{self.format.extensions[0]}"


# A path's SHA-256 by what its stat says: a file attached again unchanged (with every turn of a conversation,
# say) is neither read nor hashed again while its id is known.
_DIGESTS: "OrderedDict[Tuple[int, int, int, int], str]" = OrderedDict()
_DIGESTS_LOCK = threading.Lock()
_DIGESTS_MAX = 256


def _known_digest(identity: Optional[Tuple[int, int, int, int]]) -> Optional[str]:
    if identity is None:
        return None
    with _DIGESTS_LOCK:
        return _DIGESTS.get(identity)


def _remember_digest(identity: Tuple[int, int, int, int], digest: str) -> None:
    with _DIGESTS_LOCK:
        _DIGESTS[identity] = digest
        _DIGESTS.move_to_end(identity)
        while len(_DIGESTS) > _DIGESTS_MAX:
            _DIGESTS.popitem(last=False)


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        text = "".join(text.split())  # line-wrapped base64 is still base64, and so is base64 without its padding
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _base64(text: str, where: str, label: str, fmt: Format, filename: Optional[str]) -> Attachment:
    """Base64 text as the bytes it stands for, decoded now: bad base64 is refused before any request."""
    _check_size(where, label, fmt, _b64size(text))  # a payload far over the limit is refused before it is copied
    try:
        data = _b64decode(text)
    except ValueError:  # binascii.Error, or letters that are not ASCII
        raise ValueError(f"{where}: {label} is not valid base64") from None
    return Attachment(where, label, "bytes", data, fmt, len(data), filename)


def _b64size(text: str) -> int:
    length = len(text) - text.count("\n") - text.count("\r") - text.count(" ")
    return max(length * 3 // 4 - (2 if text.endswith("==") else 1 if text.endswith("=") else 0), 0)


def _sniff(head: bytes) -> Tuple[Optional[Format], Optional[str]]:
    """``(format, None)`` for a format GigaChat takes, ``(None, what it is)`` for one it does not."""
    for offset, magic, extension in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return _BY_EXTENSION[extension], None
    if head[4:8] == b"ftyp":
        image = _IMAGE_BRANDS.get(head[8:12])
        return (None, image) if image else (_BY_EXTENSION["mp4"], None)
    if head[:2] == b"BM" and head[6:10] == b"\0\0\0\0" and int.from_bytes(head[14:18], "little") in _BMP_INFO_SIZES:
        return _BY_EXTENSION["bmp"], None
    for offset, magic, what in _OTHER_MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return None, what
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # a cut multi-byte letter at the end is still text
            return None, None
    return (_BY_EXTENSION["txt"], None) if b"\x00" not in head else (None, None)


def _extension(name: str) -> str:
    return os.path.splitext(name)[1].lower().lstrip(".")


def _format(where: str, label: str, *, mime: Optional[str] = None, filename: Optional[str] = None,
            head: Optional[bytes] = None, hint: Optional[str] = None) -> Format:
    """The format of an attachment from (in order) its declared type, its file name, its first bytes.

    Raises:
        ValueError: GigaChat does not take it, or nothing tells what it is.
    """
    found: Optional[Format] = None
    what: Optional[str] = None
    if mime:
        found = _BY_MIME.get(mime.lower())
        what = None if found else mime
    if found is None and filename:
        extension = _extension(filename)
        found = _BY_EXTENSION.get(extension)
        if found is None and not what:
            what = mimetypes.guess_type(filename)[0] or (extension and f".{extension}")
    if found is None and head is not None and not what:
        found, what = _sniff(head)
    if found is None:
        if what:
            raise ValueError(f"{where}: {label} is {what}, which GigaChat does not take ({_ACCEPTED})")
        raise ValueError(f"{where}: cannot tell what {label} is: give it a file name ((data, 'name.png')) "
                         f"or a data: URI with its type ({_ACCEPTED})")
    if hint is not None and found.kind != hint:
        raise ValueError(f"{where}: an {hint} part holds {label} ({found.mime}), which is not an {hint}")
    return found


def _looks_like_path(text: str) -> bool:
    return (os.sep in text or "/" in text or (os.altsep is not None and os.altsep in text) or text.startswith("~")
            or _extension(text) in _BY_EXTENSION or mimetypes.guess_type(text)[0] is not None)


def _item(value: Any, where: str, hint: Optional[str] = None) -> Union[str, Attachment]:
    """A file id (``str``) as given, or the :class:`Attachment` ``value`` is (no read: a stat at most).

    Raises:
        TypeError, ValueError: naming ``where``.
    """
    if isinstance(value, Media):
        return _pair(value.data, value.filename, value.where, hint)
    if isinstance(value, tuple):
        if len(value) != 2 or not (value[1] is None or isinstance(value[1], str)):
            raise TypeError(f"{where}: a pair must be (data, filename), got a tuple of {len(value)}")
        return _pair(value[0], value[1], where, hint)
    if isinstance(value, str):
        if value.startswith("data:"):
            return _data_uri(value, where, None, hint)
        if _is_url(value):
            _refuse_url(value, where)
        path = os.path.expanduser(value)
        if os.path.isfile(path) or _looks_like_path(value):
            return _path(path, value, where, None, hint)
        if not value.strip():
            raise ValueError(f"{where}: an empty file id")
        return value  # a file id GigaChat gave
    return _pair(value, None, where, hint)


def _is_url(text: str) -> bool:
    """``scheme://...`` (http, https, ftp, file...): not a path, never fetched."""
    return _URL.match(text) is not None


def _refuse_url(url: str, where: str) -> NoReturn:
    # The host alone: never the credentials, the query or the fragment (a token may be there). An "@" past
    # the host means a password held an unescaped "/", "?" or "#" and cut the URL short: then no host either.
    scheme = url.split(":", 1)[0].lower()
    try:
        parts = urlsplit(url)
        host = None if "@" in parts.path + parts.query + parts.fragment else parts.hostname
    except ValueError:
        host = None
    shown = f"{scheme}://{host}/..." if host and _HOST.fullmatch(host) else f"{scheme}://..."
    raise ValueError(f"{where}: GigaChat cannot fetch a URL ({shown}); download the file and pass its path or bytes")


def _pair(data: Any, filename: Optional[str], where: str, hint: Optional[str]) -> Attachment:
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
        label = filename or "the data"
        fmt = _format(where, label, filename=filename, head=data[:32], hint=hint)
        return Attachment(where, label if filename else f"the {fmt.mime} data", "bytes", data, fmt, len(data), filename)
    if isinstance(data, str) and data.startswith("data:"):
        return _data_uri(data, where, filename, hint)
    if isinstance(data, str) and _is_url(data):
        _refuse_url(data, where)
    if isinstance(data, (str, os.PathLike)):
        path = os.path.expanduser(os.fspath(data))
        if not isinstance(path, str):
            raise TypeError(f"{where}: a path must be text, got {type(path).__name__}")
        return _path(path, os.fspath(data) if isinstance(data, str) else path, where, filename, hint)
    if hasattr(data, "read"):
        return _fileobj(data, where, filename, hint)
    raise TypeError(f"{where}: an attachment is {_ITEM_TYPES}, got {type(data).__name__}")


def _path(path: str, given: str, where: str, filename: Optional[str], hint: Optional[str]) -> Attachment:
    try:
        info = os.stat(path)
    except OSError:
        raise ValueError(f"{where}: no such file: {given}") from None
    except ValueError as exc:  # a NUL byte in it
        raise ValueError(f"{where}: {given!r} is not a usable path ({exc})") from None
    if not os.path.isfile(path):
        raise ValueError(f"{where}: {given} is not a file")
    label = filename or given
    fmt = _format(where, label, filename=filename or path, hint=hint)
    return Attachment(where, label, "path", path, fmt, info.st_size, filename or path)


def _fileobj(handle: Any, where: str, filename: Optional[str], hint: Optional[str]) -> Attachment:
    name = filename or getattr(handle, "name", None)
    name = name if isinstance(name, str) and name else None
    label = name or "the file object"
    if isinstance(handle, io.TextIOBase):
        raise TypeError(f"{where}: {label} is opened in text mode: open it with 'rb'")
    if getattr(handle, "closed", False) is True:
        raise ValueError(f"{where}: {label} is closed")
    if name is None:
        raise ValueError(f"{where}: a file object without a name: pass (fileobj, 'name.png') so its type is known")
    fmt = _format(where, label, filename=name, hint=hint)
    size: Optional[int] = None
    try:
        if isinstance(handle, io.BytesIO):
            size = handle.getbuffer().nbytes - handle.tell()
        else:
            size = os.fstat(handle.fileno()).st_size - handle.tell()
    except (AttributeError, OSError, ValueError):
        size = None  # unknown until read: checked then
    if size == 0 and handle.tell() > 0:
        raise ValueError(f"{where}: {label} has been read to its end: seek it back to its start or pass its bytes")
    return Attachment(where, label, "fileobj", handle, fmt, size, name)


def _data_uri(uri: str, where: str, filename: Optional[str], hint: Optional[str]) -> Attachment:
    header, comma, payload = uri[5:].partition(",")
    if not comma:
        raise ValueError(f"{where}: a data: URI needs a ',' before its data")
    params = header.split(";")
    mime = params[0].strip() or None
    is_base64 = any(p.strip().lower() == "base64" for p in params[1:])
    label = filename or f"the {mime or 'untyped'} data: URI"
    if is_base64:
        try:
            head = _b64decode("".join(payload[:64].split())[:44])  # 44 letters: 33 bytes, enough to recognise a format
        except (binascii.Error, ValueError):
            raise ValueError(f"{where}: {label} is not valid base64") from None
        fmt = _format(where, label, mime=mime if mime != "application/octet-stream" else None, filename=filename,
                      head=head, hint=hint)
        return _base64(payload, where, label, fmt, filename)
    data = unquote_to_bytes(payload)
    fmt = _format(where, label, mime=mime if mime != "application/octet-stream" else None, filename=filename,
                  head=data[:32], hint=hint)
    return Attachment(where, label, "percent", payload, fmt, len(data), filename)


# -- messages ----------------------------------------------------------------------------------

# Content parts that carry a file: (OpenAI's type or our short key) -> the kind the part promises.
_MEDIA_PARTS = {"image_url": "image", "input_audio": "audio", "file": None, "image": "image", "audio": "audio"}


def _media_part(part: Mapping[str, Any], where: str) -> Optional[Union[str, Attachment]]:
    """The file a content part carries, ``None`` for a part that carries none (text, v2's own parts)."""
    kind = part.get("type")
    if kind is None:
        keys = [k for k in ("image", "audio", "file") if k in part]
        if not keys:
            return None
        if len(part) != 1:
            raise ValueError(f"{where}: a {{{keys[0]!r}: ...}} part has no other keys, got {sorted(part)}")
        kind = keys[0]
        value = part[kind]
    elif kind == "text":
        return None
    elif kind in _MEDIA_PARTS:
        value = part.get(kind)
    else:
        raise ValueError(f"{where}: unknown part type {kind!r} (known: text, image_url, input_audio, file)")
    hint = _MEDIA_PARTS[kind]
    if kind == "image_url":
        url = value.get("url") if isinstance(value, Mapping) else value
        if not isinstance(url, str) or not url:
            raise ValueError(f"{where}: an image_url part needs {{'url': 'data:...' or a path}}")
        return _item(url, where, hint)
    if kind == "input_audio":
        data = value.get("data") if isinstance(value, Mapping) else None
        audio_format = value.get("format") if isinstance(value, Mapping) else None
        if not isinstance(data, str) or not data or not isinstance(audio_format, str):
            raise ValueError(f"{where}: an input_audio part needs {{'data': base64 text, 'format': 'wav'|'mp3'|...}}")
        fmt = _format(where, f"the {audio_format} audio", filename=f"audio.{audio_format}", hint=hint)
        return _base64(data, where, f"the {audio_format} audio", fmt, None)
    if kind == "file" and isinstance(value, Mapping):  # OpenAI's {"file_id"} or {"file_data", "filename"}
        if isinstance(value.get("file_id"), str) and value["file_id"]:
            return str(value["file_id"])
        data = value.get("file_data")
        name = value.get("filename")
        if data is None or not (name is None or isinstance(name, str)):
            raise ValueError(f"{where}: a file part needs {{'file_id': ...}} or {{'file_data': ..., 'filename': ...}}")
        return _pair(data, name, where, hint)
    if value is None:
        raise ValueError(f"{where}: the {kind!r} part holds nothing")
    return _item(value, where, hint)


def _text_part(part: Any) -> Optional[str]:
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping) and (part.get("type") == "text" or ("type" not in part and set(part) == {"text"})):
        text = part.get("text")
        return text if isinstance(text, str) else None
    return None


class _Found:
    """What the walk over one call's messages found: the files to upload, by placeholder, and counts for the limits."""

    def __init__(self) -> None:
        self.pending: Dict[str, Attachment] = {}
        self.files = 0
        self.media_bytes = 0

    def add(self, item: Union[str, Attachment]) -> str:
        self.files += 1
        if isinstance(item, str):
            return item
        if item.format.kind != "document" and item.size is not None:
            self.media_bytes += item.size
        placeholder = f"{_PLACEHOLDER}{os.urandom(8).hex()}"
        self.pending[placeholder] = item
        return placeholder


def _rewrite(message: Mapping[str, Any], where: str, v2: bool, found: _Found) -> Dict[str, Any]:
    """``message`` with its files as (placeholder) ids in the contract's place; the rest left to the body's checks."""
    clean = dict(message)
    images: List[str] = []
    ids: List[str] = []

    def take(item: Union[str, Attachment], at: str) -> str:
        if isinstance(item, Attachment) and item.format.kind == "image":
            images.append(at)
        return found.add(item)

    attachments = message.get("attachments")
    if isinstance(attachments, (list, tuple)):
        ids = [take(_item(value, f"{where}.attachments[{j}]"), f"attachments[{j}]") for j, value in enumerate(attachments)]
        clean["attachments"] = ids
    content = message.get("content")
    if isinstance(content, (list, tuple)):
        texts: List[str] = []
        parts: List[Any] = []
        for j, part in enumerate(content):
            at = f"{where}.content[{j}]"
            text = _text_part(part)
            if text is not None:
                texts.append(text)
                parts.append({"text": text})
            elif not isinstance(part, Mapping):
                if not v2:
                    raise TypeError(f"{at}: a part must be a str or a dict like {{'type': 'text', 'text': ...}}, "
                                    f"got {type(part).__name__}")
                parts.append(part)  # the v2 body's checks name it
            elif part.get("type") == "text":
                raise TypeError(f"{at}['text'] must be a str, got {type(part.get('text')).__name__}")
            else:
                media = _media_part(part, at)
                if media is not None:
                    file_id = take(media, f"content[{j}]")
                    ids.append(file_id)
                    parts.append({"files": [{"id": file_id}]})
                elif v2:  # v2's own parts (text, files, function_call, ...): checked with the body
                    if isinstance(part.get("files"), (list, tuple)):
                        found.files += len(part["files"])
                    parts.append(part)
                elif set(part) == {"files"} and isinstance(part["files"], (list, tuple)):  # v2's files part, on v1
                    for k, entry in enumerate(part["files"]):
                        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str) or not entry["id"]:
                            raise TypeError(f"{at}['files'][{k}] must be a dict with a non-empty 'id' str")
                        ids.append(take(entry["id"], f"content[{j}]"))
                else:
                    raise ValueError(f"{at}: a v1 message carries text and files, not {sorted(part)[0]!r} parts "
                                     "(v2 takes them: api_version='v2')")
        if v2:
            clean["content"] = parts
        else:
            clean["content"] = "\n".join(texts)
            if ids:
                clean["attachments"] = ids
    if len(images) > MAX_IMAGES_PER_MESSAGE:
        raise ValueError(f"{where}: {len(images)} images ({', '.join(images)}); GigaChat takes one image per message")
    return clean


def _may_carry(message: Any) -> bool:
    """Whether ``message`` may carry a file: it has ``attachments`` or content parts."""
    return isinstance(message, Mapping) and (
        isinstance(message.get("attachments"), (list, tuple)) or isinstance(message.get("content"), (list, tuple)))


def find_attachments(messages: Any, api_version: str) -> Tuple[Any, Optional["Uploads"]]:
    """``messages`` with every file to upload replaced by a placeholder id, and the files (``None``: no upload).

    Only ``os.stat`` touches the disk: safe on an event loop. Messages that
    carry no files are returned as they are; anything malformed that is not a
    file is left for the body's own checks to name.

    Raises:
        TypeError, ValueError: naming the bad item (``messages[1].attachments[0]: cat.png is 17.2 MB; ...``).
    """
    if not isinstance(messages, (list, tuple)) or not any(_may_carry(m) for m in messages):
        return messages, None
    found = _Found()
    v2 = api_version == "v2"
    rewritten = [_rewrite(m, f"messages[{i}]", v2, found) if _may_carry(m) else m for i, m in enumerate(messages)]
    if found.files > MAX_FILES:
        raise ValueError(f"messages: {found.files} files in one request; GigaChat takes at most {MAX_FILES}")
    if found.media_bytes > MAX_MEDIA_BYTES:
        raise ValueError(f"messages: images and audio add up to {_mb(found.media_bytes)}; "
                         f"GigaChat takes up to {MAX_MEDIA_BYTES // MiB} MB of them in one request")
    return rewritten, Uploads(found.pending) if found.pending else None


def with_media(messages: Any, media: Any) -> Any:
    """gpt4free's ``media=`` (``[(data, filename), ...]``) attached to the last user message.

    Raises:
        TypeError, ValueError: naming ``media[i]``.
    """
    if media is None or (isinstance(media, (list, tuple)) and not media):
        return messages
    if not isinstance(media, (list, tuple)):
        raise TypeError(f"media must be a list of (data, filename) pairs, got {type(media).__name__}")
    items = []
    for i, entry in enumerate(media):
        data, filename = entry if isinstance(entry, (list, tuple)) and len(entry) == 2 else (entry, None)
        if filename is not None and not isinstance(filename, str):
            raise TypeError(f"media[{i}]: the file name must be a str, got {type(filename).__name__}")
        items.append(Media(data, filename, f"media[{i}]"))
    if isinstance(messages, str):
        return [{"role": "user", "content": messages, "attachments": items}]
    if not isinstance(messages, (list, tuple)):
        return messages  # refused by the usual checks
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if isinstance(message, Mapping) and message.get("role") == "user":
            given = message.get("attachments")
            extra = list(given) if isinstance(given, (list, tuple)) else []
            result = list(messages)
            result[i] = {**message, "attachments": extra + items}
            return result
    raise ValueError("media: there is no user message to attach it to")


# -- the ids of uploaded files -------------------------------------------------------------------


class SharedFiles(Protocol):
    """File ids shared by a fleet (:class:`~gigachat_lite.coordination.SharedFileIds`)."""

    def file_id(self, key: Hashable, content: str, upload: Callable[[], str]) -> Tuple[str, bool]: ...  # noqa: E704

    def forget(self, key: Hashable, content: str, file_id: str) -> None: ...  # noqa: E704


class _Entry:
    __slots__ = ("lock", "file_id", "expires")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.file_id: Optional[str] = None
        self.expires = 0.0


class FileIds:
    """File ids by (owner, content), for the process: the same bytes are uploaded once, by one thread.

    At most ``max_entries`` are kept (least recently used first out), each
    :data:`FILE_ID_TTL` seconds.
    """

    def __init__(self, max_entries: int = 1024) -> None:
        self._entries: "OrderedDict[Hashable, _Entry]" = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def _entry(self, key: Hashable) -> _Entry:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
        return entry

    def file_id(self, key: Hashable, upload: Callable[[], str],
                shared: Optional[Tuple[SharedFiles, Hashable, str]] = None) -> Tuple[str, bool]:
        """``(file id, uploaded now)``: the known id, else the fleet's (``shared``), else ``upload()``'s."""
        entry = self._entry(key)
        with entry.lock:  # one upload per key at a time in the process; the others wait for its id
            if entry.file_id is not None and entry.expires > time.monotonic():
                return entry.file_id, False
            if shared is not None:
                store, fleet, content = shared
                file_id, fresh = store.file_id(fleet, content, upload)
            else:
                file_id, fresh = upload(), True
            entry.file_id, entry.expires = file_id, time.monotonic() + FILE_ID_TTL
            return file_id, fresh

    def peek(self, key: Hashable) -> Optional[str]:
        """``key``'s id if one is known and fresh, without uploading or waiting."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry.file_id is None or entry.expires <= time.monotonic():
            return None
        return entry.file_id

    def forget(self, key: Hashable, file_id: str) -> None:
        """Drop ``key``'s id if it is still ``file_id``."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry.file_id == file_id:
            entry.file_id = None

    def forget_id(self, file_id: str) -> None:
        """Drop every entry of ``file_id`` (the file was deleted)."""
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:
            if entry.file_id == file_id:
                entry.file_id = None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
        with _DIGESTS_LOCK:
            _DIGESTS.clear()

    def after_fork(self) -> None:
        """In a forked child: fresh locks (a parent thread may have held one); the ids stay valid."""
        self._lock = threading.Lock()
        for entry in list(self._entries.values()):
            entry.lock = threading.Lock()


UPLOADS = FileIds()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=UPLOADS.after_fork)


class _Done(NamedTuple):
    file_id: str
    fresh: bool  # uploaded for this call (a reused id may be gone from the server)
    key: Hashable
    content: str


def _owner(session: "Session") -> str:
    """Whose files these are: the API host and the identity, as a digest (no key kept in clear)."""
    config = session.config
    token = hashlib.sha256(config.access_token.encode("utf-8")).hexdigest() if config.access_token else ""
    parts = (config.base_url, config.auth_url, config.scope, config.api_key or "", config.user or "", token)
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


class Uploads:
    """The files one prepared chat call uploads, by placeholder id; :meth:`send` uploads them and sends the call."""

    __slots__ = ("pending",)

    def __init__(self, pending: Dict[str, Attachment]) -> None:
        self.pending = pending

    def __repr__(self) -> str:
        return f"<Uploads {', '.join(a.where for a in self.pending.values())}>"

    def send(
        self,
        session: "Session",
        body: Dict[str, Any],
        headers: Optional[Mapping[str, str]],
        send: Callable[[Dict[str, Any]], R],
        shared: Optional[Tuple[SharedFiles, Hashable]] = None,
    ) -> R:
        """Upload what is not known yet, then ``send(body with the ids)``.

        When the server refuses a reused id as unknown (the file was deleted
        since), those files are uploaded again and the body sent again, once.

        Raises:
            ValueError: a file cannot be read, or changed past its limit since it was checked.
            APIError, TransportError: an upload or the call failed.
        """
        upload_headers = {k: v for k, v in (headers or {}).items() if k.lower() not in _NOT_FOR_UPLOADS}
        client = next((v for k, v in upload_headers.items() if k.lower() == "x-client-id"), None)
        client = client or str(session.headers.get("X-Client-ID") or "")
        owner = _owner(session)
        done = {p: self._upload(session, a, owner, client, upload_headers, shared) for p, a in self.pending.items()}
        try:
            return send(_with_ids(body, done))
        except APIError as exc:
            stale = [p for p, d in done.items() if not d.fresh]
            if not stale or not _names_a_file(exc, [done[p].file_id for p in stale]):
                raise
            log.info("a reused file id was refused (%s); uploading %d file(s) again", exc.status_code, len(stale))
            for placeholder in stale:
                old = done[placeholder]
                UPLOADS.forget(old.key, old.file_id)
                if shared is not None:
                    shared[0].forget(shared[1], old.content, old.file_id)
                done[placeholder] = self._upload(session, self.pending[placeholder], owner, client, upload_headers, shared)
            return send(_with_ids(body, done))

    @staticmethod
    def _upload(session: "Session", attachment: Attachment, owner: str, client: str, headers: Mapping[str, str],
                shared: Optional[Tuple[SharedFiles, Hashable]]) -> _Done:
        mime = attachment.format.mime

        def content_of(digest: str) -> str:
            # What makes two uploads the same file: the host, the X-Client-ID the file is bound to, its type and bytes.
            return hashlib.sha256("\0".join((session.config.base_url, client, "general", mime, digest)).encode()).hexdigest()

        identity = attachment.identity()
        digest = _known_digest(identity)
        if digest is not None:
            content = content_of(digest)
            known = UPLOADS.peek((owner, content))
            if known is not None:
                return _Done(known, False, (owner, content), content)
        data = attachment.read()
        digest = hashlib.sha256(data).hexdigest()
        if identity is not None and attachment.identity() == identity:  # unchanged while it was read
            _remember_digest(identity, digest)
        content = content_of(digest)
        key = (owner, content)

        def upload() -> str:
            part = (attachment.upload_name(digest), data, mime)
            response = session.call("POST", "/files", files={"file": part}, data={"purpose": "general"},
                                    headers={**headers, "Accept": "application/json"})
            file_id = json_object(json_reply(response), "upload").get("id")
            if not isinstance(file_id, str) or not file_id:
                raise InvalidResponseError(f"the upload reply for {attachment.where} has no file id")
            log.debug("%s uploaded as %s", attachment.where, file_id)
            return file_id

        file_id, fresh = UPLOADS.file_id(key, upload, None if shared is None else (shared[0], shared[1], content))
        return _Done(file_id, fresh, key, content)


def _names_a_file(error: APIError, file_ids: Sequence[str]) -> bool:
    """Whether ``error`` says a file is unknown or not ours: a 4xx that names one of ``file_ids``, or a 404 about a file."""
    if error.status_code not in (400, 403, 404, 422):
        return False
    message = error.message or ""
    return any(file_id in message for file_id in file_ids) or (error.status_code == 404 and "file" in message.lower())


def _with_ids(body: Dict[str, Any], done: Mapping[str, _Done]) -> Dict[str, Any]:
    """``body`` with every placeholder replaced by its file id (v1 ``attachments``, v2 ``files`` parts)."""
    ids = {placeholder: d.file_id for placeholder, d in done.items()}
    messages = []
    for message in body["messages"]:
        attachments = message.get("attachments")
        if isinstance(attachments, list) and any(a in ids for a in attachments):
            message = {**message, "attachments": [ids.get(a, a) for a in attachments]}
        content = message.get("content")
        if isinstance(content, list) and any(isinstance(p, dict) and "files" in p for p in content):
            message = {**message, "content": [
                {**p, "files": [{**f, "id": ids.get(f["id"], f["id"])} for f in p["files"]]}
                if isinstance(p, dict) and "files" in p else p
                for p in content
            ]}
        messages.append(message)
    return {**body, "messages": messages}
