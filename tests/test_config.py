"""Configuration: argument > GIGACHAT_* variable > default, and every bad value named before any request."""

from __future__ import annotations

import pathlib

import pytest

from gigachat_lite import Config, MissingAuthError
from gigachat_lite.config import DEFAULT_AUTH_URL, DEFAULT_BASE_URL

KEY = "a2V5OnNlY3JldA=="


def test_defaults() -> None:
    c = Config.resolve(api_key=KEY, env={})
    assert (c.base_url, c.auth_url, c.scope, c.model) == (DEFAULT_BASE_URL, DEFAULT_AUTH_URL, "GIGACHAT_API_PERS", "GigaChat")
    assert c.verify is True and c.max_retries == 2 and c.timeout == 30.0


def test_argument_beats_environment_beats_default(tmp_path: pathlib.Path) -> None:
    env = {"GIGACHAT_CREDENTIALS": "env-key", "GIGACHAT_SCOPE": "GIGACHAT_API_B2B", "GIGACHAT_BASE_URL": "https://env.test/v1/",
           "GIGACHAT_TIMEOUT": "12.5", "GIGACHAT_MAX_RETRIES": "0", "GIGACHAT_MODEL": "GigaChat-Max",
           "GIGACHAT_VERIFY_SSL_CERTS": "False", "GIGACHAT_AUTH_URL": "https://auth.test/oauth"}
    from_env = Config.resolve(env=env)
    assert from_env.api_key == "env-key" and from_env.scope == "GIGACHAT_API_B2B"
    assert from_env.base_url == "https://env.test/v1" and from_env.timeout == 12.5 and from_env.max_retries == 0
    assert from_env.model == "GigaChat-Max" and from_env.verify is False and from_env.auth_url == "https://auth.test/oauth"
    from_args = Config.resolve(api_key="arg-key", scope="GIGACHAT_API_CORP", timeout=3, max_retries=5, verify=True, env=env)
    assert (from_args.api_key, from_args.scope, from_args.timeout, from_args.max_retries, from_args.verify) == (
        "arg-key", "GIGACHAT_API_CORP", 3.0, 5, True)


def test_gpt4free_variable_name_and_basic_prefix() -> None:
    assert Config.resolve(env={"GIGACHAT_API_KEY": "Basic " + KEY}).api_key == KEY


def test_cert_and_key_files_from_env(tmp_path: pathlib.Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("y")
    c = Config.resolve(api_key=KEY, env={"GIGACHAT_CERT_FILE": str(cert), "GIGACHAT_KEY_FILE": str(key)})
    assert c.cert == (str(cert), str(key))


def test_missing_auth() -> None:
    with pytest.raises(MissingAuthError):
        Config.resolve(env={})


def test_repr_and_str_hide_secrets() -> None:
    c = Config.resolve(api_key=KEY, access_token="tok-secret", env={})
    assert KEY not in repr(c) and "tok-secret" not in repr(c) and "api_key=***" in repr(c)


def test_equal_configs_hash_equal_and_are_immutable() -> None:
    a, b = Config.resolve(api_key=KEY, env={}), Config.resolve(api_key=KEY, env={})
    assert a == b and hash(a) == hash(b) and a != Config.resolve(api_key="other", env={})
    with pytest.raises(AttributeError):
        a.scope = "x"  # type: ignore[misc]


BAD = [
    (dict(scope="GIGACHAT_API_WRONG"), ValueError, "scope"),
    (dict(scope=1), ValueError, "scope"),
    (dict(timeout="soon"), ValueError, "timeout"),
    (dict(timeout=-1), ValueError, "timeout"),
    (dict(timeout=0), ValueError, "timeout"),
    (dict(timeout=float("nan")), ValueError, "timeout"),
    (dict(timeout=True), TypeError, "timeout"),
    (dict(timeout=(1, 2, 3)), ValueError, "timeout"),
    (dict(max_retries=-1), ValueError, "max_retries"),
    (dict(max_retries=1.5), TypeError, "max_retries"),
    (dict(max_retries="many"), TypeError, "max_retries"),
    (dict(ca_bundle="/no/such/bundle.pem"), ValueError, "ca_bundle"),
    (dict(ca_bundle=42), TypeError, "ca_bundle"),
    (dict(cert=("/no/cert.pem", "/no/key.pem")), ValueError, "cert"),
    (dict(cert=123), TypeError, "cert"),
    (dict(base_url="ftp://x"), ValueError, "base_url"),
    (dict(base_url="not a url"), ValueError, "base_url"),
    (dict(auth_url="https://"), ValueError, "auth_url"),
    (dict(proxy="localhost:3128"), ValueError, "proxy"),
    (dict(proxy="http://"), ValueError, "proxy"),
    (dict(proxy="http://host:notaport"), ValueError, "proxy"),
    (dict(proxy=3128), TypeError, "proxy"),
    (dict(verify="maybe"), ValueError, "verify"),
    (dict(model=5), TypeError, "model"),
    (dict(api_key=12345), TypeError, "api_key"),
    (dict(api_key="abc\ndef"), ValueError, "api_key"),
    (dict(refresh_margin=-5), ValueError, "refresh_margin"),
]


@pytest.mark.parametrize("kwargs,exc,name", BAD, ids=[f"{n}-{i}" for i, (_, _, n) in enumerate(BAD)])
def test_bad_values_name_the_setting(kwargs: dict, exc: type, name: str) -> None:
    full = {"api_key": KEY, **kwargs}
    with pytest.raises(exc) as info:
        Config.resolve(env={}, **full)
    assert name in str(info.value)
    assert "abc\ndef" not in str(info.value)


def test_bad_environment_values_name_the_variable_setting() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Config.resolve(api_key=KEY, env={"GIGACHAT_TIMEOUT": "ten"})
    with pytest.raises(ValueError, match="verify"):
        Config.resolve(api_key=KEY, env={"GIGACHAT_VERIFY_SSL_CERTS": "perhaps"})
    with pytest.raises(ValueError, match="ca_bundle"):
        Config.resolve(api_key=KEY, env={"GIGACHAT_CA_BUNDLE_FILE": "/nope.pem"})


def test_proxy_password_is_not_echoed() -> None:
    with pytest.raises(ValueError) as info:
        Config.resolve(api_key=KEY, env={}, proxy="ftp://user:hunter2@proxy:1")
    assert "hunter2" not in str(info.value)


def test_resolving_the_same_arguments_again_reuses_the_config_until_a_variable_or_file_changes(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # chat(**settings) resolves on every call; the remembered Config must never outlive what it was built from.
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    monkeypatch.delenv("GIGACHAT_MODEL", raising=False)
    first = Config.resolve(api_key=KEY, ca_bundle=str(bundle))
    assert Config.resolve(api_key=KEY, ca_bundle=str(bundle)) is first
    monkeypatch.setenv("GIGACHAT_MODEL", "GigaChat-Max")
    changed = Config.resolve(api_key=KEY, ca_bundle=str(bundle))
    assert changed is not first and changed.model == "GigaChat-Max"
    bundle.unlink()
    with pytest.raises(ValueError, match="no such file"):
        Config.resolve(api_key=KEY, ca_bundle=str(bundle))
    monkeypatch.delenv("GIGACHAT_CREDENTIALS", raising=False)
    monkeypatch.delenv("GIGACHAT_API_KEY", raising=False)
    monkeypatch.delenv("GIGACHAT_ACCESS_TOKEN", raising=False)
    with pytest.raises(MissingAuthError):  # a failure is never remembered as a success
        Config.resolve()
    with pytest.raises(MissingAuthError):
        Config.resolve()
    assert Config.resolve(api_key=KEY, timeout=[1, 2]).timeout == (1.0, 2.0)  # unhashable: resolved the long way


@pytest.mark.parametrize("name, variable", [("base_url", "GIGACHAT_BASE_URL"), ("auth_url", "GIGACHAT_AUTH_URL")])
def test_a_url_carrying_a_password_is_refused_and_never_shown(name: str, variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Never used for auth (the key or a token is), it would have shown in every error, log line and repr.
    url = "http://bob:PW_SECRET@127.0.0.1:9/api/v1"
    with pytest.raises(ValueError, match=f"{name} must not carry a user or password") as caught:
        Config.resolve(api_key="key", **{name: url})
    assert "PW_SECRET" not in str(caught.value)
    monkeypatch.setenv(variable, "ftp://bob:PW_SECRET@127.0.0.1:9/x")
    with pytest.raises(ValueError) as caught:
        Config.resolve(api_key="key")
    assert "PW_SECRET" not in str(caught.value)
