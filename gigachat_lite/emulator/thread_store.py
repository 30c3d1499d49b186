"""Threads kept in memory: their messages and their last run (no HTTP here, see ``threads``).

A thread holds v1-style messages (``content`` a string). Threads are filled by the
threads API and by v2 chat with ``storage`` (see ``chat_v2``); assistants count them.
"""

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional


@dataclass
class Message:
    """One stored message, in the shape ``GET /threads/messages`` lists."""

    role: str
    content: str
    model: str
    attachments: List[Dict[str, str]] = field(default_factory=list)
    function_call: Optional[Dict[str, Any]] = None
    name: Optional[str] = None
    finish_reason: Optional[str] = None
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: int = field(default_factory=lambda: int(time.time()))

    def wire(self, with_model: bool = True) -> Dict[str, Any]:
        """The message as the API lists it (key order of ``get_threads_messages.json``)."""
        body: Dict[str, Any] = {"message_id": self.message_id, "role": self.role, "content": self.content}
        if self.attachments:
            body["attachments"] = list(self.attachments)
        body["created_at"] = self.created_at
        if self.function_call is not None:
            body["function_call"] = self.function_call
        if self.finish_reason is not None:
            body["finish_reason"] = self.finish_reason
        if with_model:
            body["model"] = self.model
        return body

    def chat(self) -> Dict[str, Any]:
        """The message as a v1 chat request carries it."""
        body: Dict[str, Any] = {"role": self.role, "content": self.content}
        if self.function_call is not None:
            body["function_call"] = self.function_call
        if self.name is not None:
            body["name"] = self.name
        return body


@dataclass
class Thread:
    """A thread: its model, assistant, messages and what its last run added."""

    model: str
    assistant_id: Optional[str] = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: int = field(default_factory=lambda: int(time.time()))
    updated_at: int = 0
    messages: List[Message] = field(default_factory=list)
    run_start: int = 0  # index of the first message the next run reports
    last_run: Optional[List[Message]] = None  # the messages of the last run, None before any

    def __post_init__(self) -> None:
        self.updated_at = self.updated_at or self.created_at

    def wire(self) -> Dict[str, Any]:
        """The thread object (key order of ``get_threads.json``; runs finish at once, so
        the status is ``ready`` and ``run_lock`` false)."""
        body: Dict[str, Any] = {"id": self.id, "model": self.model}
        if self.assistant_id is not None:
            body["assistant_id"] = self.assistant_id
        body.update(created_at=self.created_at, updated_at=self.updated_at, status="ready", run_lock=False)
        return body

    def add(self, messages: Iterable[Message]) -> List[Message]:
        """Append messages; return them."""
        added = list(messages)
        self.messages.extend(added)
        self.updated_at = int(time.time())
        return added

    def finish_run(self, reply: Message) -> None:
        """Append the run's reply and remember what the run covered."""
        self.add([reply])
        self.last_run = self.messages[self.run_start:]
        self.run_start = len(self.messages)

    def drop_reply(self) -> None:
        """Take back the last run's reply, so a rerun answers the same turn again."""
        if self.last_run:
            first = self.last_run[0]
            self.run_start = next((i for i, m in enumerate(self.messages) if m is first), self.run_start)
        while len(self.messages) > self.run_start and self.messages[-1].role == "assistant":
            self.messages.pop()


class ThreadStore:
    """Every thread by id.

    :attr:`lock` is held by whoever reads a thread's messages to change them (a run,
    a stored chat turn), so concurrent requests on one thread apply one after the
    other; it also guards the mapping.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._threads: Dict[str, Thread] = {}

    def create(self, model: str, assistant_id: Optional[str] = None) -> Thread:
        """A new empty thread."""
        thread = Thread(model=model, assistant_id=assistant_id)
        with self.lock:
            self._threads[thread.id] = thread
        return thread

    def get(self, thread_id: Any) -> Optional[Thread]:
        """The thread, or ``None``."""
        with self.lock:
            return self._threads.get(thread_id) if isinstance(thread_id, str) else None

    def delete(self, thread_id: str) -> bool:
        """Forget a thread; whether it existed."""
        with self.lock:
            return self._threads.pop(thread_id, None) is not None

    def listing(self) -> List[Thread]:
        """Every thread, most recently updated first."""
        with self.lock:
            threads = list(self._threads.values())
        order = {id(t): n for n, t in enumerate(threads)}
        return sorted(threads, key=lambda t: (t.updated_at, order[id(t)]), reverse=True)

    def count_for(self, assistant_id: str) -> int:
        """How many threads an assistant has."""
        with self.lock:
            return sum(1 for t in self._threads.values() if t.assistant_id == assistant_id)
