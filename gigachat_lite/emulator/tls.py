"""Server-side TLS: a given cert/key pair, or a throwaway CA made with ``trustme``."""

import os
import shutil
import ssl
import tempfile
from typing import Optional, Tuple


class TLSMaterial:
    """An SSL server context plus the CA bundle clients should trust.

    Call :meth:`cleanup` to delete the temporary CA file this object created.
    """

    def __init__(self, context: ssl.SSLContext, ca_bundle: Optional[str], tmpdir: Optional[str]):
        self.context = context
        self.ca_bundle = ca_bundle
        self._tmpdir = tmpdir

    def cleanup(self) -> None:
        """Remove the temporary directory holding a generated CA, if any."""
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


def _server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def make_tls(
    certfile: Optional[str] = None,
    keyfile: Optional[str] = None,
    ca_bundle: Optional[str] = None,
    hostnames: Tuple[str, ...] = ("127.0.0.1", "localhost"),
) -> TLSMaterial:
    """Build the TLS material for the emulator.

    With ``certfile`` the given chain (and ``keyfile``) is served and ``ca_bundle`` is
    passed through unchanged. Without it, ``trustme`` (imported only here, so it stays
    a test-time dependency) makes a CA and a leaf for ``hostnames``; the CA PEM goes
    to a private temp file.

    Raises:
        RuntimeError: when a CA must be generated but ``trustme`` is not installed.
    """
    context = _server_context()
    if certfile is not None:
        context.load_cert_chain(certfile, keyfile)
        return TLSMaterial(context, ca_bundle, None)
    try:
        import trustme  # type: ignore[import-not-found,unused-ignore]  # optional: the emulator extra
    except ImportError:
        raise RuntimeError(
            "Emulator(tls=True) needs the 'trustme' package to make a throwaway CA: "
            "pip install trustme, or pass certfile= and keyfile="
        ) from None
    ca = trustme.CA()
    ca.issue_cert(*hostnames).configure_cert(context)
    tmpdir = tempfile.mkdtemp(prefix="gigachat-emulator-")
    path = os.path.join(tmpdir, "ca.pem")
    ca.cert_pem.write_to_path(path)
    return TLSMaterial(context, path, tmpdir)
