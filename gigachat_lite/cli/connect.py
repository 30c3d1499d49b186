"""From the command line's options to a :class:`Session`, with errors in CLI words."""

from __future__ import annotations

import argparse
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .exitcodes import UsageError
from .library import Config, MissingAuthError, Session
from .messages import remember_secret

__all__ = ["open_session", "in_cli_words", "list_models", "model_ids"]

# Each setting the library may name in an error: its flag (None: variable only) and its variables.
_SETTINGS: Tuple[Tuple[str, Optional[str], Tuple[str, ...]], ...] = (
    ("api_key", "--credentials-file", ("GIGACHAT_CREDENTIALS", "GIGACHAT_API_KEY")),
    ("access_token", None, ("GIGACHAT_ACCESS_TOKEN",)),
    ("scope", "--scope", ("GIGACHAT_SCOPE",)),
    ("base_url", "--base-url", ("GIGACHAT_BASE_URL",)),
    ("auth_url", "--auth-url", ("GIGACHAT_AUTH_URL",)),
    ("model", "--model", ("GIGACHAT_MODEL",)),
    ("ca_bundle", "--ca-bundle", ("GIGACHAT_CA_BUNDLE_FILE",)),
    ("verify", None, ("GIGACHAT_VERIFY_SSL_CERTS",)),
    ("cert", None, ("GIGACHAT_CERT_FILE", "GIGACHAT_KEY_FILE")),
    ("proxy", "--proxy", ()),
    ("timeout", "--timeout", ("GIGACHAT_TIMEOUT",)),
    ("api_version", "--api-version", ("GIGACHAT_API_VERSION",)),
    ("max_retries", None, ("GIGACHAT_MAX_RETRIES",)),
    ("coordination", "--coordination", ("GIGACHAT_COORDINATION",)),
    ("max_concurrency", "--max-concurrency", ("GIGACHAT_MAX_CONCURRENCY",)),
    # The settings only a variable sets (the library's keywords mean nothing to a shell user).
    ("user", None, ("GIGACHAT_USER",)),
    ("password", None, ("GIGACHAT_PASSWORD",)),
    ("coordination_fallback", None, ("GIGACHAT_COORDINATION_FALLBACK",)),
    ("max_cool_down", None, ("GIGACHAT_MAX_COOL_DOWN",)),
    ("deadline", None, ("GIGACHAT_DEADLINE",)),
    ("first_byte_timeout", None, ("GIGACHAT_FIRST_BYTE_TIMEOUT",)),
    ("max_event_size", None, ("GIGACHAT_MAX_EVENT_SIZE",)),
    ("max_reply_size", None, ("GIGACHAT_MAX_REPLY_SIZE",)),
    ("session_id", None, ("GIGACHAT_SESSION_ID",)),
    ("client_id", None, ("GIGACHAT_CLIENT_ID",)),
    ("trace_id", None, ("GIGACHAT_TRACE_ID",)),
    ("flags", None, ("GIGACHAT_FLAGS",)),
    ("profanity_check", None, ("GIGACHAT_PROFANITY_CHECK",)),
    ("temperature", "--temperature", ()),
    ("max_tokens", "--max-tokens", ()),
)


def in_cli_words(message: str, args: argparse.Namespace) -> str:
    """Replace the Python keyword a library message starts with by the flag or variable the user set."""
    for field, flag, variables in _SETTINGS:
        if message == field or message.startswith((field + " ", field + ":")):
            given = flag is not None and getattr(args, flag.lstrip("-").replace("-", "_"), None) is not None
            where = [name for name in variables if os.environ.get(name)]
            if given or not where:
                where = [flag or variables[0]]
            return " or ".join(where) + message[len(field):]
    return message


def _read_credentials_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            key = handle.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise UsageError(f"cannot read the credentials file {path}: {reason}") from None
    if not key:
        raise UsageError(f"the credentials file {path} is empty")
    remember_secret(key)
    return key


def open_session(args: argparse.Namespace) -> Session:
    """A :class:`Session` from the options, falling back to ``GIGACHAT_*``.

    Raises:
        UsageError: a malformed setting, named by its flag or variable.
        MissingAuthError: no key and no token anywhere.
    """
    if args.key_argument is not None:
        raise UsageError(
            "the key is not taken on the command line (it would show in process lists): "
            "set GIGACHAT_CREDENTIALS or use --credentials-file PATH"
        )
    for field, flag, _ in _SETTINGS:
        value = getattr(args, field, None) if flag else None
        if isinstance(value, str) and not value.strip():
            # The library reads an empty value as "not given" and would quietly use the default.
            raise UsageError(f"{flag} is empty")
    api_key = _read_credentials_file(args.credentials_file) if args.credentials_file else None
    try:
        config = Config.resolve(
            api_key=api_key, scope=args.scope, base_url=args.base_url, auth_url=args.auth_url,
            model=getattr(args, "model", None), ca_bundle=args.ca_bundle, proxy=args.proxy, timeout=args.timeout,
            api_version=args.api_version,
            # Only batch has these flags; elsewhere the variables apply.
            coordination=getattr(args, "coordination", None), max_concurrency=getattr(args, "max_concurrency", None),
        )
    except MissingAuthError:
        raise MissingAuthError(
            "no GigaChat credentials: set GIGACHAT_CREDENTIALS (or GIGACHAT_ACCESS_TOKEN), "
            "or use --credentials-file PATH"
        ) from None
    except (ValueError, TypeError) as exc:
        raise UsageError(in_cli_words(str(exc), args)) from None
    return Session(config=config)


def list_models(session: Session) -> List[Dict[str, Any]]:
    """The model objects of ``GET /models`` (the one place the CLI asks for them)."""
    return [model for model in session.models() if isinstance(model, dict)]


def model_ids(session: Session) -> Sequence[str]:
    return [str(model.get("id")) for model in list_models(session)]
