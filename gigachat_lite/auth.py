"""Bearer-token auth that fetches, caches, shares and refreshes GigaChat tokens.

* :class:`TokenAuth` is a :class:`requests.auth.AuthBase`: it sets
  ``Authorization: Bearer <token>`` and, like requests' ``HTTPDigestAuth``,
  registers a response hook that answers one 401 by dropping the token,
  fetching a fresh one and resending **once** through the same adapter. The
  resend does not pass through the hook again, so there is at most one retry
  by construction.
* The token cache is process-wide and keyed by (auth URL, key, scope): calls
  with one key share a token, different keys never do. Concurrent callers that
  find the token missing or stale collapse into one OAuth request (a lock per
  key and a re-check under it): the OAuth endpoint allows ~10 requests/second.

Nothing here logs or formats a key or a token.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Dict, Hashable, Optional, Protocol

import requests
from requests.auth import AuthBase

from .errors import AuthenticationError, error_from_response, translate
from ._http.body import read_body
from ._redact import remember

if TYPE_CHECKING:
    from .config import Config

__all__ = [
    "Token", "TokenCache", "TokenStore", "TokenAuth", "TOKENS", "fetch_token", "fetch_user_token", "oauth_request",
    "parse_token_reply", "MAX_TOKEN_LIFETIME",
]

log = logging.getLogger("gigachat_lite")


class Token:
    """An access token and its expiry (seconds since the epoch). Its repr hides the value."""

    __slots__ = ("value", "expires_at", "obtained_at")

    def __init__(self, value: str, expires_at: float, obtained_at: Optional[float] = None) -> None:
        self.value = value
        self.expires_at = expires_at
        self.obtained_at = time.time() if obtained_at is None else obtained_at

    def fresh(self, margin: float, now: Optional[float] = None) -> bool:
        """True while more than ``margin`` seconds remain.

        The margin never exceeds half the token's lifetime, so a short-lived
        token (a test server's, say) is still used rather than refetched on
        every call.
        """
        now = time.time() if now is None else now
        lifetime = self.expires_at - self.obtained_at
        return now < self.expires_at - min(margin, max(lifetime, 0.0) / 2)

    def __repr__(self) -> str:
        return f"<Token expires_at={self.expires_at:.0f}>"


# What a bearer token may hold (RFC 6750's b64token, which GigaChat's JWT-like tokens are):
# anything else (CR LF, a folded line, non-ASCII) would corrupt the header or fail to encode.
_TOKEN_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")
# A token lives 30 minutes; an expiry further off than this is not believed (and would
# overflow the stores' time-outs): the token is used for this long at most, then refreshed.
MAX_TOKEN_LIFETIME = 24 * 3600.0


def _why(exc: BaseException) -> str:
    return "it is nested too deeply to read" if isinstance(exc, RecursionError) else str(exc)


def parse_token_reply(payload: Any, now: Optional[float] = None) -> Token:
    """Read ``{"access_token", "expires_at"}`` (or the user/password reply's ``{"tok", "exp"}``), checked.

    ``expires_at`` is milliseconds since the epoch (a value below 10**10 is
    taken as seconds, as the official SDK does); an expiry more than
    :data:`MAX_TOKEN_LIFETIME` away is brought back to that.

    Raises:
        ValueError: no usable token (never quoting it) or no usable expiry.
    """
    if not isinstance(payload, dict):
        raise ValueError("the reply is not a JSON object")
    value = payload.get("access_token", payload.get("tok"))
    if not isinstance(value, str) or not value:
        raise ValueError("the reply has no access_token")
    if not _TOKEN_CHARACTERS.issuperset(value):
        raise ValueError("the access token holds characters a bearer token cannot have (the token is not shown)")
    expires = payload.get("expires_at", payload.get("exp"))
    if (isinstance(expires, bool) or not isinstance(expires, (int, float)) or expires <= 0
            or (isinstance(expires, float) and not math.isfinite(expires))):
        raise ValueError(f"the reply has no usable expires_at (got {expires!r:.40})")
    try:
        seconds = float(expires) if expires < 10**10 else expires / 1000.0
    except OverflowError:  # an int past floats
        raise ValueError(f"the reply has no usable expires_at (got {expires!r:.40}...)") from None
    now = time.time() if now is None else now
    return Token(value, min(seconds, now + MAX_TOKEN_LIFETIME), obtained_at=now)


class _Slot:
    __slots__ = ("lock", "token", "generation", "error")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token: Optional[Token] = None
        self.generation = 0  # bumped when a fetch ends, so waiters know one happened meanwhile
        self.error: Optional[BaseException] = None


class TokenCache:
    """Tokens shared by every session in the process, one slot per (auth URL, key, scope).

    At most ``max_keys`` keys are remembered (least recently used first out:
    a process cycling through many keys keeps ~2 KB for each of the last
    ``max_keys``, not for every key it ever used); a forgotten key's next call
    fetches a new token.
    """

    def __init__(self, max_keys: int = 256) -> None:
        self._slots: "OrderedDict[Hashable, _Slot]" = OrderedDict()
        self._lock = threading.Lock()
        self.max_keys = max_keys

    def _slot(self, key: Hashable) -> _Slot:
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot()
                while len(self._slots) > self.max_keys:
                    self._slots.popitem(last=False)
            else:
                self._slots.move_to_end(key)
        return slot

    def __len__(self) -> int:
        return len(self._slots)

    def get(self, key: Hashable, fetch: Callable[[], Token], margin: float) -> Token:
        """The cached token if fresh, else one fetched by exactly one of the concurrent callers."""
        slot = self._slot(key)
        token = slot.token
        if token is not None and token.fresh(margin):
            return token
        seen = slot.generation
        with slot.lock:
            token = slot.token
            if token is not None and token.fresh(margin):
                return token
            if slot.generation != seen and slot.error is not None:
                # Someone fetched while we waited, and it failed: the same key would
                # fail again, so share the outcome rather than queue N more requests.
                raise slot.error
            try:
                token = fetch()
            except BaseException as exc:
                slot.error = exc
                raise
            else:
                slot.error = None
                slot.token = token
            finally:
                slot.generation += 1
            return token

    def peek(self, key: Hashable) -> Optional[Token]:
        slot = self._slots.get(key)
        return slot.token if slot is not None else None

    def invalidate(self, key: Hashable, value: str) -> None:
        """Drop the token ``value`` if it is still the cached one (a newer one is kept)."""
        slot = self._slots.get(key)
        if slot is None:
            return
        with slot.lock:
            if slot.token is not None and slot.token.value == value:
                slot.token = None

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()

    def after_fork(self) -> None:
        """In a forked child: fresh locks (another parent thread may have held one); tokens stay valid."""
        self._lock = threading.Lock()
        for slot in list(self._slots.values()):
            slot.lock = threading.Lock()


TOKENS = TokenCache()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=TOKENS.after_fork)


class TokenStore(Protocol):
    """What :class:`TokenAuth` needs of a token cache: :class:`TokenCache`, or the
    fleet-wide :class:`~gigachat_lite.coordination.SharedTokenCache`."""

    def get(self, key: Hashable, fetch: Callable[[], Token], margin: float) -> Token: ...

    def peek(self, key: Hashable) -> Optional[Token]: ...

    def invalidate(self, key: Hashable, value: str) -> None: ...

    def clear(self) -> None: ...


def oauth_request(session: requests.Session, url: str, api_key: str, scope: str, timeout: Any) -> requests.Response:
    """POST the OAuth form exactly as GigaChat expects it (the body left unread); the caller checks the reply."""
    import uuid  # only when a token is fetched: uuid imports platform, ~2 ms at import time

    return session.post(
        url,
        data={"scope": scope},
        headers={
            "Authorization": f"Basic {api_key}",
            "RqUID": str(uuid.uuid4()),
            "Accept": "application/json",
        },
        auth=_no_auth,
        timeout=timeout,
        stream=True,  # read within max_reply_size by fetch_token
    )


def fetch_token(session: requests.Session, config: "Config", timeout: Any) -> Token:
    """Get a new access token for ``config``'s key over ``session``; raise ours on any failure."""
    assert config.api_key is not None
    remember(config.api_key)  # an OAuth error body that echoes it is scrubbed
    log.debug("requesting an access token from %s (scope %s)", config.auth_url, config.scope)
    try:
        response = oauth_request(session, config.auth_url, config.api_key, config.scope, timeout)
    except requests.RequestException as exc:
        raise translate(exc, url=config.auth_url, bundle=session.verify) from exc
    if response.status_code >= 400:
        raise error_from_response(response, oauth=True)
    read_body(response, config.max_reply_size, bundle=session.verify)
    try:
        token = parse_token_reply(response.json())
    except (ValueError, RecursionError) as exc:  # RecursionError: nested past the JSON parser's depth
        raise AuthenticationError(f"unusable OAuth reply from {config.auth_url}: {_why(exc)}", status_code=response.status_code) from None
    remember(token.value)
    log.debug("got an access token valid for %.0f s", token.expires_at - token.obtained_at)
    return token


def fetch_user_token(session: requests.Session, config: "Config", timeout: Any) -> Token:
    """Get a token for ``config``'s user and password (``POST {base_url}/token``, Basic, as the official SDK does)."""
    assert config.user is not None and config.password is not None
    remember(config.password, min_length=4)
    url = config.base_url + "/token"
    log.debug("requesting an access token for a user from %s", url)
    try:
        response = session.post(url, auth=(config.user, config.password), headers={"Accept": "application/json"},
                                timeout=timeout, stream=True)
    except requests.RequestException as exc:
        raise translate(exc, url=url, bundle=session.verify) from exc
    if response.status_code >= 400:
        error = error_from_response(response)
        if response.status_code in (400, 401, 403):
            raise AuthenticationError(f"the user and password were refused: {error.message}", status_code=response.status_code,
                                      request_id=error.request_id, response=error.response) from None
        raise error
    read_body(response, config.max_reply_size, bundle=session.verify)
    try:
        token = parse_token_reply(response.json())
    except (ValueError, RecursionError) as exc:
        raise AuthenticationError(f"unusable token reply from {url}: {_why(exc)}", status_code=response.status_code) from None
    remember(token.value)
    return token


def _drain(response: requests.Response) -> None:
    """Read a small refused reply to its end, so its connection can go back to the pool (any other is closed)."""
    length = response.headers.get("content-length", "")
    if length.strip().isdigit() and int(length) <= 65536:
        try:
            response.content
        except requests.RequestException:
            pass


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    # An explicit per-request auth, or requests would apply the session's TokenAuth.
    return request


class TokenAuth(AuthBase):
    """Puts ``Bearer <token>`` on each request and recovers once from a 401.

    Args:
        fetch: gets a new token from OAuth; ``None`` when only a fixed token is known.
        cache_key: the slot in ``cache`` (auth URL, key, scope).
        access_token: a token given by the user, used as is until a 401 (then, if
            ``fetch`` is set, OAuth takes over).
        margin: refresh when fewer than this many seconds remain.
        cache: where tokens are shared (the process's :data:`TOKENS` by default).
    """

    def __init__(
        self,
        fetch: Optional[Callable[[], Token]],
        *,
        cache_key: Hashable = None,
        access_token: Optional[str] = None,
        margin: float = 60.0,
        cache: TokenStore = TOKENS,
    ) -> None:
        if fetch is None and not access_token:
            raise ValueError("TokenAuth needs a fetch function or an access token")
        if access_token:
            remember(access_token)
        self._fetch = fetch
        self._key = cache_key
        self._static = access_token
        self._margin = margin
        self._cache = cache

    @property
    def refreshable(self) -> bool:
        return self._fetch is not None

    def current(self) -> Token:
        """The token the next request will carry (fetched if needed)."""
        if self._static is not None:
            return Token(self._static, float("inf"))
        assert self._fetch is not None
        return self._cache.get(self._key, self._fetch, self._margin)

    def cached(self) -> Optional[Token]:
        """The token in use now, without fetching."""
        if self._static is not None:
            return Token(self._static, float("inf"))
        return self._cache.peek(self._key)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = "Bearer " + self.current().value
        if self._fetch is not None:
            request.register_hook("response", self.handle_401)  # type: ignore[no-untyped-call]
        return request

    def handle_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        """Response hook: on 401, drop the token, fetch one, resend once."""
        if response.status_code != 401 or self._fetch is None:
            return response
        used = response.request.headers.get("Authorization", "")[len("Bearer "):]
        if self._static is not None and used == self._static:
            self._static = None  # the user's token has expired: the key takes over from here
        else:
            self._cache.invalidate(self._key, used)
        _drain(response)
        response.close()
        retry = response.request.copy()
        # PreparedRequest.copy() shares the hooks dict; give the resend its own,
        # without this hook, so a second 401 is returned to the caller as is.
        retry.hooks = {"response": [h for h in response.request.hooks.get("response", []) if h != self.handle_401]}
        retry.headers["Authorization"] = "Bearer " + self.current().value
        resent = response.connection.send(retry, **kwargs)
        resent.history.append(response)
        resent.request = retry
        return resent
