"""Every package of the source tree is in the distribution (CI installs the wheel, not the checkout)."""

from __future__ import annotations

import configparser
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_setup_cfg_lists_every_package_of_the_source_tree() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = {line.strip() for line in config["options"]["packages"].splitlines() if line.strip()}
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "gigachat_lite").rglob("__init__.py")}
    assert found <= listed, f"missing from setup.cfg [options] packages: {sorted(found - listed)}"
