"""Exactly once: a batch of rows is loaded into a staging table, then MERGEd into the table on ``id``.

Both ``sync`` (from disk) and ``sink`` (from Pub/Sub) write this way, so a record that arrives twice (a
redelivery, a sync after the subscription delivered it, a sync run twice) is inserted once. The MERGE
names its columns (``INSERT (id, ...) VALUES (source.id, ...)``: bqemulator cannot parse ``INSERT ROW``)
and bounds ``created_at`` to the batch's range, so BigQuery reads only those days' partitions of the
table (a record's ``created_at`` never changes, so a row outside the range cannot have the same id).

A load job of newline-delimited JSON costs nothing in BigQuery (batch loads are free; the MERGE is billed
for the partitions it reads) and, unlike streaming inserts, leaves no streaming buffer that DML must wait on.
"""

from __future__ import annotations

import io
import logging
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from typing import BinaryIO

from my_llm.bigquery.schema import COLUMN_NAMES, row_line, table_schema
from my_llm.bigquery.target import BigQueryError, Target, api_retry
from my_llm.record import parse_time, utc_now

log = logging.getLogger(__name__)

SPOOL_BYTES = 8 * 1024 * 1024  # a batch's NDJSON stays in memory up to this size, then goes to a temporary file
STAGING_HOURS = 24  # a staging table left behind by a killed process expires after this
MERGE_ATTEMPTS = 5  # concurrent DML on one table can fail with "Could not serialize access": retried


class Batch:
    """Rows for one load job: their NDJSON (in memory up to 8 MB, then in a temporary file), their ids
    (a second row with an id already in the batch is skipped) and the range of their ``created_at``.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self) -> None:
        # A BytesIO, then a temporary file (SpooledTemporaryFile's mode "w+b" is refused by the client's upload).
        self.file: io.BytesIO | BinaryIO = io.BytesIO()
        self.ids: set[str] = set()
        self.first: str | None = None
        self.last: str | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def add(self, row: dict) -> bool:
        """Add a row made by :func:`my_llm.bigquery.schema.to_row`; False when its id is in the batch already."""
        if row["id"] in self.ids:
            return False
        moment = row["created_at"]  # to_row's fixed-width UTC form: text order is time order
        self.first = moment if self.first is None or moment < self.first else self.first
        self.last = moment if self.last is None or moment > self.last else self.last
        self.file.write(row_line(row))
        self.ids.add(row["id"])
        if isinstance(self.file, io.BytesIO) and self.file.tell() > SPOOL_BYTES:
            spilled = tempfile.TemporaryFile()
            spilled.write(self.file.getbuffer())
            self.file = spilled
        return True

    def close(self) -> None:
        self.file.close()


class Writer:
    """Writes batches into ``target``'s table through a staging table of its own.

    The staging table is ``_<table>_staging_<purpose>_<random>`` beside the table, made on the first write
    with a 24-hour expiry (so a killed process leaves nothing for long) and deleted by :meth:`close`; two
    writers (a sync and a sink, two sinks) never share one.

    Args:
        client: a ``google.cloud.bigquery.Client`` (see :func:`my_llm.bigquery.bigquery_client`).
        target: the table; it must exist (``my-llm bigquery setup``).
        purpose: a word for the staging table's name (``sync``, ``sink``).
    """

    def __init__(self, client, target: Target, purpose: str) -> None:
        self.client, self.target = client, target
        self.staging = f"_{target.table}_staging_{purpose}_{uuid.uuid4().hex[:8]}"
        self._staging_ready = False

    def write(self, batch: Batch) -> int:
        """Load ``batch`` into the staging table and MERGE it into the table; returns the rows inserted
        (the rest were there already). An empty batch costs nothing.

        Raises:
            BigQueryError: the load or the MERGE failed (the message has BigQuery's reasons); nothing of
                the batch may be taken as written.
        """
        if not len(batch):
            return 0
        self._ensure_staging()
        self._load(batch)
        return self._merge(parse_time(batch.first), parse_time(batch.last))

    def close(self) -> None:
        """Delete the staging table (if one was made)."""
        if self._staging_ready:
            from google.api_core.exceptions import GoogleAPIError

            try:
                self.client.delete_table(self.target.sibling(self.staging), not_found_ok=True, retry=api_retry())
            except GoogleAPIError as error:  # it expires by itself; the caller's rows are written
                log.warning("Could not delete the staging table %s (%s); it expires in a day.", self.staging, error)
            self._staging_ready = False

    def _ensure_staging(self) -> None:
        if self._staging_ready:
            return
        from google.api_core.exceptions import GoogleAPIError
        from google.cloud import bigquery

        table = bigquery.Table(self.target.sibling(self.staging), schema=table_schema())
        table.expires = utc_now() + timedelta(hours=STAGING_HOURS)
        try:
            self.client.create_table(table, exists_ok=True, retry=api_retry())
        except GoogleAPIError as error:
            raise BigQueryError(
                f"Could not create the staging table {self.target.sibling(self.staging)}: {error}. "
                f"Does the dataset exist? Run `my-llm bigquery setup --dataset {self.target.dataset}`."
            ) from error
        self._staging_ready = True

    def _load(self, batch: Batch) -> None:
        from google.api_core.exceptions import GoogleAPIError
        from google.cloud import bigquery

        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            schema=table_schema(),
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        )
        batch.file.seek(0)
        try:
            # No size: always a resumable upload (bqemulator refuses the multipart one the client uses up to 5 MB).
            job = self.client.load_table_from_file(batch.file, self.target.sibling(self.staging), job_config=config)
            job.result(retry=api_retry())
        except GoogleAPIError as error:
            raise BigQueryError(f"Loading {len(batch)} rows into {self.staging} failed: {error}") from error

    def _merge(self, first: datetime, last: datetime) -> int:
        from google.api_core.exceptions import BadRequest, GoogleAPIError

        sql = merge_sql(self.target, self.staging, first, last)
        attempt = 1
        while True:
            try:
                job = self.client.query(sql, retry=api_retry())
                job.result(retry=api_retry())
                return int(job.num_dml_affected_rows or 0)
            except BadRequest as error:
                if "concurrent update" not in str(error) or attempt == MERGE_ATTEMPTS:
                    raise BigQueryError(f"The MERGE into {self.target.table_id} failed: {error}") from error
            except GoogleAPIError as error:
                raise BigQueryError(f"The MERGE into {self.target.table_id} failed: {error}") from error
            time.sleep(0.5 * 2**attempt)
            attempt += 1


def merge_sql(target: Target, staging: str, first: datetime, last: datetime) -> str:
    """The MERGE of staging table ``staging`` into ``target`` on ``id``, with explicit columns and the
    partition bound ``created_at BETWEEN first AND last`` (aware datetimes, from the batch)."""
    columns = ", ".join(f"`{name}`" for name in COLUMN_NAMES)
    values = ", ".join(f"source.`{name}`" for name in COLUMN_NAMES)
    return (
        f"MERGE {target.quoted()} AS target USING {target.quoted(staging)} AS source "
        f"ON target.`id` = source.`id` "
        f"AND target.`created_at` BETWEEN TIMESTAMP '{_literal(first)}' AND TIMESTAMP '{_literal(last)}' "
        f"WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({values})"
    )


def _literal(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
