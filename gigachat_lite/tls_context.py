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
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import Any, Dict, Tuple

from requests.adapters import HTTPAdapter
from urllib3.util.ssl_ import create_urllib3_context

__all__ = ["SharedContextAdapter", "context_for"]

_CONTEXTS: Dict[Tuple[str, float, int], ssl.SSLContext] = {}
_LOCK = threading.Lock()


def context_for(bundle: str) -> ssl.SSLContext:
    """The verifying context for the CA file ``bundle``, loaded once per version of the file."""
    stat = os.stat(bundle)
    key = (bundle, stat.st_mtime, stat.st_size)
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
    """requests' adapter, with the CA bundle loaded once (see the module docstring)."""

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
