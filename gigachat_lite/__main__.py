"""``python -m gigachat_lite``: the ``gigachat-lite`` command (see :mod:`gigachat_lite.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
