"""The packaged CA, the combined bundle file, and how it is written."""

from __future__ import annotations

import hashlib
import os
import pathlib
import ssl
import stat
import subprocess
import sys
import textwrap

import certifi
import pytest

from gigachat_lite._http import certs

SHA256 = "d26d2d0231b7c39f92cc738512ba54103519e4405d68b5bd703e9788ca8ecf31"


def _der_sha256(pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def test_the_genuine_russian_trusted_root_ca_is_installed_with_the_package() -> None:
    from importlib import resources

    import gigachat_lite

    if (pathlib.Path(gigachat_lite.__file__).parent.parent / "setup.cfg").exists():
        pytest.skip("imported from a source checkout; CI runs this against the installed wheel")
    installed = resources.files("gigachat_lite").joinpath("certs", certs.CA_FILENAME)
    assert installed.is_file(), "the CA must be inside the installed package (non-editable install)"
    assert _der_sha256(installed.read_text("ascii")) == SHA256
    assert _der_sha256(certs.russian_ca_pem()) == SHA256


def test_bundle_holds_our_ca_and_the_public_roots(tmp_path: pathlib.Path) -> None:
    path = pathlib.Path(certs.default_bundle(tmp_path))
    assert path.name == "russian_trusted_root_ca.crt" and path.parent == tmp_path
    text = path.read_text("ascii")
    assert certs.russian_ca_pem().strip() in text
    assert pathlib.Path(certifi.where()).read_text("ascii").strip() in text
    ssl.create_default_context(cafile=str(path))  # parses as a CA file


def test_bundle_is_not_rewritten_when_unchanged(tmp_path: pathlib.Path) -> None:
    path = pathlib.Path(certs._bundle_for(str(tmp_path)))
    first = path.stat().st_mtime_ns
    os.utime(path, ns=(first - 10**9, first - 10**9))
    certs._bundle_for.cache_clear()
    certs._bundle_for(str(tmp_path))
    assert path.stat().st_mtime_ns == first - 10**9


def test_a_stale_bundle_is_replaced(tmp_path: pathlib.Path) -> None:
    (tmp_path / certs.BUNDLE_FILENAME).write_text("stale")
    certs._bundle_for.cache_clear()
    path = pathlib.Path(certs._bundle_for(str(tmp_path)))
    assert certs.russian_ca_pem().strip() in path.read_text("ascii")


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root ignores file modes")
def test_read_only_cache_folder_falls_back(tmp_path: pathlib.Path) -> None:  # pragma: no cover - root here
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    certs._bundle_for.cache_clear()
    path = certs._bundle_for(str(folder))
    assert not path.startswith(str(folder)) and os.path.isfile(path)


def test_unwritable_cache_folder_falls_back_to_a_private_temp_folder(tmp_path: pathlib.Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")  # mkdir fails even for root
    certs._bundle_for.cache_clear()
    path = pathlib.Path(certs._bundle_for(str(blocker / "sub")))
    assert path.is_file() and certs.russian_ca_pem().strip() in path.read_text("ascii")
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_concurrent_writers_never_leave_a_partial_file(tmp_path: pathlib.Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from gigachat_lite._http import certs
        for i in range(20):
            certs._bundle_for.cache_clear()
            certs._bundle_for(sys.argv[1])
        """
    )
    expected = certs._bundle_text()
    target = tmp_path / certs.BUNDLE_FILENAME
    target.write_bytes(b"old")
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env=env) for _ in range(10)]
    seen = set()
    while any(p.poll() is None for p in procs):
        try:
            seen.add(hashlib.sha256(target.read_bytes()).hexdigest())
        except FileNotFoundError:
            seen.add("missing")
    assert all(p.wait() == 0 for p in procs)
    assert target.read_bytes() == expected
    assert seen <= {hashlib.sha256(b"old").hexdigest(), hashlib.sha256(expected).hexdigest()}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bundle-")]  # no temp files left
