"""Where records land in BigQuery, and the clients that reach it (or the emulators standing in for it).

The project is the one Pub/Sub uses (:class:`my_llm.Settings`: ``GOOGLE_CLOUD_PROJECT``, the Pub/Sub
emulator's default, or gcloud's). What this room adds is read here, from the environment, once:

``BIGQUERY_EMULATOR_HOST``  ``http://host:port`` of a BigQuery emulator (bqemulator); the client then
                            uses anonymous credentials, as the official client's own variable intends.
``MY_LLM_BIGQUERY_DATASET`` the dataset when a command is not given ``--dataset`` (default ``my_llm``).

Clients are built by :func:`bigquery_client` and :func:`pubsub_clients` and handed in everywhere else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from my_llm.config import EMULATOR_DEFAULT_PROJECT, Settings
from my_llm.errors import MyLLMError

DEFAULT_DATASET = "my_llm"
DEFAULT_TABLE = "messages"
# The client retries a failed call (5xx, rate limits) for up to 10 minutes by default: too long for a command
# someone waits on (and an emulator's 500 is no passing state).
RETRY_S = 60.0


class BigQueryError(MyLLMError):
    """BigQuery (or Pub/Sub, for its subscriptions) refused or failed a step; the message says what to do."""


@dataclass(frozen=True)
class Target:
    """The table records land in: ``project.dataset.table``.

    Attributes:
        project: the Google Cloud project of the dataset (the emulator accepts any id).
        dataset / table: BigQuery ids (letters, digits, underscores).
        location: the dataset's location (``EU``, ``US``, a region); None: BigQuery's default (US).
        emulator_host: ``http://host:port`` of a BigQuery emulator, or None for Google Cloud.
        pubsub_emulator_host: ``host:port`` of a Pub/Sub emulator, or None.
    """

    project: str
    dataset: str = DEFAULT_DATASET
    table: str = DEFAULT_TABLE
    location: str | None = None
    emulator_host: str | None = None
    pubsub_emulator_host: str | None = None

    @property
    def table_id(self) -> str:
        """``project.dataset.table``, the form the client and Pub/Sub's ``bigquery_config`` take."""
        return f"{self.project}.{self.dataset}.{self.table}"

    def sibling(self, table: str) -> str:
        """``project.dataset.<table>``: a view or staging table beside the records' table."""
        return f"{self.project}.{self.dataset}.{table}"

    def quoted(self, table: str | None = None) -> str:
        """The table (or a sibling) quoted for GoogleSQL: ``\\`project.dataset.table\\```."""
        return f"`{self.sibling(table) if table else self.table_id}`"

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        dataset: str | None = None,
        table: str | None = None,
        location: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Target:
        """The target from settings, the environment (see the module docstring) and the command's options.

        Raises:
            BigQueryError: no project is known and no emulator is set.
        """
        env = os.environ if environ is None else environ
        emulator = env.get("BIGQUERY_EMULATOR_HOST", "").strip() or None
        if emulator and "://" not in emulator:
            emulator = f"http://{emulator}"
        project = settings.google_cloud_project or (EMULATOR_DEFAULT_PROJECT if emulator else None)
        if not project:
            raise BigQueryError(
                "No Google Cloud project for BigQuery: set GOOGLE_CLOUD_PROJECT (or BIGQUERY_EMULATOR_HOST "
                "for an emulator)."
            )
        return cls(
            project=project,
            dataset=dataset or env.get("MY_LLM_BIGQUERY_DATASET", "").strip() or DEFAULT_DATASET,
            table=table or DEFAULT_TABLE,
            location=location,
            emulator_host=emulator,
            pubsub_emulator_host=settings.pubsub_emulator_host,
        )


def api_retry():
    """The client's default retry (transient errors, exponential backoff), given up after RETRY_S seconds."""
    from google.cloud.bigquery import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(RETRY_S)


def bigquery_client(target: Target):
    """A ``google.cloud.bigquery.Client`` for ``target``: anonymous against its emulator, else the
    application-default credentials.

    Raises:
        BigQueryError: no credentials could be found (run ``gcloud auth application-default login``).
    """
    from google.cloud import bigquery

    if target.emulator_host:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        return bigquery.Client(
            project=target.project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=target.emulator_host),
            location=target.location,
        )
    from google.auth.exceptions import DefaultCredentialsError

    try:
        return bigquery.Client(project=target.project, location=target.location)
    except DefaultCredentialsError as error:
        raise BigQueryError(
            f"No Google Cloud credentials for BigQuery ({error}). Run `gcloud auth application-default login`, "
            "or set BIGQUERY_EMULATOR_HOST for an emulator."
        ) from error


def pubsub_clients(target: Target):
    """``(PublisherClient, SubscriberClient)`` for the admin calls of setup and for the sink: an insecure
    channel to ``target.pubsub_emulator_host`` when set (as :class:`my_llm.Publisher` does), else the
    clients' own choice of endpoint and credentials.

    Raises:
        BigQueryError: no credentials could be found.
    """
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import pubsub_v1

    host = target.pubsub_emulator_host
    if not host:
        try:
            return pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        except DefaultCredentialsError as error:
            raise BigQueryError(
                f"No Google Cloud credentials for Pub/Sub ({error}). Run `gcloud auth application-default login`, "
                "or set PUBSUB_EMULATOR_HOST for the emulator."
            ) from error
    import grpc
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    options = {"api_endpoint": host}
    publisher = pubsub_v1.PublisherClient(
        transport=PublisherGrpcTransport(channel=grpc.insecure_channel(host), host=host), client_options=options
    )
    subscriber = pubsub_v1.SubscriberClient(
        transport=SubscriberGrpcTransport(channel=grpc.insecure_channel(host), host=host), client_options=options
    )
    return publisher, subscriber
