"""One SSL context per CA bundle, shared by every connection, instead of one per connection.

requests hands urllib3 the bundle as a path, and urllib3 then builds a new
``SSLContext`` for every connection and parses the whole bundle into it. Our
default bundle is the Russian Trusted Root CA plus certifi (~236 KB): 100
concurrent TLS streams held 85 MiB more than one stream, where the floor held
13 MiB (docs/performance.rst). A configured context is safe to share between
threads, so :class:`SharedContextAdapter` gives urllib3 one context per bundle
file (per version of the file, so a rewritten bundle is read again) through
requests' documented ``build_connection_pool_key_attributes`` hook (requests
2.32.2 and later; older versions never call it and keep their behaviour).

The adapter also remembers what requests works out again on every call for
the same answer (issue 14): which pool serves a (URL, verify, cert, proxies)
(looked up again in the pool manager each time, so its evictions and recency
order stand) and the request line's URL; its connections send a small body
with the head (:mod:`.one_write`) and its responses read a body in one call
(:mod:`.adapter_response`).
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import Any, Dict, Mapping, Optional, Tuple, cast

import requests
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest
from requests.utils import select_proxy
from urllib3.connectionpool import HTTPConnectionPool, port_by_scheme
from urllib3.util.ssl_ import create_urllib3_context

from .adapter_response import build_response
from .one_write import POOL_CLASSES

__all__ = ["SharedContextAdapter", "context_for"]

_CONTEXTS: Dict[Tuple[str, float, int], ssl.SSLContext] = {}  # (path, *_file_version)
_LOCK = threading.Lock()


def context_for(bundle: str) -> ssl.SSLContext:
    """The verifying context for the CA file ``bundle``, loaded once per version of the file."""
    key = (bundle, *_file_version(bundle))
    context = _CONTEXTS.get(key)
    if context is None:
        with _LOCK:
            context = _CONTEXTS.get(key)
            if context is None:
                context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
                context.load_verify_locations(cafile=bundle)
                _CONTEXTS[key] = context
    return context


class SharedContextAdapter(HTTPAdapter):
    """requests' adapter, with the CA bundle loaded once and the pool lookups remembered (see the module docstring)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        # Here rather than in __init__: an unpickled adapter comes through here too, without __init__.
        self._pools: Dict[Any, Tuple[Any, Any, Any]] = {}
        self._urls: Dict[Any, str] = {}
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = POOL_CLASSES  # a small body goes out with the head (one_write.py)

    def get_connection_with_tls_context(
        self, request: PreparedRequest, verify: Any, proxies: Optional[Mapping[str, str]] = None, cert: Any = None
    ) -> HTTPConnectionPool:
        # requests parses the URL, stats the bundle and normalises a pool key on
        # every call (~15 µs) for the same answer. The key is remembered per
        # (URL, verify, cert, proxies) and looked up again in the pool manager,
        # which keeps its own recency order and evictions; a rewritten bundle
        # (new context, new pool key) or a new pool manager makes a fresh lookup.
        key = (request.url, verify, cert, tuple(proxies.items()) if proxies else ())
        known = self._pools.get(key)
        version = _version(verify)  # before the lookup: a bundle rewritten during it is looked up again next time
        if known is not None:
            manager, pool_key, seen = known
            if manager is self.poolmanager and seen == version:
                alive = manager.pools.get(pool_key)
                if alive is not None:
                    return cast(HTTPConnectionPool, alive)
        pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
        self._remember(key, version, request, verify, proxies, cert, pool)
        return cast(HTTPConnectionPool, pool)

    def _remember(self, key: Any, version: Any, request: PreparedRequest, verify: Any, proxies: Any, cert: Any, pool: Any) -> None:
        if request.url is None or select_proxy(request.url, proxies):  # a proxy's pools are keyed by the proxy: left to requests
            return
        # connection_from_host's own steps, then a check that they found this very pool.
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        manager = self.poolmanager
        context = manager._merge_pool_kwargs(pool_kwargs)
        scheme = context["scheme"] = host_params["scheme"] or "http"
        context["port"] = host_params["port"] if host_params["port"] is not None else port_by_scheme.get(scheme.lower(), 80)
        context["host"] = host_params["host"]
        key_fn = manager.key_fn_by_scheme.get(scheme.lower())
        pool_key = key_fn(context) if key_fn is not None else None
        if pool_key is not None and manager.pools.get(pool_key) is pool:
            if len(self._pools) > 64:
                self._pools.clear()
            self._pools[key] = (manager, pool_key, version)

    def build_response(self, req: PreparedRequest, resp: Any) -> requests.Response:
        return build_response(self, req, resp)  # requests' own, reading the body in one call (adapter_response.py)

    def request_url(self, request: PreparedRequest, proxies: Any) -> str:
        # A function of the URL and the proxies (two urlparse and a select_proxy in requests).
        key = (request.url, tuple(proxies.items()) if proxies else ())
        url = self._urls.get(key)
        if url is None:
            url = super().request_url(request, proxies)
            if len(self._urls) > 64:
                self._urls.clear()
            self._urls[key] = url
        return url

    def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None) -> Any:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        kwargs: Dict[str, Any] = dict(pool_kwargs)
        bundle = kwargs.get("ca_certs")
        # A client certificate is loaded into the context per connection by urllib3;
        # leave such pools (mutual TLS, rare) to urllib3 rather than share a context they change.
        if bundle and host_params.get("scheme") == "https" and "cert_file" not in kwargs:
            del kwargs["ca_certs"]
            kwargs["ssl_context"] = context_for(bundle)
        return host_params, kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]  # checks the bundle exists
        if getattr(conn, "conn_kw", {}).get("ssl_context") is not None:
            # requests sets the path on the pool too, and urllib3 would then load it
            # into the shared context again on every connection.
            conn.ca_certs = None


def _file_version(path: str) -> Tuple[float, int]:
    """What tells one version of a CA file from the next: a rewritten bundle gets a new context."""
    stat = os.stat(path)
    return stat.st_mtime, stat.st_size


def _version(verify: Any) -> Any:
    """The bundle's version as :func:`context_for` sees it (so a new context means a new pool)."""
    if not isinstance(verify, str):
        return verify
    try:
        return _file_version(verify)
    except OSError:
        return None  # requests raises its own error for a missing bundle
