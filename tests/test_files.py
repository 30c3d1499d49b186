"""Files the library writes: concurrent CA bundle writers, and calls with an unwritable cache folder.

The bundle is the one a Session mounts (``Session(...).verify``) for the cache
folder ``GIGACHAT_LITE_CACHE_DIR``; the library writes a folder's bundle once
per process, so writers reach the same folder again through fresh aliases.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
import textwrap
import time
from typing import Dict

import pytest

from gigachat_lite import GigaChat, Session, chat
from gigachat_lite.emulator import Emulator

BUNDLE_FILENAME = "russian_trusted_root_ca.crt"

WRITER = textwrap.dedent(
    """
    import os, pathlib, sys, tempfile
    import gigachat_lite
    target, old, me = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]).read_bytes(), sys.argv[3]
    for i in range(40):
        if (i + int(me)) % 2:
            # An older library's bundle, written the safe way (temp file + rename) as ours is.
            fd, tmp = tempfile.mkstemp(prefix=".older-", dir=str(target.parent))
            with os.fdopen(fd, "wb") as handle:
                handle.write(old)
            os.replace(tmp, target)
        else:
            # A folder name this process has not used: the library checks the file and rewrites it.
            alias = target.parent.parent / f"alias-{me}-{i}"
            alias.symlink_to(target.parent, target_is_directory=True)
            os.environ["GIGACHAT_LITE_CACHE_DIR"] = str(alias)
            assert gigachat_lite.Session(api_key="a2V5").verify == str(alias / target.name)
    """
)


def library_bundle(folder: pathlib.Path) -> bytes:
    """What the library writes as the bundle (in ``folder``)."""
    before = os.environ.get("GIGACHAT_LITE_CACHE_DIR")
    os.environ["GIGACHAT_LITE_CACHE_DIR"] = str(folder)
    try:
        with Session(api_key="a2V5") as s:
            return pathlib.Path(str(s.verify)).read_bytes()
    finally:
        if before is None:
            del os.environ["GIGACHAT_LITE_CACHE_DIR"]
        else:
            os.environ["GIGACHAT_LITE_CACHE_DIR"] = before


def concurrent_writers(folder: pathlib.Path, processes: int = 10) -> Dict[str, int]:
    """``processes`` processes each rewrite the bundle 40 times (half through the library, half an older
    bundle as an older version would), while this process reads it as fast as it can. Returns what was observed."""
    new = library_bundle(folder / "reference")
    old = b"# an older bundle\n" + new[: len(new) // 2]  # a different length too: a torn write would show
    (folder / "old").write_bytes(old)
    cache = folder / "cache"
    cache.mkdir()
    target = cache / BUNDLE_FILENAME
    target.write_bytes(old)
    digests = {hashlib.sha256(new).hexdigest(): "new", hashlib.sha256(old).hexdigest(): "old"}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(folder / "old"), str(n)], env=env)
             for n in range(processes)]
    seen: Dict[str, int] = {}
    reads = 0
    deadline = time.monotonic() + 120
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            kind = "missing"
        else:
            kind = digests.get(hashlib.sha256(data).hexdigest(), "corrupt")
        seen[kind] = seen.get(kind, 0) + 1
        reads += 1
    codes = [p.wait(30) for p in procs]
    leftovers = [p.name for p in cache.iterdir() if p.name != BUNDLE_FILENAME]
    return {"reads": reads, "new": seen.get("new", 0), "old": seen.get("old", 0), "missing": seen.get("missing", 0),
            "corrupt": seen.get("corrupt", 0), "failed_writers": sum(c != 0 for c in codes), "temp_left": len(leftovers)}


@pytest.mark.slow  # ten processes
def test_ten_processes_rewriting_the_bundle_never_expose_a_partial_file(tmp_path: pathlib.Path) -> None:
    figures = concurrent_writers(tmp_path)
    assert figures["failed_writers"] == 0 and figures["temp_left"] == 0
    assert figures["missing"] == 0 and figures["corrupt"] == 0, figures  # every read was exactly old or new
    assert figures["reads"] > 50 and figures["new"] > 0 and figures["old"] > 0, figures  # the race did happen


def unwritable(tmp_path: pathlib.Path) -> pathlib.Path:
    blocker = tmp_path / "regular-file"
    blocker.write_text("a file where the cache folder's parent should be")  # mkdir fails even for root
    return blocker / "cache"


def test_a_chat_works_with_an_unwritable_cache_folder(emu: Emulator, tmp_path: pathlib.Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    folder = unwritable(tmp_path)
    monkeypatch.setenv("GIGACHAT_LITE_CACHE_DIR", str(folder))
    # Plain HTTP: the default bundle is built and mounted, and must not break the call.
    with caplog.at_level("WARNING", logger="gigachat_lite"):
        assert "".join(chat("hi", **emu.client_config())) == "Echo: hi"
        with Session(**emu.client_config()) as s:
            bundle = pathlib.Path(s.verify)  # type: ignore[arg-type]
            assert s.chat("again", stream=False).content == "Echo: again"
    assert not folder.exists()
    assert bundle.is_file() and not str(bundle).startswith(str(tmp_path))
    assert GigaChat.RUSSIAN_CA_CERT.strip() in bundle.read_text("ascii")
    assert any("cannot write the CA bundle" in r.getMessage() for r in caplog.records)


def test_with_no_writable_folder_at_all_the_packaged_ca_is_used(emu: Emulator, tmp_path: pathlib.Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    folder = unwritable(tmp_path)
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(folder))  # the private temp folder cannot be made either
    monkeypatch.setenv("GIGACHAT_LITE_CACHE_DIR", str(folder))
    with Session(**emu.client_config()) as s:
        path = pathlib.Path(str(s.verify))
        assert path.name == "russian_trusted_root_ca.pem" and path.read_text("ascii") == GigaChat.RUSSIAN_CA_CERT
        assert s.chat("hi", stream=False).content == "Echo: hi"
    assert chat("hi", stream=False, **emu.client_config()).content == "Echo: hi"
