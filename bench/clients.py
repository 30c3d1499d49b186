"""The clients under test, each behind the same small interface.

Sync clients have ``stream(prompt)`` (consume a whole stream), ``first(prompt)``
(seconds to the first chunk, then consume the rest) and ``call(prompt)`` (one
non-stream reply). Async clients have the same as coroutines: ``astream``,
``afirst``, ``acall``. ``prompt`` is ``"x*N"`` for an N-event stream (see
bench/server.py).

Every client is built from the emulator's ``client_config()`` (``api_key``,
``base_url``, ``auth_url``, ``ca_bundle`` under TLS).
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import tempfile
import time
import uuid
from typing import Any, Dict, Optional
from urllib.parse import urlencode, urlsplit

Config = Dict[str, str]


def _ssl_context(config: Config) -> Optional[ssl.SSLContext]:
    if not config["base_url"].startswith("https"):
        return None
    return ssl.create_default_context(cafile=config["ca_bundle"])


# -- the floor: http.client, 64 KiB reads, split on the blank line, json.loads ----


class Floor:
    """What any client must spend: one kept-alive http.client connection, no SSE library."""

    is_async = False
    pooled = False  # one connection per instance: concurrent threads each need their own
    _token: Optional[str] = None

    def __init__(self, config: Config) -> None:
        api = urlsplit(config["base_url"])
        self.config = config
        self.path = api.path + "/chat/completions"
        self.context = _ssl_context(config)
        self.conn = self._connect(api)
        if Floor._token is None:
            Floor._token = self._fetch_token()
        self.headers = {"Authorization": "Bearer " + Floor._token, "Content-Type": "application/json"}

    def _connect(self, url: Any) -> http.client.HTTPConnection:
        if self.context is not None:
            return http.client.HTTPSConnection(url.hostname, url.port, context=self.context, timeout=60)
        return http.client.HTTPConnection(url.hostname, url.port, timeout=60)

    def _fetch_token(self) -> str:
        auth = urlsplit(self.config["auth_url"])
        conn = self._connect(auth)
        conn.request("POST", auth.path, urlencode({"scope": "GIGACHAT_API_PERS"}), {
            "Authorization": "Basic " + self.config["api_key"], "RqUID": str(uuid.uuid4()),
            "Content-Type": "application/x-www-form-urlencoded",
        })
        token = json.loads(conn.getresponse().read())["access_token"]
        conn.close()
        return token

    def _send(self, prompt: str, stream: bool) -> http.client.HTTPResponse:
        body = json.dumps({"model": "GigaChat", "messages": [{"role": "user", "content": prompt}], "stream": stream})
        self.conn.request("POST", self.path, body.encode(), self.headers)
        return self.conn.getresponse()

    def stream(self, prompt: str) -> None:
        response = self._send(prompt, True)
        read, loads = response.read, json.loads
        buffer = b""
        while True:
            block = read(65536)
            if not block:
                break
            events = (buffer + block).split(b"\n\n")
            buffer = events.pop()
            for event in events:
                if event != b"data: [DONE]":
                    loads(event[6:])

    def first(self, prompt: str) -> float:
        start = time.perf_counter()
        response = self._send(prompt, True)
        buffer = b""
        while True:
            buffer += response.read1(65536)  # whatever has arrived: a 64 KiB read() would wait for the end
            end = buffer.find(b"\n\n")
            if end >= 0:
                json.loads(buffer[6:end])
                break
        elapsed = time.perf_counter() - start
        response.read()
        return elapsed

    def call(self, prompt: str) -> None:
        json.loads(self._send(prompt, False).read())


# -- gigachat_lite ---------------------------------------------------------------------


class LiteChat:
    """``gigachat_lite.chat()``: the shared session per configuration."""

    is_async = False

    def __init__(self, config: Config) -> None:
        import gigachat_lite

        self.chat = gigachat_lite.chat
        self.config = config

    def stream(self, prompt: str) -> None:
        for _ in self.chat(prompt, **self.config):
            pass

    def first(self, prompt: str) -> float:
        start = time.perf_counter()
        stream = self.chat(prompt, **self.config)
        next(stream)
        elapsed = time.perf_counter() - start
        for _ in stream:
            pass
        return elapsed

    def call(self, prompt: str) -> None:
        self.chat(prompt, stream=False, **self.config)


class LiteSession(LiteChat):
    """``gigachat_lite.Session(...).chat()``."""

    def __init__(self, config: Config) -> None:
        import gigachat_lite

        self.session = gigachat_lite.Session(**config)
        self.chat = self.session.chat
        self.config = {}


class LiteFullBundle(LiteChat):
    """``chat()`` trusting what a real user's session trusts (our default bundle) plus the emulator's CA.

    The emulator's bundle holds one CA; the default one (certifi + the Russian
    root) is ~236 KB: this row shows what loading it costs 100 streams at once
    (the session loads it once into an SSL context its connections share).
    """

    def __init__(self, config: Config) -> None:
        import gigachat_lite

        if "ca_bundle" in config:
            # What a session trusts by default (requests' own ``verify``), whatever the config says.
            default_bundle = gigachat_lite.Session(access_token="bench").verify
            path = os.path.join(tempfile.gettempdir(), "gigachat_lite-bench-full-bundle.pem")
            with open(default_bundle, "rb") as default, open(config["ca_bundle"], "rb") as own:
                data = default.read() + b"\n" + own.read()
            with open(path, "wb") as out:
                out.write(data)
            config = dict(config, ca_bundle=path)
        super().__init__(config)


class LiteAio:
    """``gigachat_lite.aio.chat()``: the sync stream in its own thread, chunks handed to the loop."""

    is_async = True

    def __init__(self, config: Config) -> None:
        from gigachat_lite import aio

        self.aio = aio
        self.config = config

    async def astream(self, prompt: str) -> None:
        async for _ in self.aio.chat(prompt, **self.config):
            pass

    async def afirst(self, prompt: str) -> float:
        start = time.perf_counter()
        stream = self.aio.chat(prompt, **self.config)
        await stream.__anext__()
        elapsed = time.perf_counter() - start
        async for _ in stream:
            pass
        return elapsed

    async def acall(self, prompt: str) -> None:
        async for _ in self.aio.chat(prompt, stream=False, **self.config):
            pass


# -- the official SDK (gigachat, on httpx) -----------------------------------------------


def _sdk(config: Config) -> Any:
    from gigachat import GigaChat

    return GigaChat(
        credentials=config["api_key"], base_url=config["base_url"], auth_url=config["auth_url"],
        model="GigaChat", scope="GIGACHAT_API_PERS", ca_bundle_file=config.get("ca_bundle"), verify_ssl_certs=True, timeout=60,
    )


class SdkSync:
    """The official SDK, ``GigaChat.stream()`` / ``.chat()``."""

    is_async = False

    def __init__(self, config: Config) -> None:
        self.client = _sdk(config)

    def stream(self, prompt: str) -> None:
        for _ in self.client.stream(prompt):
            pass

    def first(self, prompt: str) -> float:
        start = time.perf_counter()
        stream = self.client.stream(prompt)
        next(stream)
        elapsed = time.perf_counter() - start
        for _ in stream:
            pass
        return elapsed

    def call(self, prompt: str) -> None:
        self.client.chat(prompt)


class SdkAsync:
    """The official SDK, ``GigaChat.astream()`` / ``.achat()``."""

    is_async = True

    def __init__(self, config: Config) -> None:
        self.client = _sdk(config)

    async def astream(self, prompt: str) -> None:
        async for _ in self.client.astream(prompt):
            pass

    async def afirst(self, prompt: str) -> float:
        start = time.perf_counter()
        stream = self.client.astream(prompt)
        await stream.__anext__()
        elapsed = time.perf_counter() - start
        async for _ in stream:
            pass
        return elapsed

    async def acall(self, prompt: str) -> None:
        await self.client.achat(prompt)


# -- gpt4free's GigaChat provider (aiohttp) -----------------------------------------------


class G4F:
    """gpt4free's ``GigaChat`` provider, its hard-coded Sber URLs redirected to the emulator.

    ``aiohttp.ClientSession.post`` is wrapped to rewrite the two URLs; the OAuth
    request's ``Bearer <key>`` (a gpt4free bug: Sber wants ``Basic``) is sent as
    ``Basic`` so the emulator accepts it. A fresh ``TCPConnector`` trusting the
    emulator's CA is passed per call (the provider closes its session, and with
    it the connector, after each call).
    """

    is_async = True

    def __init__(self, config: Config) -> None:
        import aiohttp
        from g4f.Provider import GigaChat

        self.provider = GigaChat
        self.config = config
        self.context = _ssl_context(config)
        self.aiohttp = aiohttp
        original = aiohttp.ClientSession.post
        if not getattr(original, "_bench", False):
            def post(session: Any, url: Any, **kwargs: Any) -> Any:
                if str(url).endswith("/api/v2/oauth"):
                    url = config["auth_url"]
                    headers = dict(kwargs.get("headers") or {})
                    headers["Authorization"] = headers["Authorization"].replace("Bearer ", "Basic ", 1)
                    kwargs["headers"] = headers
                elif str(url).endswith("/chat/completions"):
                    url = config["base_url"] + "/chat/completions"
                return original(session, url, **kwargs)

            post._bench = True  # type: ignore[attr-defined]
            aiohttp.ClientSession.post = post  # type: ignore[method-assign]

    def _generator(self, prompt: str, stream: bool) -> Any:
        connector = self.aiohttp.TCPConnector(ssl=self.context if self.context is not None else False)
        return self.provider.create_async_generator(
            "GigaChat", [{"role": "user", "content": prompt}], stream=stream,
            api_key=self.config["api_key"], connector=connector,
        )

    async def astream(self, prompt: str) -> None:
        async for _ in self._generator(prompt, True):
            pass

    async def afirst(self, prompt: str) -> float:
        start = time.perf_counter()
        stream = self._generator(prompt, True)
        await stream.__anext__()
        elapsed = time.perf_counter() - start
        async for _ in stream:
            pass
        return elapsed

    async def acall(self, prompt: str) -> None:
        async for _ in self._generator(prompt, False):
            pass


# -- v2 (named events), against the same emulator's /api/v2/chat/completions ----------------


class FloorV2(Floor):
    """The floor fed v2 framing: split on the blank line, skip the ``event:`` line, json.loads the data."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.path = self.path.replace("/v1/chat/completions", "/v2/chat/completions")

    def _send(self, prompt: str, stream: bool) -> http.client.HTTPResponse:
        body = json.dumps({"model": "GigaChat", "messages": [{"role": "user", "content": [{"text": prompt}]}],
                           "stream": stream})
        self.conn.request("POST", self.path, body.encode(), self.headers)
        return self.conn.getresponse()

    def stream(self, prompt: str) -> None:
        response = self._send(prompt, True)
        read, loads = response.read, json.loads
        buffer = b""
        while True:
            block = read(65536)
            if not block:
                break
            events = (buffer + block).split(b"\n\n")
            buffer = events.pop()
            for event in events:
                loads(event[event.index(b"\ndata: ") + 7:])

    def first(self, prompt: str) -> float:
        start = time.perf_counter()
        response = self._send(prompt, True)
        buffer = b""
        while True:
            buffer += response.read1(65536)
            end = buffer.find(b"\n\n")
            if end >= 0:
                json.loads(buffer[buffer.index(b"\ndata: ") + 7:end])
                break
        elapsed = time.perf_counter() - start
        response.read()
        return elapsed


def _v2(config: Config) -> Config:
    return dict(config, api_version="v2")


class LiteV2(LiteChat):
    """``gigachat_lite.chat(..., api_version="v2")``."""

    def __init__(self, config: Config) -> None:
        super().__init__(_v2(config))


class LiteAioV2(LiteAio):
    """``gigachat_lite.aio.chat(..., api_version="v2")``."""

    def __init__(self, config: Config) -> None:
        super().__init__(_v2(config))


CLIENTS = {
    "floor": Floor,
    "floor-v2": FloorV2,
    "lite-v2": LiteV2,
    "lite-aio-v2": LiteAioV2,
    "lite": LiteChat,
    "lite-session": LiteSession,
    "lite-bundle": LiteFullBundle,
    "lite-aio": LiteAio,
    "sdk": SdkSync,
    "sdk-async": SdkAsync,
    "g4f": G4F,
}

LABELS = {
    "floor": "floor: http.client + json.loads",
    "floor-v2": "floor, v2 framing",
    "lite-v2": "gigachat_lite chat(), v2",
    "lite-aio-v2": "gigachat_lite aio.chat(), v2",
    "lite": "gigachat_lite chat()",
    "lite-session": "gigachat_lite Session.chat()",
    "lite-bundle": "gigachat_lite chat(), default CA bundle",
    "lite-aio": "gigachat_lite aio.chat()",
    "sdk": "gigachat SDK stream()",
    "sdk-async": "gigachat SDK astream()",
    "g4f": "g4f GigaChat (aiohttp)",
}
