"""``my-llm bigquery setup``: the dataset, the table, the views and the Pub/Sub BigQuery subscriptions, made
idempotently: what exists is left as it is (a table missing a column gets it; a view whose query changed is
replaced), so running it twice changes nothing. With ``dry_run`` nothing is made; the steps say what would be.

Order matters: a BigQuery subscription needs its table, and a dead-letter topic needs a subscription of its
own, or the records it receives are dropped. Each namespace topic (``my-llm-<namespace>``) gets a
subscription ``<topic>.bigquery.<dataset>.<table>`` with ``use_table_schema`` (the message's JSON fields
fill the columns of the same name), ``drop_unknown_fields`` (a newer record's extra field is not an error)
and a dead-letter policy to ``my-llm.dead-letter`` after 5 attempts. On Google Cloud, the Pub/Sub service
agent needs write access to the table (see the README); the Pub/Sub emulator accepts the configuration and
then behaves as a pull subscription. For ``my-llm bigquery sink``, setup makes plain pull subscriptions instead
(``kind="sink"``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from my_llm.bigquery.reports import VIEWS, view_sql
from my_llm.bigquery.schema import CLUSTER_FIELDS, PARTITION_FIELD, table_schema
from my_llm.bigquery.target import BigQueryError, Target, api_retry
from my_llm.log import list_namespaces, recorded_destination
from my_llm.record import TOPIC_PREFIX, topic_id_for, validate_namespace

DEAD_LETTER_TOPIC = "my-llm.dead-letter"  # not my-llm-<namespace>: no namespace can name it
DEAD_LETTER_KEEP = "my-llm.dead-letter.keep"
MAX_DELIVERY_ATTEMPTS = 5
SUBSCRIPTION_KINDS = ("bigquery", "sink")
_ID_LIMIT = 255


@dataclass(frozen=True)
class Step:
    """One thing setup made or found: ``kind`` (dataset, table, view, topic, subscription), ``name`` (its id
    or path), ``state`` (``exists``; ``created``/``updated``; or, in a dry run, ``to create``/``to update``)
    and a ``detail``."""

    kind: str
    name: str
    state: str
    detail: str = ""


def subscription_id(topic_id: str, target: Target, kind: str = "bigquery") -> str:
    """``<topic>.<kind>.<dataset>.<table>`` (kind ``bigquery`` or ``sink``), cut to Pub/Sub's 255 characters
    with a hash when longer."""
    name = f"{topic_id}.{kind}.{target.dataset}.{target.table}"
    if len(name) <= _ID_LIMIT:
        return name
    return f"{name[: _ID_LIMIT - 17]}.{hashlib.sha256(name.encode()).hexdigest()[:16]}"


def setup_tables(client, target: Target, dry_run: bool = False) -> list[Step]:
    """Make the dataset, the table (partitioned by day on created_at, clustered by namespace) and the views.

    Raises:
        BigQueryError: BigQuery refused a step (the message names it; see the README for the IAM roles).
    """
    from google.api_core.exceptions import GoogleAPIError

    try:
        return [_dataset(client, target, dry_run), _table(client, target, dry_run)] + [
            _view(client, target, name, dry_run) for name in VIEWS
        ]
    except GoogleAPIError as error:
        raise BigQueryError(f"BigQuery setup of {target.table_id} failed: {error}") from error


def _dataset(client, target: Target, dry_run: bool) -> Step:
    from google.api_core.exceptions import NotFound
    from google.cloud import bigquery

    name = f"{target.project}.{target.dataset}"
    try:
        found = client.get_dataset(name, retry=api_retry())
        return Step("dataset", name, "exists", f"location {found.location}")
    except NotFound:
        pass
    if dry_run:
        return Step("dataset", name, "to create", f"location {target.location or 'US'}")
    dataset = bigquery.Dataset(name)
    if target.location:  # unset, not null: bqemulator answers 500 to a null location
        dataset.location = target.location
    client.create_dataset(dataset, exists_ok=True, retry=api_retry())
    return Step("dataset", name, "created", f"location {target.location or 'US'}")


def _table(client, target: Target, dry_run: bool) -> Step:
    from google.api_core.exceptions import NotFound
    from google.cloud import bigquery

    layout = f"partitioned by day on {PARTITION_FIELD}, clustered by {', '.join(CLUSTER_FIELDS)}"
    try:
        found = client.get_table(target.table_id, retry=api_retry())
    except NotFound:
        found = None
    if found is None:
        if not dry_run:
            table = bigquery.Table(target.table_id, schema=table_schema())
            table.time_partitioning = bigquery.TimePartitioning(type_="DAY", field=PARTITION_FIELD)
            table.clustering_fields = list(CLUSTER_FIELDS)
            table.description = "my_llm records (schema 2), one row per record id"
            client.create_table(table, exists_ok=True, retry=api_retry())
        return Step("table", target.table_id, "to create" if dry_run else "created", layout)
    have = {field.name for field in found.schema}
    missing = [field for field in table_schema() if field.name not in have]
    if not missing:
        return Step("table", target.table_id, "exists", _layout_note(found) or layout)
    names = ", ".join(field.name for field in missing)
    if not dry_run:
        found.schema = [*found.schema, *[_nullable(field) for field in missing]]
        client.update_table(found, ["schema"], retry=api_retry())
    return Step("table", target.table_id, "to update" if dry_run else "updated", f"adds columns {names}")


def _nullable(field):
    """A column added to an existing table must be NULLABLE (BigQuery refuses REQUIRED on old rows)."""
    from google.cloud.bigquery import SchemaField

    return SchemaField(
        field.name, field.field_type, mode="NULLABLE", description=field.description, fields=field.fields
    )


def _layout_note(table) -> str:
    """Say when an existing table is not laid out as setup makes it (it cannot be changed in place)."""
    partition = table.time_partitioning.field if table.time_partitioning else None
    if partition == PARTITION_FIELD and list(table.clustering_fields or []) == list(CLUSTER_FIELDS):
        return ""
    return f"not partitioned on {PARTITION_FIELD} and clustered by namespace (partition {partition}): left as is"


def _view(client, target: Target, name: str, dry_run: bool) -> Step:
    from google.api_core.exceptions import NotFound
    from google.cloud import bigquery

    view_id, query = target.sibling(name), view_sql(name, target.table_id)
    try:
        found = client.get_table(view_id, retry=api_retry())
    except NotFound:
        found = None
    # An emulator may not give the query back: a view it has is taken as current.
    if found is not None and (not found.view_query or found.view_query.strip() == query):
        return Step("view", view_id, "exists")
    if dry_run:
        return Step(
            "view", view_id, "to create" if found is None else "to update", f"usage by {', '.join(VIEWS[name])}"
        )
    view = bigquery.Table(view_id)
    view.view_query = query
    if found is None:
        client.create_table(view, exists_ok=True, retry=api_retry())
        return Step("view", view_id, "created")
    found.view_query = query
    client.update_table(found, ["view_query"], retry=api_retry())
    return Step("view", view_id, "updated")


def namespace_topics(publisher, target: Target, root: Path, namespaces: Sequence[str] = ()) -> list[str]:
    """The topic paths of the namespaces, sorted: ``namespaces`` when given; else every ``my-llm-*`` topic of
    the project (other machines' namespaces too) and every namespace logged under ``root``. A local
    namespace's topic is the one recorded when it first published, else ``my-llm-<namespace>`` in the project.

    Raises:
        BigQueryError: the project's topics cannot be listed.
    """
    from google.api_core.exceptions import GoogleAPIError

    topics: set[str] = set()
    if not namespaces:
        try:
            listed = publisher.list_topics(request={"project": f"projects/{target.project}"})
            topics |= {topic.name for topic in listed if topic.name.rsplit("/", 1)[-1].startswith(TOPIC_PREFIX)}
        except GoogleAPIError as error:
            raise BigQueryError(f"Could not list the topics of project {target.project}: {error}") from error
    for name in namespaces or list_namespaces(root):
        recorded = recorded_destination(Path(root) / validate_namespace(name))
        topics.add(recorded.topic_path if recorded else publisher.topic_path(target.project, topic_id_for(name)))
    return sorted(topics)


def setup_subscriptions(
    publisher, subscriber, target: Target, topics: Sequence[str], kind: str = "bigquery", dry_run: bool = False
) -> list[Step]:
    """Make a subscription into ``target`` for each topic path in ``topics`` (the topic too, when missing).

    ``kind``: ``bigquery`` makes BigQuery subscriptions (and first the dead-letter topic, with a subscription
    that keeps what it receives); ``sink`` makes plain pull subscriptions ``<topic>.sink.<dataset>.<table>``
    for ``my-llm bigquery sink`` (Google Cloud cannot pull from a BigQuery subscription), with no dead-letter
    policy: the sink acknowledges invalid records itself, and redeliveries after a crash must not count
    towards one (the Pub/Sub emulator counts a whole session's messages each time one is redelivered).

    Raises:
        BigQueryError: Pub/Sub refused a step (on Google Cloud: does the Pub/Sub service agent have
            roles/bigquery.dataEditor on the dataset? See the README).
        ValueError: an unknown ``kind``.
    """
    from google.api_core.exceptions import GoogleAPIError

    if kind not in SUBSCRIPTION_KINDS:
        raise ValueError(f"subscription kind {kind!r}: choose from {', '.join(SUBSCRIPTION_KINDS)}")
    project, steps = target.project, []
    dead_letter = publisher.topic_path(project, DEAD_LETTER_TOPIC)
    try:
        if kind == "bigquery":
            steps.append(_topic(publisher, dead_letter, dry_run))
            keep = subscriber.subscription_path(project, DEAD_LETTER_KEEP)
            steps.append(_subscription(subscriber, keep, {"topic": dead_letter}, "keeps dead letters 7 days", dry_run))
        for topic in topics:
            steps.append(_topic(publisher, topic, dry_run))
            path = subscriber.subscription_path(project, subscription_id(topic.rsplit("/", 1)[-1], target, kind))
            config: dict = {"topic": topic}
            if kind == "bigquery":
                config["bigquery_config"] = {
                    "table": target.table_id,
                    "use_table_schema": True,
                    "drop_unknown_fields": True,
                }
                config["dead_letter_policy"] = {
                    "dead_letter_topic": dead_letter,
                    "max_delivery_attempts": MAX_DELIVERY_ATTEMPTS,
                }
            detail = f"{topic} -> {target.table_id}" + (" (pull: my-llm bigquery sink)" if kind == "sink" else "")
            steps.append(_subscription(subscriber, path, config, detail, dry_run))
        return steps
    except GoogleAPIError as error:
        raise BigQueryError(
            f"Pub/Sub setup failed: {error}. On Google Cloud the Pub/Sub service agent needs "
            f"roles/bigquery.dataEditor on {target.project}.{target.dataset} (see the README)."
        ) from error


def _topic(publisher, path: str, dry_run: bool) -> Step:
    from google.api_core.exceptions import AlreadyExists, NotFound

    try:
        publisher.get_topic(topic=path)
        return Step("topic", path, "exists")
    except NotFound:
        pass
    if dry_run:
        return Step("topic", path, "to create")
    try:
        publisher.create_topic(name=path)
    except AlreadyExists:
        return Step("topic", path, "exists")
    return Step("topic", path, "created")


def _subscription(subscriber, path: str, config: dict, detail: str, dry_run: bool) -> Step:
    from google.api_core.exceptions import AlreadyExists, NotFound

    try:
        found = subscriber.get_subscription(subscription=path)
        table = found.bigquery_config.table
        wanted = config.get("bigquery_config", {}).get("table", "")
        note = f"writes to {table}, not {wanted}: left as is" if wanted and table != wanted else detail
        return Step("subscription", path, "exists", note)
    except NotFound:
        pass
    if dry_run:
        return Step("subscription", path, "to create", detail)
    try:
        subscriber.create_subscription(request={"name": path, **config})
    except AlreadyExists:
        return Step("subscription", path, "exists", detail)
    return Step("subscription", path, "created", detail)
