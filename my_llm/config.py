"""Settings: the one place that reads environment variables.

Every other module takes a :class:`Settings` (or the values in it) as an argument, so tests and
callers can point the library anywhere without touching the environment.
"""

from __future__ import annotations

import configparser
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from my_llm.errors import ConfigError

APP_NAME = "my_llm"
FSYNC_POLICIES = ("always", "interval", "never")
# MY_LLM_PUBLISH: on (publish to Pub/Sub when a project is known) or off (disk only).
PUBLISH_OFF = frozenset({"off", "0", "false", "no"})
PUBLISH_ON = frozenset({"on", "1", "true", "yes"})
# The emulator accepts any project id; one is needed to name topics.
EMULATOR_DEFAULT_PROJECT = "my-llm-local"


@dataclass(frozen=True)
class Settings:
    """Where data lives and which services and models to use.

    Attributes:
        message_history: root of the per-namespace message logs (``MESSAGE_HISTORY``).
        chroma_db_path: root of the repository indexes (``CHROMA_DB_PATH``).
        google_cloud_project: project that owns the topics: ``GOOGLE_CLOUD_PROJECT``; else
            ``my-llm-local`` when ``PUBSUB_EMULATOR_HOST`` is set; else the gcloud CLI's active project;
            else the application-default credentials' quota project; None means disk only.
        project_source: where ``google_cloud_project`` came from: ``GOOGLE_CLOUD_PROJECT``,
            ``PUBSUB_EMULATOR_HOST`` (the emulator's default project) or ``gcloud`` (the gcloud CLI's
            files, a choice the user may not know they made: the history says so once); None when unset.
        pubsub_emulator_host: ``host:port`` of a Pub/Sub emulator (``PUBSUB_EMULATOR_HOST``); the
            publisher connects to it (an insecure channel, no credentials) whatever the environment says.
        publish: False when ``MY_LLM_PUBLISH=off``: messages are logged to disk only, whatever the project.
        openai_api_key / openai_base_url: OpenAI or an OpenAI-compatible server.
        model: default chat model spec (``MY_LLM_MODEL``): ``provider:model`` or ``local``.
        embeddings: default embeddings spec (``MY_LLM_EMBEDDINGS``): ``local``, ``openai:<model>``
            or a sentence-transformers model path.
        fsync: when appends are forced to disk (``MY_LLM_FSYNC``): always, interval or never.
        chroma_host: a shared Chroma server (``CHROMA_HOST``, ``host`` or ``host:port``).
    """

    message_history: Path
    chroma_db_path: Path
    google_cloud_project: str | None = None
    pubsub_emulator_host: str | None = None
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    model: str | None = None
    embeddings: str | None = None
    fsync: str = "interval"
    chroma_host: str | None = None
    project_source: str | None = None
    publish: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); blank values count as unset.

        Raises:
            ConfigError: ``MY_LLM_FSYNC`` is not one of always, interval, never; ``MY_LLM_PUBLISH`` is not
                on or off.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        data_dir = platformdirs.user_data_path(APP_NAME)
        emulator = get("PUBSUB_EMULATOR_HOST")
        project, source = get("GOOGLE_CLOUD_PROJECT"), "GOOGLE_CLOUD_PROJECT"
        if not project and emulator:
            project, source = EMULATOR_DEFAULT_PROJECT, "PUBSUB_EMULATOR_HOST"
        if not project:
            gcloud_dir = Path(get("CLOUDSDK_CONFIG") or Path.home() / ".config" / "gcloud").expanduser()
            project, source = gcloud_project(gcloud_dir), "gcloud"
        publish = (get("MY_LLM_PUBLISH") or "on").lower()
        if publish not in PUBLISH_ON | PUBLISH_OFF:
            raise ConfigError(f"MY_LLM_PUBLISH={publish!r} is not one of on, off.")
        fsync = (get("MY_LLM_FSYNC") or "interval").lower()
        if fsync not in FSYNC_POLICIES:
            raise ConfigError(f"MY_LLM_FSYNC={fsync!r} is not one of {', '.join(FSYNC_POLICIES)}.")
        return cls(
            message_history=Path(get("MESSAGE_HISTORY") or data_dir / "message_history").expanduser(),
            chroma_db_path=Path(get("CHROMA_DB_PATH") or data_dir / "chroma").expanduser(),
            google_cloud_project=project,
            pubsub_emulator_host=emulator,
            openai_api_key=get("OPENAI_API_KEY"),
            openai_base_url=get("OPENAI_BASE_URL"),
            model=get("MY_LLM_MODEL"),
            embeddings=get("MY_LLM_EMBEDDINGS"),
            fsync=fsync,
            chroma_host=get("CHROMA_HOST"),
            project_source=source if project else None,
            publish=publish in PUBLISH_ON,
        )


def gcloud_project(gcloud_dir: Path) -> str | None:
    """The project the gcloud CLI would use, read from its files (no subprocess, no network).

    Looks at ``<gcloud_dir>/active_config`` -> ``configurations/config_<name>`` ``[core] project``,
    then ``application_default_credentials.json`` ``quota_project_id``. None when neither is set or
    readable. (``google.auth.default()`` would also probe the GCE metadata server, which costs
    seconds on a machine that is not on Google Cloud.)
    """
    try:
        active = (gcloud_dir / "active_config").read_text(encoding="utf-8").strip() or "default"
    except OSError:
        active = "default"
    parser = configparser.ConfigParser()
    try:
        parser.read(gcloud_dir / "configurations" / f"config_{active}", encoding="utf-8")
    except configparser.Error:
        pass
    project = parser.get("core", "project", fallback="").strip()
    if project:
        return project
    try:
        credentials = json.loads((gcloud_dir / "application_default_credentials.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    quota = credentials.get("quota_project_id") if isinstance(credentials, dict) else None
    return str(quota).strip() or None if quota else None
