"""The packaged Russian Trusted Root CA and the combined verification bundle.

Sber's hosts chain to the Russian Trusted Root CA, which public root stores
(certifi, most OS stores) do not carry. We ship it and verify against a bundle
of it **plus** certifi's roots, so Sber's hosts and any other host (a proxy,
a mirror) verify with verification on.

The bundle is written once per content as ``russian_trusted_root_ca.crt`` in
a per-user cache folder (``$GIGACHAT_LITE_CACHE_DIR``, else
``$XDG_CACHE_HOME/gigachat_lite``, else ``~/.cache/gigachat_lite``), atomically
(temp file + rename) so concurrent processes never see a partial file. If no
folder can be written, the packaged CA alone is used, with a warning.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

__all__ = ["CA_FILENAME", "BUNDLE_FILENAME", "packaged_ca_path", "russian_ca_pem", "cache_dir", "default_bundle"]

CA_FILENAME = "russian_trusted_root_ca.pem"
BUNDLE_FILENAME = "russian_trusted_root_ca.crt"
CA_SHA256 = "d26d2d0231b7c39f92cc738512ba54103519e4405d68b5bd703e9788ca8ecf31"

log = logging.getLogger("gigachat_lite")


@functools.lru_cache(maxsize=None)
def packaged_ca_path() -> Path:
    """Path of the Russian Trusted Root CA installed with the package."""
    package = Path(__file__).resolve().parent.parent  # gigachat_lite/
    installed = package / "certs" / CA_FILENAME
    if installed.is_file():
        return installed
    source_tree = package.parent / "certs" / CA_FILENAME  # running from a checkout, not installed
    if source_tree.is_file():
        return source_tree
    raise FileNotFoundError(f"{CA_FILENAME} is missing from the installed package (looked in {installed})")


@functools.lru_cache(maxsize=None)
def russian_ca_pem() -> str:
    """The Russian Trusted Root CA certificate as PEM text."""
    return packaged_ca_path().read_text("ascii")


def cache_dir() -> Path:
    """The per-user folder where the combined bundle is written."""
    explicit = os.environ.get("GIGACHAT_LITE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gigachat_lite"


def _bundle_text() -> bytes:
    import certifi  # requests depends on it, so it is always there

    public_roots = Path(certifi.where()).read_bytes()
    ours = russian_ca_pem().encode("ascii")
    return ours + b"\n" + public_roots


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.read_bytes() == data:
            return  # unchanged: no write, so a read-only file that is already right is fine
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=".bundle-", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)  # atomic on POSIX and Windows: readers see the old or the new file
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@functools.lru_cache(maxsize=None)
def _bundle_for(folder: str) -> str:
    data = _bundle_text()
    target = Path(folder) / BUNDLE_FILENAME
    try:
        _write_atomically(target, data)
        return str(target)
    except OSError as exc:
        try:
            # A private folder (mode 0700) per process: a shared, predictable path in
            # /tmp could be pre-filled by another user with a CA of their choosing.
            private = tempfile.mkdtemp(prefix="gigachat_lite-")
            atexit.register(shutil.rmtree, private, True)
            fallback = Path(private) / BUNDLE_FILENAME
            _write_atomically(fallback, data)
            log.warning("cannot write the CA bundle in %s (%s); using %s", folder, exc.strerror, fallback)
            return str(fallback)
        except OSError:
            log.warning(
                "cannot write the CA bundle anywhere (%s); verifying with the Russian Trusted Root CA only",
                exc.strerror,
            )
            return str(packaged_ca_path())


def default_bundle(folder: Optional[Path] = None) -> str:
    """Path of the combined bundle (Russian Trusted Root CA + certifi), written if needed."""
    return _bundle_for(str(folder if folder is not None else cache_dir()))
