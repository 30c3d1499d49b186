"""The :class:`Emulator`: state (keys, tokens, faults, recorded requests) and lifecycle."""

import base64
import ipaddress
import json
import secrets
import threading
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .endpoints import OAUTH_PATH
from .extras import DEFAULT_BALANCE, FileStore
from .faults import Fault, FaultSet
from .replies import ReplySource
from .server import EmulatorServer
from .tls import TLSMaterial, make_tls

#: The default authorization key: base64 of ``emulator-client-id:emulator-secret``.
#: Deliberately readable so nobody mistakes it for a real credential.
DEFAULT_KEY = base64.b64encode(b"emulator-client-id:emulator-secret").decode("ascii")

ModelSpec = Union[str, Tuple[str, str]]
DEFAULT_MODELS: Tuple[ModelSpec, ...] = (
    "GigaChat",
    "GigaChat-Pro",
    "GigaChat-Max",
    "GigaChat-2",
    "GigaChat-2-Pro",
    "GigaChat-2-Max",
    ("Embeddings", "embedder"),
)


class RecordedRequest:
    """One request as the emulator received it.

    ``headers`` is the parsed, case-insensitive header mapping; ``json`` is the parsed
    body or ``None``. The repr leaves headers out because they carry credentials.
    """

    __slots__ = ("method", "path", "headers", "body", "json")

    def __init__(self, method: str, path: str, headers: Any, body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        try:
            self.json: Any = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError):
            self.json = None

    def __repr__(self) -> str:
        return "<RecordedRequest %s %s (%d bytes)>" % (self.method, self.path, len(self.body))


def _loopback(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        if ipaddress.IPv4Address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise ValueError("the emulator only listens on IPv4 loopback, not %r" % host)


class Emulator:
    """A local GigaChat-compatible HTTP(S) server for tests, demos and offline work.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`)::

        with Emulator() as emu:
            requests.post(emu.auth_url, ...)

    Args:
        keys: accepted authorization keys (what goes after ``Basic``); the first is
            :attr:`api_key`.
        tls: serve HTTPS; without ``certfile`` a throwaway CA is made with ``trustme``
            and its PEM is :attr:`ca_bundle`.
        token_ttl: lifetime of issued access tokens, in seconds (settable).
        reply: reply text, or a callable taking the parsed request body and returning
            it; ``None`` answers ``"Echo: <last user message>"`` (settable).
        piece_size: characters per stream event; also the emulated token size.
        delay: seconds between stream events (settable).
        host, port: where to listen; loopback only, port 0 picks a free one.
        certfile, keyfile: serve this certificate instead of a generated one;
        ca_bundle: then reported as :attr:`ca_bundle`.
        models: model ids (type ``chat``) or ``(id, type)`` pairs.
        faults: initial :class:`Fault` objects.
        postpaid: answer ``GET /balance`` with 403, as for a post-paid account
            (settable); otherwise :attr:`balance` (usage -> tokens left, settable).

    Uploaded files live in :attr:`file_store` until the emulator is dropped.
    """

    def __init__(
        self,
        *,
        keys: Sequence[str] = (DEFAULT_KEY,),
        tls: bool = False,
        token_ttl: float = 1800.0,
        reply: ReplySource = None,
        piece_size: int = 8,
        delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        certfile: Optional[str] = None,
        keyfile: Optional[str] = None,
        ca_bundle: Optional[str] = None,
        models: Iterable[ModelSpec] = DEFAULT_MODELS,
        faults: Iterable[Fault] = (),
        postpaid: bool = False,
    ) -> None:
        if isinstance(keys, str) or not keys or not all(isinstance(k, str) and k for k in keys):
            raise ValueError("keys must be a non-empty sequence of non-empty strings")
        if piece_size < 1:
            raise ValueError("piece_size must be >= 1")
        self.keys: Tuple[str, ...] = tuple(keys)
        self.tls = tls or certfile is not None
        self.token_ttl = float(token_ttl)
        self.reply: ReplySource = reply
        self.piece_size = piece_size
        self.delay = float(delay)
        self.host = _loopback(host)
        self.port = port
        self._certfile, self._keyfile, self._given_ca = certfile, keyfile, ca_bundle
        self._models = [(m, "chat") if isinstance(m, str) else (m[0], m[1]) for m in models]
        self.requests: List[RecordedRequest] = []
        self.postpaid = postpaid
        self.balance: Dict[str, int] = dict(DEFAULT_BALANCE)
        self.file_store = FileStore()
        self._faults = FaultSet()
        for fault in faults:
            self._faults.add(fault)
        self._lock = threading.Lock()
        self._tokens: Dict[str, float] = {}
        self._oauth_calls = 0
        self._lifecycle = threading.Lock()
        self._server: Optional[EmulatorServer] = None
        self._thread: Optional[threading.Thread] = None
        self._tls_material: Optional[TLSMaterial] = None
        self._bound_port: Optional[int] = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> "Emulator":
        """Bind and serve in a background thread; a no-op when already running."""
        with self._lifecycle:
            if self._server is not None:
                return self
            context = None
            if self.tls:
                self._tls_material = make_tls(self._certfile, self._keyfile, self._given_ca)
                context = self._tls_material.context
            try:
                server = EmulatorServer((self.host, self.port), self, context)
            except BaseException:
                # stop() would not clean up after a server that never bound: do it here,
                # or the throwaway CA folder stays in /tmp.
                if self._tls_material is not None:
                    self._tls_material.cleanup()
                    self._tls_material = None
                raise
            self._bound_port = server.server_address[1]
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05},
                name="gigachat-emulator-accept", daemon=True,
            )
            self._server = server
            self._thread.start()
            return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: wake stalls, cut open connections, join threads. Idempotent."""
        with self._lifecycle:
            server, self._server = self._server, None
            if server is None:
                return
            server.stopping.set()
            server.shutdown()  # returns once the accept loop has exited
            server.close_all()
            server.server_close()
            server.join_workers(timeout)
            if self._thread is not None:
                self._thread.join(timeout)
            if self._tls_material is not None:
                self._tls_material.cleanup()

    def serve_forever(self) -> None:
        """Serve in the foreground until :meth:`stop` is called or Ctrl-C (for the CLI)."""
        self.start()
        thread = self._thread
        try:
            while thread is not None and thread.is_alive():
                thread.join(0.5)  # short joins keep KeyboardInterrupt deliverable
        finally:
            self.stop()

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._server is not None else "stopped"
        where = self.url if self._bound_port is not None else "unbound"
        return "<Emulator %s %s>" % (where, state)

    # -- addresses -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http(s)://127.0.0.1:PORT`` (the last bound port after :meth:`stop`)."""
        if self._bound_port is None:
            raise RuntimeError("the emulator has not been started; call start() or use `with`")
        return "%s://%s:%d" % ("https" if self.tls else "http", self.host, self._bound_port)

    @property
    def base_url(self) -> str:
        """The API base, ``url + "/api/v1"``."""
        return self.url + "/api/v1"

    @property
    def auth_url(self) -> str:
        """The OAuth endpoint, ``url + "/api/v2/oauth"``."""
        return self.url + OAUTH_PATH

    @property
    def ca_bundle(self) -> Optional[str]:
        """PEM file of the CA that signed the server certificate (TLS only), else None."""
        if not self.tls:
            return None
        if self._tls_material is None:
            return self._given_ca
        return self._tls_material.ca_bundle

    @property
    def api_key(self) -> str:
        """The first configured authorization key (a ``GIGACHAT_CREDENTIALS`` value)."""
        return self.keys[0]

    def client_config(self) -> Dict[str, str]:
        """Keyword arguments pointing a gigachat_lite client at this emulator."""
        config = {"api_key": self.api_key, "base_url": self.base_url, "auth_url": self.auth_url}
        if self.tls and self.ca_bundle is not None:
            config["ca_bundle"] = self.ca_bundle
        return config

    def env(self) -> Dict[str, str]:
        """``GIGACHAT_*`` variables read by both gigachat_lite and the official SDK."""
        env = {
            "GIGACHAT_CREDENTIALS": self.api_key,
            "GIGACHAT_BASE_URL": self.base_url,
            "GIGACHAT_AUTH_URL": self.auth_url,
        }
        if self.tls and self.ca_bundle is not None:
            env["GIGACHAT_CA_BUNDLE_FILE"] = self.ca_bundle
        return env

    # -- test controls -------------------------------------------------------------

    @property
    def oauth_calls(self) -> int:
        """How many requests reached the OAuth endpoint (whatever their outcome)."""
        with self._lock:
            return self._oauth_calls

    def add_fault(self, fault: Fault) -> None:
        """Inject ``fault`` into matching requests from now on."""
        self._faults.add(fault)

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._faults.clear()

    def revoke_tokens(self) -> None:
        """Invalidate every issued token: the API then answers 401 "Token has expired"."""
        with self._lock:
            self._tokens.clear()

    def set_reply(self, reply: ReplySource) -> None:
        """Replace the reply: fixed text, a callable of the request body, or None (echo)."""
        self.reply = reply

    # -- used by the endpoints -----------------------------------------------------

    def issue_token(self) -> Tuple[str, int]:
        """Make a token valid for :attr:`token_ttl`; return it and ``expires_at`` in ms."""
        token = secrets.token_urlsafe(48)
        expires = time.time() + self.token_ttl
        with self._lock:
            self._tokens[token] = expires
        return token, int(expires * 1000)

    def token_valid(self, token: str) -> bool:
        """Whether ``token`` was issued, is unexpired and not revoked."""
        with self._lock:
            expires = self._tokens.get(token)
        return expires is not None and time.time() < expires

    def model_list(self) -> List[Tuple[str, str]]:
        """The served models as ``(id, type)`` pairs."""
        return list(self._models)

    def _record(self, method: str, raw_path: str, path: str, headers: Any, body: bytes) -> None:
        request = RecordedRequest(method, raw_path, headers, body)
        with self._lock:
            self.requests.append(request)
            if path == OAUTH_PATH:
                self._oauth_calls += 1
