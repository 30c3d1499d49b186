"""What requests reads from the environment on every request, read the way gigachat_lite needs and cached.

:class:`EnvironmentSettings` is the part of :class:`~gigachat_lite.transport.Transport`
that overrides ``requests.Session.merge_environment_settings``: the ``proxy=``
setting beats ``HTTPS_PROXY`` (requests lets the environment win, psf/requests#2018),
the mounted CA bundle beats ``REQUESTS_CA_BUNDLE`` (psf/requests#3829), and the
environment's proxies are looked up once per origin and variables, not on every call.
"""

from __future__ import annotations

import os
from typing import Any, Dict
from urllib.parse import urlsplit

import requests
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies

__all__ = ["EnvironmentSettings"]

# What urllib's getproxies()/proxy_bypass() read for http(s) URLs (CGI's REQUEST_METHOD disables HTTP_PROXY).
_PROXY_VARIABLES = tuple(
    name for base in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for name in (base, base.upper())
) + ("REQUEST_METHOD",)


def _merge_proxies(request_proxies: Dict[str, Any], session_proxies: Any) -> Any:
    """requests' ``merge_setting(request_proxies, session_proxies)`` for two dicts, without its cost.

    merge_setting checks each side with a runtime typing Protocol (~5 µs a side
    on Python 3.11); for plain dicts the merge is the same: the session's
    entries, then the request's, entries set to None dropped.
    """
    if type(session_proxies) is not dict:
        return merge_setting(request_proxies, session_proxies)  # type: ignore[no-untyped-call]
    merged = {**session_proxies, **request_proxies}
    return {key: value for key, value in merged.items() if value is not None}


class EnvironmentSettings(requests.Session):
    """``requests.Session`` with gigachat_lite's environment rules (see the module's docstring)."""

    config: Any  # the session's Config, set by Transport
    _proxy_cache: Dict[Any, Dict[str, str]]

    def __init__(self) -> None:
        super().__init__()
        self._proxy_cache = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        """requests' merge, with two overrides and a cache (see the comments)."""
        proxies = dict(proxies or {})
        per_request_proxies = bool(proxies)
        if self.trust_env:
            for scheme, proxy in self._environ_proxies(url, proxies.get("no_proxy")).items():
                proxies.setdefault(scheme, proxy)
            if verify is True:  # an explicit per-request verify=True keeps requests' meaning
                verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
        if self.config.proxy and not per_request_proxies:
            # requests lets HTTPS_PROXY/HTTP_PROXY override Session.proxies
            # (psf/requests#2018): the proxy= argument must beat the environment.
            proxies = dict(self.proxies)
        return {
            "proxies": _merge_proxies(proxies, self.proxies),
            "stream": merge_setting(stream, self.stream),  # type: ignore[no-untyped-call]
            # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override Session.verify
            # (psf/requests#3829); the bundle we mounted wins unless this request says otherwise.
            "verify": self.verify if verify is None else verify,
            "cert": merge_setting(cert, self.cert),  # type: ignore[no-untyped-call]
        }

    def _environ_proxies(self, url: Any, no_proxy: Any) -> Dict[str, str]:
        # requests walks the whole environment for proxies on every request
        # (urllib's getproxies()): a quarter of a small call's time. The answer
        # depends only on the origin and a few variables, so cache it on those.
        parts = urlsplit(url if isinstance(url, str) else url.decode())
        key = (parts.scheme, parts.netloc, no_proxy, tuple(os.environ.get(name) for name in _PROXY_VARIABLES))
        found = self._proxy_cache.get(key)
        if found is None:
            found = get_environ_proxies(url, no_proxy=no_proxy)
            if len(self._proxy_cache) > 64:
                self._proxy_cache.clear()
            self._proxy_cache[key] = found
        return found
