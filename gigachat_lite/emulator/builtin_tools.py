"""Deterministic stand-ins for GigaChat's built-in tools, shaped like the recorded replies.

Nothing leaves the machine: web search and URL reading answer from the request text
alone (sources point at ``example.com``, a domain reserved for examples), the code
interpreter runs nothing, and image generation stores a small fixed JPEG in the
emulator's file store, so ``GET /files/{id}/content`` serves its bytes. Shapes follow
``tests/data/cassettes/test_primary_chat_builtin_tools.yaml``.
"""

import base64
import re
from typing import Any, Callable, Dict, List
from urllib.parse import quote

from .files import FileStore

Parts = List[Dict[str, Any]]

#: The bytes of every generated image: an 8x8 blue JPEG.
IMAGE_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4"
    "UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2Nj"
    "Y2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAIAAgDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcI"
    "CQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRol"
    "JicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ip"
    "qrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAA"
    "AAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLR"
    "ChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaX"
    "mJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEA"
    "PwDOooor0zhP/9k="
)
_URL = re.compile(r"https?://[^\s\"'<>]+")


def web_search(text: str, store: FileStore) -> Parts:
    """A text part citing one source, with ``inline_data`` as the real search sends it."""
    source = {"url": "https://example.com/search?q=" + quote(text), "title": "Emulated result for: " + text}
    answer = "The emulator searched nothing; it cites one made-up page [sources=[1]]."
    return [{"text": answer, "inline_data": {"images": [], "sources": {"1": source}}}]


def code_interpreter(text: str, store: FileStore) -> Parts:
    """A plain text part: the real tool answers in text after running code."""
    return [{"text": "The emulated code interpreter ran no code for: " + text}]


def url_content_extraction(text: str, store: FileStore) -> Parts:
    """A plain text part naming the first URL of the request."""
    found = _URL.search(text)
    if found is None:
        return [{"text": "There is no URL in the request to read."}]
    return [{"text": "The emulator did not fetch %s; its content is not known." % found.group(0)}]


def image_generate(text: str, store: FileStore) -> Parts:
    """A ``files`` part for a stored JPEG, then a text part, as recorded."""
    entry = store.add("image.jpg", "general", IMAGE_JPEG, "image/jpeg")
    return [
        {"files": [{"id": entry["id"], "mime": "image/jpeg", "target": "image"}]},
        {"text": "An image was generated for: " + text},
    ]


#: The bytes of every generated 3D model: an empty glTF 2.0 binary (header and JSON chunk).
_GLTF_JSON = b'{"asset":{"version":"2.0"}}  '  # padded to a multiple of 4, as GLB requires
MODEL_GLB = (
    b"glTF" + (2).to_bytes(4, "little") + (20 + len(_GLTF_JSON)).to_bytes(4, "little")
    + len(_GLTF_JSON).to_bytes(4, "little") + b"JSON" + _GLTF_JSON
)


def model_3d_generate(text: str, store: FileStore) -> Parts:
    """A ``files`` part for a stored (empty) glTF model, then a text part, like image generation."""
    entry = store.add("model.glb", "general", MODEL_GLB, "model/gltf-binary")
    return [
        {"files": [{"id": entry["id"], "mime": "model/gltf-binary", "target": "3dmodel"}]},
        {"text": "A 3D model was generated for: " + text},
    ]


#: Each built-in tool by its wire name.
STAND_INS: Dict[str, Callable[[str, FileStore], Parts]] = {
    "web_search": web_search,
    "code_interpreter": code_interpreter,
    "url_content_extraction": url_content_extraction,
    "image_generate": image_generate,
    "model_3d_generate": model_3d_generate,
}
