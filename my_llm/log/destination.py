"""Where a namespace publishes: the project and topic recorded with the namespace when first used.

``<namespace>/destination.json`` is ``{"project_id": "...", "topic_id": "..."}``, written once, by the first
publish (a history's, or a replay's), and never changed by a later one: it is what ``my-llm replay``
sends to, so a history that used a custom topic is replayed to that topic, not to ``my-llm-<namespace>``.
It lives beside the log, not in the index, because the index can be deleted and rebuilt from the log.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from my_llm.errors import ConfigError, StoreError

log = logging.getLogger(__name__)

DESTINATION_NAME = "destination.json"


@dataclass(frozen=True)
class Destination:
    """A Pub/Sub topic: ``projects/<project_id>/topics/<topic_id>``."""

    project_id: str
    topic_id: str

    @property
    def topic_path(self) -> str:
        return f"projects/{self.project_id}/topics/{self.topic_id}"

    @classmethod
    def parse(cls, topic: str, default_project: str | None) -> Destination:
        """``projects/P/topics/T`` or a bare topic id ``T`` (in ``default_project``).

        Raises:
            ConfigError: a bare id with no project to put it in, or a malformed path.
        """
        parts = topic.strip().split("/")
        if len(parts) == 4 and parts[0] == "projects" and parts[2] == "topics" and parts[1] and parts[3]:
            return cls(parts[1], parts[3])
        if len(parts) != 1 or not parts[0]:
            raise ConfigError(f"{topic!r} is neither a topic id nor projects/PROJECT/topics/TOPIC.")
        if not default_project:
            raise ConfigError(
                f"No Google Cloud project to find topic {topic!r} in: give projects/PROJECT/topics/{topic} "
                "or set GOOGLE_CLOUD_PROJECT (or PUBSUB_EMULATOR_HOST for the emulator)."
            )
        return cls(default_project, parts[0])


def recorded_destination(folder: Path) -> Destination | None:
    """The destination recorded in ``folder`` (a namespace's), or None when none is (or it is unreadable:
    logged)."""
    path = Path(folder) / DESTINATION_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Destination(str(data["project_id"]), str(data["topic_id"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("Ignoring the unreadable %s (%s); delete it to record the destination again.", path, error)
        return None


def record_destination(folder: Path, destination: Destination) -> Destination:
    """Record ``destination`` in ``folder`` unless one is recorded already; returns the recorded one.

    Atomic across processes: the file is linked into place, so the first writer wins.

    Raises:
        StoreError: the folder cannot be written.
    """
    folder = Path(folder)
    target = folder / DESTINATION_NAME
    temporary = folder / f".{DESTINATION_NAME}.{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps({"project_id": destination.project_id, "topic_id": destination.topic_id}))
        try:
            os.link(temporary, target)
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)
    except OSError as error:
        raise StoreError(f"Could not record the Pub/Sub destination in {target}: {error}") from error
    return recorded_destination(folder) or destination


@functools.cache
def warn_other_topic(namespace: str, recorded: str, given: str) -> None:
    """Say once per process that a history publishes elsewhere than the namespace's recorded topic."""
    log.warning(
        "Namespace %r publishes to %s (recorded when it was first used), but this history was given %s. "
        "Its messages go to %s; `my-llm replay %s` re-sends what is unacknowledged to %s "
        "(add `--topic %s` to send it there instead).",
        namespace,
        recorded,
        given,
        given,
        namespace,
        recorded,
        given,
    )


@functools.cache
def say_gcloud_project(namespace: str, topic_path: str) -> None:
    """Say once per process that messages are published to a project found in gcloud's configuration."""
    log.warning(
        "Publishing namespace %r to %s: the project comes from gcloud's active configuration, not from "
        "GOOGLE_CLOUD_PROJECT. Set MY_LLM_PUBLISH=off to keep messages on disk only, or GOOGLE_CLOUD_PROJECT "
        "to choose the project.",
        namespace,
        topic_path,
    )
