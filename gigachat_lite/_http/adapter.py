"""``GigaChatAdapter``: requests' ``HTTPAdapter`` with one SSL context per CA bundle, and pools a deadline can watch.

requests hands urllib3 the bundle as a path, and urllib3 then builds a new
``SSLContext`` for every connection and parses the whole bundle into it. Our
default bundle is the Russian Trusted Root CA plus certifi (~236 KB): 100
concurrent TLS streams held 85 MiB more than one stream, where a client with
no library held 13 MiB (docs/performance.rst). A configured context is safe to
share between threads, so the adapter gives urllib3 one context per version
of a bundle file through requests' documented
``build_connection_pool_key_attributes`` hook (requests 2.32.2 and later;
older versions never call it and keep their behaviour).

The contexts are held weakly: a context lives as long as a connection pool
uses it (urllib3 keys its pools by context), so a rewritten bundle, a bundle
no session uses any more, or a closed session's pools leave nothing behind
(issue 20: 80 rewrites of a bundle used to keep 54 MB).

The pools' connections report their sockets to the call's
:class:`~.deadline.Deadline`, if it has one (urllib3's documented
``ConnectionCls``, through ``PoolManager.pool_classes_by_scheme``): that is
how ``deadline=`` bounds a whole call and how the async adapter stops a call
it no longer awaits. A call with neither costs a thread-local attribute
look-up per connection and reply, and never enters deadline.py.
"""

from __future__ import annotations

import os
import ssl
import threading
import weakref
from typing import Any, Dict, Tuple

from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.ssl_ import create_urllib3_context

from .deadline import SCOPES

__all__ = ["GigaChatAdapter", "context_for"]

_CONTEXTS: "weakref.WeakValueDictionary[Tuple[str, float, int], ssl.SSLContext]" = weakref.WeakValueDictionary()
_LOCK = threading.Lock()


def context_for(bundle: str) -> ssl.SSLContext:
    """The verifying context for the CA file ``bundle``: one per version of the file while anything uses it."""
    stat = os.stat(bundle)
    key = (bundle, stat.st_mtime, stat.st_size)  # a rewritten bundle gets a new context (and so a new pool)
    context = _CONTEXTS.get(key)
    if context is None:
        with _LOCK:
            context = _CONTEXTS.get(key)
            if context is None:
                context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
                context.load_verify_locations(cafile=bundle)
                _CONTEXTS[key] = context
    return context


# -- connections that hand their sockets to the call's deadline -----------------------------------


class _Watched:
    """Hands the socket to this thread's deadline scopes: when made (so a trickled TLS handshake is bounded too) and before a reply is read."""

    sock: Any

    def _new_conn(self) -> Any:
        sock = super()._new_conn()  # type: ignore[misc]
        deadline = getattr(SCOPES, "deadline", None)
        while deadline is not None:
            deadline.watch(sock)
            deadline = deadline.outer
        return sock

    def getresponse(self) -> Any:
        deadline = getattr(SCOPES, "deadline", None)
        while deadline is not None and self.sock is not None:
            deadline.watch(self.sock)
            deadline = deadline.outer
        # The first byte is not marked here: this may be the OAuth reply before the call's own.
        return super().getresponse()  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


#: For ``PoolManager.pool_classes_by_scheme``: pools whose connections report their sockets to the call's deadline.
WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class GigaChatAdapter(HTTPAdapter):
    """requests' adapter, sharing one SSL context per CA bundle, its sockets watched by deadlines (see the module docstring)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if manager.pool_classes_by_scheme.get("https") is HTTPSConnectionPool:  # not SOCKS's own pools
            manager.pool_classes_by_scheme = WATCHED_POOLS
        return manager

    def build_connection_pool_key_attributes(self, request: PreparedRequest, verify: Any, cert: Any = None) -> Any:
        host_params, found = super().build_connection_pool_key_attributes(request, verify, cert)
        pool_kwargs: Dict[str, Any] = dict(found)
        bundle = pool_kwargs.get("ca_certs")
        # A client certificate is loaded into the context per connection by urllib3;
        # leave such pools (mutual TLS, rare) to urllib3 rather than share a context they change.
        if bundle and host_params.get("scheme") == "https" and "cert_file" not in pool_kwargs:
            del pool_kwargs["ca_certs"]
            pool_kwargs["ssl_context"] = context_for(bundle)
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]  # checks the bundle exists
        if getattr(conn, "conn_kw", {}).get("ssl_context") is not None:
            # requests sets the path on the pool too, and urllib3 would then load it
            # into the shared context again on every connection.
            conn.ca_certs = None
