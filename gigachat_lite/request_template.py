"""Prepared-request templates: the parts of a GigaChat request that do not change between calls, prepared once.

``Session.request`` builds a :class:`requests.Request` and runs every
``prepare_*`` step on each call: URL parsing and IDNA, header validation, the
session-header merge, the cookie header, the body's length, the hooks. For the
same method, URL and headers only the body and the auth header change, and
those steps cost ~95 µs of a ~600 µs call (issue 14). :class:`Templates` runs
them once, with requests' own ``prepare_*``, and gives each call a fresh
:class:`~requests.PreparedRequest` copied from the template, with the body and
``Content-Length`` set and the session's auth applied, in the order
``PreparedRequest.prepare`` uses, so the request is the same, header for
header, as the one requests would build.

A template is valid only while what it was built from is unchanged: the
session's headers, hooks and auth object. A session with params or cookies,
a non-bytes body, or any per-request setting goes the normal way
(:meth:`Templates.prepare` returns ``None``), and so does a session whose
``prepare_request`` or ``request`` is overridden (the caller checks).
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Mapping, Optional, Tuple

import requests
from requests.cookies import RequestsCookieJar
from requests.hooks import default_hooks
from requests.models import PreparedRequest
from requests.sessions import merge_hooks, merge_setting
from requests.structures import CaseInsensitiveDict

__all__ = ["Templates"]

_Key = Tuple[str, str, Tuple[Tuple[str, str], ...]]
# The per-call keywords a template serves (a bytes body, a timeout); any other goes the normal way.
_KWARGS = frozenset(("data", "timeout"))


class _Template:
    __slots__ = ("method", "url", "headers", "hooks")

    def __init__(self, method: str, url: str, headers: CaseInsensitiveDict[str], hooks: Dict[str, Any]) -> None:
        self.method, self.url, self.headers, self.hooks = method, url, headers, hooks


class Templates:
    """One session's request templates, per (method, URL, request headers); rebuilt when the session changes."""

    def __init__(self) -> None:
        self._templates: Dict[_Key, _Template] = {}
        self._state: Any = None
        self._lock = threading.Lock()

    def send(
        self,
        session: requests.Session,
        method: str,
        url: str,
        stream: bool,
        headers: Optional[Mapping[str, str]],
        kwargs: Dict[str, Any],
        default_timeout: Any,
    ) -> Optional[requests.Response]:
        """``session.request(method, url, stream=stream, headers=headers, **kwargs)`` from a template, or ``None`` (no template applies)."""
        body = kwargs.get("data")
        if not kwargs.keys() <= _KWARGS or not (body is None or type(body) is bytes):
            return None
        prepared = self.prepare(session, method, url, headers, body)
        if prepared is None:
            return None
        # The rest of Session.request, as it is there.
        timeout = kwargs.get("timeout")
        settings = session.merge_environment_settings(prepared.url, {}, stream, None, None)
        return session.send(prepared, timeout=default_timeout if timeout is None else timeout, allow_redirects=True, **settings)

    def prepare(
        self, session: requests.Session, method: str, url: str, headers: Optional[Mapping[str, str]], body: Optional[bytes]
    ) -> Optional[PreparedRequest]:
        """The request ``session.prepare_request`` would make for these arguments, or ``None`` (prepare normally)."""
        state = _state(session)
        if state is None:
            return None
        key: _Key = (method, url, tuple(headers.items()) if headers else ())
        template = self._templates.get(key) if state == self._state else None
        if template is None:
            template = self._build(session, state, key, headers)
        prepared = PreparedRequest()
        prepared.method = template.method
        prepared.url = template.url
        prepared.headers = template.headers.copy()
        prepared._cookies = RequestsCookieJar()  # type: ignore[attr-defined]  # what prepare_cookies leaves for redirects
        # prepare_body for bytes: the body as is and its length (an empty body is data={} to requests: no body).
        prepared.prepare_content_length(body or None)
        prepared.body = body or None
        # prepare_auth: the auth may change anything, so its changes are taken whole, then the length is recomputed.
        changed = session.auth(prepared)  # type: ignore[misc,operator]  # _state checked it is a callable
        prepared.__dict__.update(changed.__dict__)
        prepared.prepare_content_length(prepared.body)
        # prepare_hooks comes last: the auth's hooks run before the session's, as in requests.
        for event, hooks in template.hooks.items():
            prepared.hooks[event].extend(hooks)
        return prepared

    def _build(self, session: requests.Session, state: Any, key: _Key, headers: Optional[Mapping[str, str]]) -> _Template:
        # requests' own steps, on a request with no body, auth or cookies: what every call shares.
        model = PreparedRequest()
        model.prepare_method(key[0])
        model.prepare_url(key[1], None)
        model.prepare_headers(merge_setting(headers, session.headers, dict_class=CaseInsensitiveDict))  # type: ignore[no-untyped-call]
        hooks = PreparedRequest()
        hooks.prepare_hooks(merge_hooks(default_hooks(), session.hooks))  # type: ignore[no-untyped-call]
        assert model.method is not None and model.url is not None
        template = _Template(model.method, model.url, model.headers, {event: list(found) for event, found in hooks.hooks.items() if found})
        with self._lock:
            if state != self._state:
                self._templates = {}
                self._state = state
            if len(self._templates) > 64:  # a caller sending to many URLs: keep the cache small
                self._templates = {}
            self._templates[key] = template
        return template


def _state(session: requests.Session) -> Any:
    """What the templates depend on, to compare; ``None`` when the session needs the normal path."""
    auth = session.auth
    cookies = session.cookies
    # No auth means requests would read ~/.netrc; cookies must be sent; params change the URL.
    if not auth or isinstance(auth, tuple) or not callable(auth) or session.params:
        return None
    if type(cookies) is not RequestsCookieJar or cookies._cookies:  # type: ignore[attr-defined]
        return None
    headers = session.headers
    if type(headers) is not CaseInsensitiveDict:
        return None
    hooks = session.hooks
    return (auth, tuple(headers.items()), tuple((event, tuple(found) if isinstance(found, list) else found) for event, found in hooks.items()))
