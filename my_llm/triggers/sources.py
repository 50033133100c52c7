"""Where the runner's records come from: the namespace logs on disk, followed with a byte cursor kept in the
ledger, or a Pub/Sub subscription per namespace (created if missing).

Both start where a new subscription would: a log seen for the first time is followed from its end (records
already there never fire unless ``from_start``), and a subscription created now receives what is
published from now on. Both yield :class:`my_llm.triggers.runner.Batch` es; ``once`` stops when nothing
is left, else they wait (``poll_s``) until ``stop`` is set.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from my_llm.log import MessageStore
from my_llm.record import Record, topic_id_for
from my_llm.triggers.base import TriggerError
from my_llm.triggers.ledger import Ledger
from my_llm.triggers.runner import Batch

log = logging.getLogger(__name__)

READ_BYTES = 1 << 20
ACK_DEADLINE_S = 60


def _parse(line: bytes) -> Record | None:
    try:
        return Record.from_json(line)
    except ValueError:
        return None


def _nothing(positions: list[int]) -> None:
    """A log needs no acknowledgement: its cursor is saved by ``commit``."""


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(READ_BYTES)
    except FileNotFoundError:
        return b""


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return 0


class LogSource:
    """Follows ``<root>/<namespace>/messages.jsonl`` of each namespace.

    The cursor ``(inode, offset)`` is saved in ``cursors`` after each batch is handled (not in a dry run:
    ``read_only``). A log moved to ``archive/`` by ``clear()`` is finished from its archived file (same
    inode), then the logs archived after it, then the new log from its start; when the followed file is
    gone (or there was no log), the archives modified since the cursor was saved are read first.

    Args:
        root: ``MESSAGE_HISTORY``.
        namespaces: the namespaces to follow.
        cursors: the ledger holding the cursors.
        from_start: a log without a cursor is read from its start instead of its end.
        read_only: never save a cursor (``--dry-run``).
        poll_s: seconds between looks when nothing is new.
    """

    def __init__(
        self,
        root: Path,
        namespaces: Sequence[str],
        cursors: Ledger,
        *,
        from_start: bool = False,
        read_only: bool = False,
        poll_s: float = 0.2,
    ) -> None:
        self.stores = [MessageStore(root, namespace) for namespace in namespaces]
        self.cursors, self.from_start, self.read_only, self.poll_s = cursors, from_start, read_only, poll_s
        self._positions: dict[str, tuple[int, int]] = {}
        self._saved_at: dict[str, float] = {}

    def start(self) -> list[str]:
        """Load (or create) each cursor; returns one line per namespace saying where it starts."""
        notes = []
        for store in self.stores:
            saved = self.cursors.cursor(store.namespace)
            if saved is None:
                size = store.path.stat().st_size if store.path.exists() else 0
                self._move(store.namespace, (_inode(store.path), 0 if self.from_start else size))
                where = "its start" if self.from_start or not size else f"its end ({size:,} bytes there are not read)"
                notes.append(f"{store.namespace}: first run, reading {store.path} from {where}")
            else:
                self._positions[store.namespace], self._saved_at[store.namespace] = saved[:2], saved[2]
                notes.append(f"{store.namespace}: reading {store.path} from byte {saved[1]:,}")
        return notes

    def batches(self, stop: threading.Event, once: bool) -> Iterator[Batch]:
        """Batches of new complete lines, until nothing is new (``once``) or ``stop`` is set."""
        if not self._positions:
            self.start()
        while not stop.is_set():
            found = False
            for store in self.stores:
                batch = self._read(store)
                if batch is not None:
                    found = True
                    yield batch
            if not found:
                if once:
                    return
                stop.wait(self.poll_s)

    def _read(self, store: MessageStore) -> Batch | None:
        """The next batch of ``store``: the rest of the file the cursor is in (an archived log is finished
        first, then any archived after it, then the live log), or None when nothing complete is new."""
        namespace = store.namespace
        while True:
            inode, offset = self._positions[namespace]
            current, archives = _inode(store.path), []
            path: Path | None = store.path if inode == current and current else None
            if inode != current:  # the log we followed was archived by clear(), or there was none
                archives = store.archives()
                path = next((p for p in archives if _inode(p) == inode), None) if inode else None
                if path is None:  # archives made since the cursor was saved hold records never read
                    newer = [p for p in archives if p.stat().st_mtime >= self._saved_at[namespace]]
                    self._move(namespace, (_inode(newer[0]), 0) if newer else (current, 0))
                    if newer or current:
                        continue
            if path is None:
                return None
            chunk = _read_from(path, offset)
            end = chunk.rfind(b"\n") + 1
            if end == 0:
                if path == store.path:
                    return None  # nothing new, or a line still being written
                following = archives[archives.index(path) + 1 :]  # this archive is done (a torn tail skipped)
                self._move(namespace, (_inode(following[0]), 0) if following else (current, 0))
                continue
            records = [_parse(line) for line in chunk[:end].split(b"\n") if line.strip()]
            position = (inode, offset + end)
            self._positions[namespace] = position  # in memory now; saved by commit (never in a dry run)
            if not records:
                self._move(namespace, position)
                continue
            return Batch(records, ack=_nothing, commit=functools.partial(self._move, namespace, position))

    def _move(self, namespace: str, position: tuple[int, int]) -> None:
        self._positions[namespace], self._saved_at[namespace] = position, time.time()
        if not self.read_only:
            self.cursors.save_cursor(namespace, *position, self._saved_at[namespace])

    def close(self) -> None:
        """Nothing to release (the ledger is closed by its owner)."""


class PubSubSource:
    """Pulls from one subscription per namespace on the topic ``my-llm-<namespace>``.

    Args:
        project: the Google Cloud project (or the emulator's).
        namespaces: the namespaces to read.
        subscription: the subscription id with ``{namespace}`` in it.
        dry_run: never create anything or acknowledge: what was pulled is released (ack deadline 0) at
            :meth:`close`, for the real runner to receive.
        subscriber: a ``pubsub_v1.SubscriberClient``; one is made when None (``PUBSUB_EMULATOR_HOST`` is
            honoured by the client).
        max_messages: per pull.
    """

    def __init__(
        self,
        project: str,
        namespaces: Sequence[str],
        subscription: str,
        *,
        dry_run: bool = False,
        subscriber=None,
        max_messages: int = 1000,
    ) -> None:
        from google.cloud import pubsub_v1

        self.subscriber = subscriber or pubsub_v1.SubscriberClient()
        self.project, self.dry_run, self.max_messages = project, dry_run, max_messages
        self.paths = {
            namespace: self.subscriber.subscription_path(project, subscription.format(namespace=namespace))
            for namespace in namespaces
        }
        self._held: dict[str, list[str]] = {path: [] for path in self.paths.values()}

    def start(self) -> list[str]:
        """Create missing topics and subscriptions (a dry run only checks them); one line per namespace.

        Raises:
            TriggerError: Pub/Sub refused, or (dry run) the subscription does not exist yet.
        """
        from google.api_core.exceptions import GoogleAPICallError, NotFound

        notes = []
        for namespace, path in self.paths.items():
            try:
                self.subscriber.get_subscription(request={"subscription": path})
                notes.append(f"{namespace}: pulling from {path}")
                continue
            except NotFound:
                if self.dry_run:
                    raise TriggerError(
                        f"{path} does not exist and a dry run creates nothing: run without --dry-run once, "
                        "or use --source log to see what would fire over the log on disk."
                    ) from None
            except GoogleAPICallError as error:
                raise TriggerError(f"Pub/Sub refused {path}: {error}") from None
            self._create(namespace, path)
            notes.append(f"{namespace}: created {path} (it receives what is published from now on)")
        return notes

    def _create(self, namespace: str, path: str) -> None:
        from google.api_core.exceptions import AlreadyExists, GoogleAPICallError
        from google.cloud import pubsub_v1

        topic = pubsub_v1.PublisherClient.topic_path(self.project, topic_id_for(namespace))
        try:
            try:
                pubsub_v1.PublisherClient().create_topic(request={"name": topic})
            except AlreadyExists:
                pass
            request = {"name": path, "topic": topic, "ack_deadline_seconds": ACK_DEADLINE_S}
            self.subscriber.create_subscription(request=request)
        except AlreadyExists:
            return  # another runner made it first
        except GoogleAPICallError as error:
            raise TriggerError(f"could not create {path} on {topic}: {error}") from None

    def batches(self, stop: threading.Event, once: bool) -> Iterator[Batch]:
        """Batches of pulled messages until a round of pulls finds every subscription empty (``once``) or
        ``stop`` is set.

        Pulls block until a message arrives or the server gives up (at most ``wait_s``: 5 s with one
        subscription, 1 s each with several, 2 s for ``once``), so ``stop`` is noticed within that time.
        """
        wait_s = 2.0 if once else 5.0 if len(self.paths) == 1 else 1.0
        while not stop.is_set():
            found = False
            for path in self.paths.values():
                batch = self._pull(path, wait_s)
                if batch is not None:
                    found = True
                    yield batch
            if not found and once:
                return

    def _pull(self, path: str, wait_s: float) -> Batch | None:
        from google.api_core.exceptions import DeadlineExceeded, GoogleAPICallError

        request = {"subscription": path, "max_messages": self.max_messages}
        try:
            response = self.subscriber.pull(request=request, timeout=wait_s)
        except DeadlineExceeded:
            return None
        except GoogleAPICallError as error:
            raise TriggerError(f"could not pull from {path}: {error}") from None
        received = list(type(response).pb(response).received_messages)  # raw protobuf: 10x cheaper to read
        if not received:
            return None
        ack_ids = [message.ack_id for message in received]
        if self.dry_run:
            self._held[path].extend(ack_ids)

        def ack(positions: list[int]) -> None:
            try:
                self.subscriber.acknowledge(request={"subscription": path, "ack_ids": [ack_ids[p] for p in positions]})
            except GoogleAPICallError as error:  # the messages come back; the ledger skips them
                log.warning("Could not acknowledge %d on %s (redelivered later): %s", len(positions), path, error)

        return Batch([_parse(message.message.data) for message in received], ack=ack, commit=lambda: None)

    def close(self) -> None:
        """Release what a dry run held (ack deadline 0: redelivered at once) and close the client."""
        for path, ack_ids in self._held.items():
            for start in range(0, len(ack_ids), 1000):
                request = {"subscription": path, "ack_ids": ack_ids[start : start + 1000], "ack_deadline_seconds": 0}
                self.subscriber.modify_ack_deadline(request=request)
        self._held = {path: [] for path in self.paths}
        self.subscriber.close()


def source_kind(settings_project: str | None, publish: bool, requested: str) -> str:
    """``pubsub`` or ``log`` for ``--source auto|pubsub|log``: auto is pubsub when a project is configured
    and publishing is on (the records reach Pub/Sub), else log.

    Raises:
        TriggerError: ``pubsub`` requested without a project.
    """
    if requested == "pubsub" and not settings_project:
        raise TriggerError("--source pubsub needs GOOGLE_CLOUD_PROJECT (or PUBSUB_EMULATOR_HOST).")
    if requested != "auto":
        return requested
    return "pubsub" if settings_project and publish else "log"
