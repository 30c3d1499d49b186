"""The :class:`Emulator`: state (keys, tokens, faults, recorded requests) and lifecycle."""

import base64
import threading
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .assistants import AssistantStore
from .batches import BatchStore
from .catalog import DEFAULT_BALANCE, DEFAULT_MODELS, ModelSpec
from .faults import Fault, FaultSet
from .files import FileStore
from .prompt_cache import PromptCache
from .replies import ReplySource
from .routes import OAUTH_PATH
from .server import EmulatorServer, loopback
from .state import Ledger, RecordedRequest, basic_key, bearer_token
from .thread_store import ThreadStore
from .tls import TLSMaterial, make_tls
from .users import Users

__all__ = ["DEFAULT_KEY", "Emulator", "RecordedRequest"]

#: The default authorization key: base64 of ``emulator-client-id:emulator-secret``.
#: Deliberately readable so nobody mistakes it for a real credential.
DEFAULT_KEY = base64.b64encode(b"emulator-client-id:emulator-secret").decode("ascii")
CALL_IDS = ("parallel", "always")



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
        max_in_flight: at most this many requests and streams answered at once per
            authorization key (counted through the key that obtained the bearer
            token); over it the API answers 429 with ``Retry-After: retry_after`` and
            GigaChat's error body, as for a personal key's limit of 1. ``None``
            (default): no limit. Settable.
        retry_after: the ``Retry-After`` seconds of those 429s.
        users: ``{"name": "password"}`` pairs accepted by ``POST {base}/token`` (HTTP
            Basic, the SDK's ``user=``/``password=`` auth); :attr:`users` counts their
            logins. Their tokens count as the key ``"user:<name>"`` in :attr:`ledger`.
        prompt_cache_ttl: seconds a session's prompt prefixes stay cached after its
            last request (``X-Session-ID``; see ``prompt_cache``). Settable through
            ``prompt_cache.ttl``.
        call_ids: ``"parallel"`` (default): function calls carry an ``id`` when a v2
            reply makes several, as the SDK expects; a lone call has none, as recorded.
            ``"always"``: every call has one, v1's too (settable).

    Uploaded files live in :attr:`file_store` (``file_store.uploads`` counts them; chats
    referencing files are checked against GigaChat's limits, see ``files``), assistants in :attr:`assistants`,
    threads in :attr:`threads` and batch jobs in :attr:`batches` (its
    ``start_delay``, ``line_time`` and ``drop_ids`` are settable) until the emulator
    is dropped; issued tokens and the per-key counters in :attr:`ledger`.
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
        max_in_flight: Optional[int] = None,
        retry_after: int = 1,
        users: Optional[Mapping[str, str]] = None,
        prompt_cache_ttl: float = 30.0,
        call_ids: str = "parallel",
    ) -> None:
        if isinstance(keys, str) or not keys or not all(isinstance(k, str) and k for k in keys):
            raise ValueError("keys must be a non-empty sequence of non-empty strings")
        if piece_size < 1:
            raise ValueError("piece_size must be >= 1")
        if call_ids not in CALL_IDS:
            raise ValueError("call_ids must be one of %s, got %r" % (", ".join(CALL_IDS), call_ids))
        if max_in_flight is not None and (isinstance(max_in_flight, bool) or max_in_flight < 1):
            raise ValueError("max_in_flight must be None or an int >= 1, got %r" % (max_in_flight,))
        self.keys: Tuple[str, ...] = tuple(keys)
        self.tls = tls or certfile is not None
        self.token_ttl = float(token_ttl)
        self.reply: ReplySource = reply
        self.piece_size = piece_size
        self.delay = float(delay)
        self.host = loopback(host)
        self.port = port
        self._certfile, self._keyfile, self._given_ca = certfile, keyfile, ca_bundle
        self._models = [(m, "chat") if isinstance(m, str) else (m[0], m[1]) for m in models]
        self.requests: List[RecordedRequest] = []
        self.postpaid = postpaid
        self.balance: Dict[str, int] = dict(DEFAULT_BALANCE)
        self.file_store = FileStore()
        self.users = Users(users)
        self.prompt_cache = PromptCache(prompt_cache_ttl)
        self.call_ids = call_ids
        self.assistants = AssistantStore()
        self.threads = ThreadStore()
        self.batches = BatchStore()
        self._faults = FaultSet()
        for fault in faults:
            self._faults.add(fault)
        self.max_in_flight = max_in_flight
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self.ledger = Ledger()  # per-key counters, exact under concurrency
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
        """How many requests reached the OAuth endpoint (whatever their outcome).

        Per key: ``emulator.ledger.oauth_calls(key)``; :attr:`ledger` also counts
        each key's requests in flight, their peak and the 429s of ``max_in_flight``.
        """
        return self.ledger.oauth_calls()

    @property
    def too_many_requests(self) -> int:
        """How many 429s the ``max_in_flight`` limit has sent, for every key."""
        return self.ledger.refused()

    def add_fault(self, fault: Fault) -> None:
        """Inject ``fault`` into matching requests from now on."""
        self._faults.add(fault)

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._faults.clear()

    def revoke_tokens(self) -> None:
        """Invalidate every issued token: the API then answers 401 "Token has expired"."""
        self.ledger.revoke_all()

    def set_reply(self, reply: ReplySource) -> None:
        """Replace the reply: fixed text, a callable of the request body, or None (echo)."""
        self.reply = reply

    # -- used by the routes and the handler -------------------------------------

    def issue_token(self, key: Optional[str] = None) -> Tuple[str, int]:
        """Make a token valid for :attr:`token_ttl`; return it and ``expires_at`` in ms.

        The token counts as obtained by ``key`` (default: :attr:`api_key`).
        """
        return self.ledger.issue(key or self.api_key, self.token_ttl)

    def token_for(self, key: str) -> Tuple[str, int]:
        """What OAuth hands ``key``: made by :meth:`issue_token` (tests wrap it), owned by ``key``."""
        token, expires_at = self.issue_token()
        self.ledger.bind(token, key)
        return token, expires_at

    def token_valid(self, token: str) -> bool:
        """Whether ``token`` was issued, is unexpired and not revoked."""
        return self.ledger.key_of(token) is not None

    def model_list(self) -> List[Tuple[str, str]]:
        """The served models as ``(id, type)`` pairs."""
        return list(self._models)

    def record(self, method: str, raw_path: str, path: str, headers: Any, body: bytes) -> None:
        """Keep a request in :attr:`requests`; count it when it went to OAuth."""
        with self._lock:
            self.requests.append(RecordedRequest(method, raw_path, headers, body))
        if path == OAUTH_PATH:
            self.ledger.count_oauth(basic_key(headers))

    def take_fault(self, path: str, streaming: bool) -> Optional[Fault]:
        """The fault to apply to this request (counting one use), or ``None``."""
        return self._faults.take(path, streaming)

    def admit(self, path: str, headers: Any) -> Tuple[bool, Optional[str]]:
        """Take an in-flight slot for an API request: (admitted, key to ``ledger.leave``)."""
        token = None if path == OAUTH_PATH else bearer_token(headers)
        return self.ledger.admit(token, self.max_in_flight)
