"""The :class:`requests.Response` that :class:`~gigachat_lite.tls_context.SharedContextAdapter` builds: requests' own, two costs less.

* ``Response.content`` reads the body through ``iter_content``: a generator
  over urllib3's ``stream()``, a 10 KiB ``read(amt)`` and one more to see the
  end, ~20 µs of a ~450 µs small call (issue 14). :class:`OneReadResponse`
  reads it with one ``raw.read()`` instead and maps urllib3's errors to
  requests' exceptions as ``iter_content`` does; it is read at the same
  moment as before (when ``content`` is first asked for, after the hooks).
* ``build_response`` extracts cookies from every reply into a new jar
  (~3.5 µs); a reply without ``Set-Cookie``/``Set-Cookie2`` gives none, so
  :func:`build_response` skips it then. Otherwise it is requests'
  ``HTTPAdapter.build_response``, field for field.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.cookies import extract_cookies_to_jar
from requests.exceptions import ChunkedEncodingError, ConnectionError, ContentDecodingError
from requests.exceptions import SSLError as RequestsSSLError
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError, SSLError
from urllib3.response import HTTPResponse

__all__ = ["OneReadResponse", "build_response"]


class OneReadResponse(requests.Response):
    """A requests ``Response`` whose ``content`` is read from urllib3 in one call."""

    @property
    def content(self) -> bytes:
        raw = self.raw
        unread = self._content is False  # type: ignore[comparison-overlap]  # requests' mark for "not read yet"
        if not unread or getattr(self, "_content_consumed") or type(raw) is not HTTPResponse or self.status_code == 0:
            return super().content
        try:
            body = raw.read(decode_content=True)
        except ProtocolError as exc:
            raise ChunkedEncodingError(exc)
        except DecodeError as exc:
            raise ContentDecodingError(exc)
        except ReadTimeoutError as exc:
            raise ConnectionError(exc)
        except SSLError as exc:
            raise RequestsSSLError(exc)
        self._content = body or b""
        self._content_consumed = True
        return self._content


def build_response(adapter: Any, req: requests.PreparedRequest, resp: Any) -> requests.Response:
    """requests' ``HTTPAdapter.build_response`` (2.28-2.34), making a :class:`OneReadResponse`."""
    response = OneReadResponse()
    response.status_code = getattr(resp, "status", None)  # type: ignore[assignment]
    response.headers = CaseInsensitiveDict(getattr(resp, "headers", {}))
    response.encoding = get_encoding_from_headers(response.headers)
    response.raw = resp
    response.reason = response.raw.reason
    response.url = req.url.decode("utf-8") if isinstance(req.url, bytes) else req.url  # type: ignore[assignment]
    if "set-cookie" in response.headers or "set-cookie2" in response.headers:
        extract_cookies_to_jar(response.cookies, req, resp)  # type: ignore[no-untyped-call]
    response.request = req
    response.connection = adapter
    return response
