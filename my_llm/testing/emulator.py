"""The official Google Cloud Pub/Sub emulator as a child process, and the few calls tests make against it.

Started without gcloud: ``java -jar cloud-pubsub-emulator-*-all.jar --host=127.0.0.1 --port=PORT``
(ready in about a second). Point clients at it with ``PUBSUB_EMULATOR_HOST=127.0.0.1:PORT``. The
emulator keeps everything in memory: a restarted one starts with no topics or subscriptions.
"""

from __future__ import annotations

import glob
import shutil
import time
from pathlib import Path

from my_llm.testing.servers import ServerNotInstalledError, ServerProcess, free_port

EMULATOR_JARS = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/lib/cloud-pubsub-emulator-*-all.jar"


def find_emulator(pattern: str = EMULATOR_JARS) -> tuple[str, str]:
    """``(jar, java)`` paths of the newest installed emulator jar and the java binary.

    Raises:
        ServerNotInstalledError: either is missing (install ``google-cloud-cli-pubsub-emulator`` and Java 17).
    """
    jars = sorted(glob.glob(pattern))
    java = shutil.which("java")
    if not jars or not java:
        raise ServerNotInstalledError(
            f"Pub/Sub emulator not found (java: {java}, jar: {pattern}): "
            "install the google-cloud-cli-pubsub-emulator package and Java 17."
        )
    return jars[-1], java


class Emulator(ServerProcess):
    """The emulator jar as a child process on ``127.0.0.1:port`` (a free port when None), ready when the
    port accepts a connection; can be stopped and restarted on the same port. Output is appended to
    ``log_path``. ``host`` is ``127.0.0.1:PORT``, the value for ``PUBSUB_EMULATOR_HOST``. Use as a context
    manager, or call ``start()`` and ``stop()``.

    Raises (from start):
        ServerStartError: java could not run, the emulator exited, or it did not open its port within
            ``timeout_s`` seconds (60 by default).
    """

    def __init__(self, jar: str, java: str, log_path: Path, port: int | None = None) -> None:
        port = port or free_port()
        super().__init__(
            [java, "-jar", jar, "--host=127.0.0.1", f"--port={port}"],
            port,
            log_path,
            name="The Pub/Sub emulator",
            advice="Read the log; the emulator needs Java 17 or newer (java -version).",
        )
        self.jar, self.java = jar, java


def ensure_topic(project: str, topic_id: str) -> str:
    """Create topic ``topic_id`` in ``project`` if it is missing (with :class:`my_llm.Publisher`); returns its
    path ``projects/PROJECT/topics/TOPIC``."""
    from my_llm.log import Publisher

    publisher = Publisher(project, topic_id)
    publisher.ensure_topic()
    publisher.close()
    return publisher.topic_path


def subscribe(project: str, topic_path: str, name: str):
    """Create subscription ``name`` on ``topic_path`` (the topic must exist); returns
    ``(SubscriberClient, subscription path)``."""
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(project, name)
    subscriber.create_subscription(request={"name": subscription, "topic": topic_path})
    return subscriber, subscription


def pull_all(subscriber, subscription: str, expected: int, timeout_s: float = 60.0) -> dict:
    """Pull and acknowledge until ``expected`` distinct record ids (the ``id`` attribute) arrived or
    ``timeout_s`` seconds passed; returns ``{id: PubsubMessage}`` (fewer than ``expected`` on time-out)."""
    pulled = {}
    deadline = time.monotonic() + timeout_s
    while len(pulled) < expected and time.monotonic() < deadline:
        response = subscriber.pull(request={"subscription": subscription, "max_messages": 1000}, timeout=10)
        if response.received_messages:
            subscriber.acknowledge(
                request={"subscription": subscription, "ack_ids": [m.ack_id for m in response.received_messages]}
            )
        for received in response.received_messages:
            pulled[received.message.attributes["id"]] = received.message
    return pulled
