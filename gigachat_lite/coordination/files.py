"""File ids shared by every process using one store: each distinct file is uploaded once for the whole fleet.

When a chat message carries a file (a path, bytes, a data: URI, see
:mod:`gigachat_lite._attachments`), the worker hashes it and asks
:meth:`SharedFileIds.file_id` for its id. The first worker to ask takes the
upload lock (``add`` with a TTL), uploads, and writes the id beside the
fleet's token; the others wait for it (polling every 10-200 ms, as for the
token) and reuse it. A holder that dies holds the lock ``lock_ttl`` seconds
at most; one whose upload fails drops it, and the next worker tries on its own.

What the store holds, per identity and file (``XXX`` and ``<digest>`` as for the
token, see :mod:`.tokens`; ``<content>`` = SHA-256 of the API host, the
``X-Client-ID`` the file is bound to, its purpose, MIME type and the SHA-256 of
its bytes):

* ``file.XXX.<digest>.<content>``: the file id, for ``ttl`` seconds (a day by
  default: GigaChat keeps a file until it is deleted, and a client that finds
  the id refused uploads the file again and calls :meth:`SharedFileIds.forget`);
* ``upload.XXX.<digest>.<content>``: a random owner id while one worker uploads;
* ``fileid.XXX.<digest>.<id>``: ``<content>`` again, by the SHA-256 of the file
  id, for as long as the id: so :meth:`SharedFileIds.forget_id` (called by
  ``delete_file``) drops a deleted file's id for the whole fleet, whoever
  uploaded it.

None holds the file's bytes nor anything that reveals the key.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from typing import Callable, Hashable, Tuple

from .._attachments import FILE_ID_TTL
from .keys import fleet_key
from .store import Store

__all__ = ["SharedFileIds"]


class SharedFileIds:
    """File ids shared through ``store`` by every process and host that opens it.

    Args:
        store: where ids and upload locks live.
        ttl: seconds an id is kept.
        lock_ttl: seconds an upload lock lives if its holder dies; keep it above
            the time a large upload takes, or a slow one may be duplicated.
    """

    def __init__(self, store: Store, *, ttl: float = FILE_ID_TTL, lock_ttl: float = 60.0) -> None:
        self.store = store
        self._ttl = ttl
        self._lock_ttl = lock_ttl
        self.uploads = 0  # uploads made by this process through this object (for tests and figures)
        self._count_lock = threading.Lock()

    def file_id(self, key: Hashable, content: str, upload: Callable[[], str]) -> Tuple[str, bool]:
        """``(file id, uploaded now)``: the fleet's id for ``content``, else ``upload()``'s, by exactly one worker.

        ``key`` is the identity (as for tokens), ``content`` a hex digest naming the file.

        Raises:
            CoordinationError: the store failed; and whatever ``upload`` raises.
        """
        fleet = fleet_key(key)
        name, lock = f"{fleet.name('file')}.{content}", f"{fleet.name('upload')}.{content}"
        owner = uuid.uuid4().hex
        pause = 0.01
        while True:
            found = self.store.get(name)
            if found:
                return found, False
            if self.store.add(lock, owner, self._lock_ttl):
                try:
                    # Re-read under the lock: an upload may have ended between our read and the lock.
                    found = self.store.get(name)
                    if found:
                        return found, False
                    file_id = upload()
                    with self._count_lock:
                        self.uploads += 1
                    self.store.set(name, file_id, self._ttl)
                    self.store.set(_by_id(fleet.name("fileid"), file_id), content, self._ttl)
                    return file_id, True
                finally:
                    self.store.delete(lock, expected=owner)
            # Someone else is uploading: wait for the id, or for the lock to be dropped or to expire.
            time.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 1.5, 0.2)

    def forget(self, key: Hashable, content: str, file_id: str) -> None:
        """Drop the fleet's id for ``content`` if it is still ``file_id`` (the server no longer has the file)."""
        self.store.delete(f"{fleet_key(key).name('file')}.{content}", expected=file_id)

    def forget_id(self, key: Hashable, file_id: str) -> None:
        """Drop ``file_id`` from the fleet's ids, whichever file it was (it was deleted).

        Raises:
            CoordinationError: the store failed.
        """
        fleet = fleet_key(key)
        index = _by_id(fleet.name("fileid"), file_id)
        content = self.store.get(index)
        if content:
            self.store.delete(f"{fleet.name('file')}.{content}", expected=file_id)
        self.store.delete(index)


def _by_id(prefix: str, file_id: str) -> str:
    # A file id is the server's text: hashed into a name every store takes.
    return f"{prefix}.{hashlib.sha256(file_id.encode('utf-8')).hexdigest()[:32]}"
