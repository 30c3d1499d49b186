"""The packaged CA, the combined bundle file a Session mounts, and how it is written.

The bundle is seen as a user sees it: ``Session(...).verify`` names the file,
whose folder is ``GIGACHAT_LITE_CACHE_DIR``. The library writes a folder's
bundle once per process, so a folder it has already seen is reached again
through a fresh alias (a symbolic link to it), or from a new process.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import pathlib
import ssl
import stat
import subprocess
import sys
import textwrap

import certifi
import pytest

from gigachat_lite import GigaChat, Session

SHA256 = "d26d2d0231b7c39f92cc738512ba54103519e4405d68b5bd703e9788ca8ecf31"
CA_FILENAME = "russian_trusted_root_ca.pem"
BUNDLE_FILENAME = "russian_trusted_root_ca.crt"
_aliases = itertools.count()


def _der_sha256(pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def russian_ca() -> str:
    """The packaged CA's PEM, as the library hands it out (gpt4free's provider contract)."""
    return GigaChat.RUSSIAN_CA_CERT


def mounted_bundle(folder: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """The CA bundle a new Session verifies with when ``folder`` is the cache folder."""
    monkeypatch.setenv("GIGACHAT_LITE_CACHE_DIR", str(folder))
    with Session(api_key="a2V5") as s:
        assert isinstance(s.verify, str)
        return pathlib.Path(s.verify)


def alias_of(folder: pathlib.Path) -> pathlib.Path:
    """A new name for ``folder`` (a symbolic link beside it): a folder this process has not used yet."""
    alias = folder.parent / f"{folder.name}-alias-{next(_aliases)}"
    alias.symlink_to(folder, target_is_directory=True)
    return alias


def test_the_genuine_russian_trusted_root_ca_is_installed_with_the_package() -> None:
    from importlib import resources

    import gigachat_lite

    if (pathlib.Path(gigachat_lite.__file__).parent.parent / "setup.cfg").exists():
        pytest.skip("imported from a source checkout; CI runs this against the installed wheel")
    installed = resources.files("gigachat_lite").joinpath("certs", CA_FILENAME)
    assert installed.is_file(), "the CA must be inside the installed package (non-editable install)"
    assert _der_sha256(installed.read_text("ascii")) == SHA256
    assert _der_sha256(russian_ca()) == SHA256


def test_bundle_holds_our_ca_and_the_public_roots(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = mounted_bundle(tmp_path, monkeypatch)
    assert path.name == BUNDLE_FILENAME and path.parent == tmp_path
    text = path.read_text("ascii")
    assert _der_sha256(russian_ca()) == SHA256 and russian_ca().strip() in text
    assert pathlib.Path(certifi.where()).read_text("ascii").strip() in text
    ssl.create_default_context(cafile=str(path))  # parses as a CA file


@pytest.mark.slow  # a new process
def test_bundle_is_not_rewritten_when_unchanged(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = mounted_bundle(tmp_path, monkeypatch)
    first = path.stat().st_mtime_ns
    os.utime(path, ns=(first - 10**9, first - 10**9))
    script = "import gigachat_lite; print(gigachat_lite.Session(api_key='a2V5').verify)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, GIGACHAT_LITE_CACHE_DIR=str(tmp_path)))
    assert out.returncode == 0 and out.stdout.strip() == str(path), out.stderr
    assert path.stat().st_mtime_ns == first - 10**9  # the same content: left alone
    alias = alias_of(tmp_path)
    assert mounted_bundle(alias, monkeypatch) == alias / BUNDLE_FILENAME
    assert path.stat().st_mtime_ns == first - 10**9


def test_a_stale_bundle_is_replaced(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / BUNDLE_FILENAME).write_text("stale")
    path = mounted_bundle(tmp_path, monkeypatch)
    assert russian_ca().strip() in path.read_text("ascii")
    path.write_text("stale again")  # an older version of the library, say
    assert russian_ca().strip() in mounted_bundle(alias_of(tmp_path), monkeypatch).read_text("ascii")


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root ignores file modes")
def test_read_only_cache_folder_falls_back(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:  # pragma: no cover - root here
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    path = mounted_bundle(folder, monkeypatch)
    assert not str(path).startswith(str(folder)) and path.is_file()


def test_unwritable_cache_folder_falls_back_to_a_private_temp_folder(tmp_path: pathlib.Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")  # mkdir fails even for root
    path = mounted_bundle(blocker / "sub", monkeypatch)
    assert path.is_file() and russian_ca().strip() in path.read_text("ascii")
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.slow  # ten processes
def test_concurrent_writers_never_leave_a_partial_file(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    expected = mounted_bundle(tmp_path / "reference", monkeypatch).read_bytes()
    script = textwrap.dedent(
        """
        import os, pathlib, sys
        import gigachat_lite
        cache, me = pathlib.Path(sys.argv[1]), sys.argv[2]
        for i in range(20):
            alias = cache.parent / f"alias-{me}-{i}"  # a folder name this process has not used: written again
            alias.symlink_to(cache, target_is_directory=True)
            os.environ["GIGACHAT_LITE_CACHE_DIR"] = str(alias)
            gigachat_lite.Session(api_key="a2V5")
        """
    )
    target = cache / BUNDLE_FILENAME
    target.write_bytes(b"old")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(cache), str(n)]) for n in range(10)]
    seen = set()
    while any(p.poll() is None for p in procs):
        try:
            seen.add(hashlib.sha256(target.read_bytes()).hexdigest())
        except FileNotFoundError:
            seen.add("missing")
    assert all(p.wait() == 0 for p in procs)
    assert target.read_bytes() == expected
    assert seen <= {hashlib.sha256(b"old").hexdigest(), hashlib.sha256(expected).hexdigest()}
    assert [p.name for p in cache.iterdir()] == [BUNDLE_FILENAME]  # no temp files left
