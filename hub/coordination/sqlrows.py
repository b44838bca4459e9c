"""Set-based writes for the region evaluation: a fixed number of statements per kind of
write, whatever the number of rows.

A national region stores thousands of rows a minute (every hospital's status, a
load-balancing region's renewed advice, tens of thousands of live alerts). Django's
``bulk_update`` writes them as one ``CASE WHEN id = … THEN …`` per field per batch of 500,
which costs seconds to build, send and evaluate at that size; ``bulk_create`` makes a model
instance per row. Here the rows travel as one JSON document, one parameter (the C encoder
writes it and libpq quotes one string; arrays of strings would be quoted element by element
in Python by the client-side binding Django uses), which PostgreSQL parses once into jsonb
(``json`` would parse each row again for each column read) and reads back typed:

    UPDATE t SET a = v.a, … FROM (SELECT (e->>0)::bigint AS id, (e->>1)::text AS a, …
    FROM jsonb_array_elements(%s::jsonb) AS e) AS v WHERE t.id = v.id
    INSERT INTO t (a, …) SELECT (e->>0)::text, … FROM jsonb_array_elements(%s::jsonb) AS e

New rows of the size a cold or saturated minute stores (thousands of recommendations, surge
changes and alerts) go by ``COPY`` instead (``copy_insert``): their primary keys are drawn
from the table's sequence first (one statement), then the rows stream to the server, which
parses each value once (no document to parse and take apart again) while this process
formats the next ones. Updates of many rows (``STAGE_FROM``) go the same way into a
temporary table, then one ``UPDATE … FROM`` it.

Every name put into the statements comes from the model's metadata and every value is in
the parameter or the COPY data: hence the ``noqa: S608``. Times travel as ISO 8601 text
(exact to the microsecond), floats as their shortest exact text. Only for the writes of
``services.region_evaluate``: models with no per-row save logic (no ``auto_now``, no
signals, no JSON encoder of their own).
"""

from __future__ import annotations

import json
import math
import threading
import zlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import Any

import orjson
import psycopg
from django.db import connection, models, transaction


def _column(model: type[models.Model], name: str) -> tuple[str, str]:
    """(column, database type) of one model field."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)  # noqa: S101 (a concrete field, not a relation)
    if isinstance(field, models.JSONField):
        if field.encoder is not None:
            raise NotImplementedError(f"{name}: a JSON field with its own encoder")
        return field.column, "jsonb"
    db_type = field.db_type(connection)
    assert db_type is not None  # noqa: S101
    return field.column, db_type


def _value_sql(i: int, db_type: str) -> str:
    """The SQL reading element ``i`` of a row (a JSON array ``e``) as ``db_type``."""
    if db_type == "jsonb":
        return f"CASE WHEN jsonb_typeof(e->{i}) = 'null' THEN NULL ELSE e->{i} END"
    return f"(e->>{i})::{db_type}"


def _plain(value: Any) -> Any:
    """JSON for what JSON cannot say: times as ISO text, non-finite floats as PostgreSQL
    spells them (``float8`` reads 'NaN', 'Infinity')."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    return value


def _rows(
    model: type[models.Model], columns: Mapping[str, Sequence[Any]]
) -> tuple[list[str], str, str]:
    """(columns, select list, the rows as one JSON document) for ``columns``."""
    names: list[str] = []
    exprs: list[str] = []
    values: list[Sequence[Any]] = []
    qn = connection.ops.quote_name
    for i, (name, vals) in enumerate(columns.items()):
        column, db_type = _column(model, name)
        names.append(column)
        exprs.append(f"{_value_sql(i, db_type)} AS {qn(column)}")
        is_float = db_type in ("double precision", "real")
        values.append([_finite(v) for v in vals] if is_float else vals)
    rows = list(zip(*values, strict=True))
    return names, ", ".join(exprs), json.dumps(rows, default=_plain, separators=(",", ":"))


def int_array(keys: Sequence[Any]) -> str:
    """Integer keys as one array literal (``%s::bigint[]``): one parameter, no per-element
    quoting by the client-side binding."""
    return "{" + ",".join(str(int(k)) for k in keys) + "}"


def _guard(
    model: type[models.Model], only_if: Mapping[str, Sequence[Any]] | None, alias: str
) -> tuple[str, list[Any]]:
    """`` AND t.column = ANY(%s)`` per field of ``only_if`` (field name: allowed values)."""
    if not only_if:
        return "", []
    qn = connection.ops.quote_name
    sql, params = "", []
    for name, allowed in only_if.items():
        column, db_type = _column(model, name)
        sql += f" AND {alias}{qn(column)} = ANY(%s::{db_type}[])"
        params.append(list(allowed))
    return sql, params


def update_tuples(
    model: type[models.Model],
    key: str,
    fields: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    append: Collection[str] = (),
) -> int:
    """``update_rows`` for rows given as tuples: the ``key`` value, then one value per name
    in ``fields``. Returns the number of rows updated."""
    if not rows:
        return 0
    columns = list(zip(*rows, strict=True))
    updated = update_rows(
        model, key, columns[0], dict(zip(fields, columns[1:], strict=True)), append=append
    )
    assert isinstance(updated, int)  # noqa: S101 (without ``returning``: a count)
    return updated


def update_rows(
    model: type[models.Model],
    key: str,
    keys: Sequence[Any],
    columns: Mapping[str, Sequence[Any]],
    *,
    only_if: Mapping[str, Sequence[Any]] | None = None,
    returning: bool = False,
    append: Collection[str] = (),
) -> int | list[int]:
    """Set ``columns`` (field name: one value per key) on the rows whose ``key`` field (an
    integer) is in ``keys``, in one statement; with ``only_if`` (field name: allowed
    values), only on rows that still hold one of those values when updated; the fields in
    ``append`` (JSON arrays) get the value appended (``||``) instead of replaced. Returns the
    number of rows updated, or with ``returning`` their keys."""
    if not keys:
        return [] if returning else 0
    if len(keys) >= STAGE_FROM:
        return _update_staged(model, key, keys, columns, only_if, returning, append)
    table = model._meta.db_table
    key_column, _ = _column(model, key)
    qn = connection.ops.quote_name
    names, select, document = _rows(model, {key: keys, **columns})
    sets = _sets(model, names[1:], append)
    guard, params = _guard(model, only_if, "t.")
    sql = (
        f"UPDATE {qn(table)} AS t SET {sets} "  # noqa: S608  # nosec B608
        f"FROM (SELECT {select} FROM jsonb_array_elements(%s::jsonb) AS e) AS v "
        f"WHERE t.{qn(key_column)} = v.{qn(key_column)}{guard}"
        + (f" RETURNING t.{qn(key_column)}" if returning else "")
    )
    if returning:
        settle()
    with connection.cursor() as cursor:
        if not returning:
            return _send(cursor, sql, [document, *params])
        cursor.execute(sql, [document, *params])
        return [row[0] for row in cursor.fetchall()]


def _sets(model: type[models.Model], columns: Sequence[str], append: Collection[str]) -> str:
    """The SET list of an update from ``v``: each column replaced, or appended to (``||``)
    for the columns of the fields in ``append``."""
    qn = connection.ops.quote_name
    appended = {_column(model, name)[0] for name in append}
    return ", ".join(
        f"{qn(c)} = t.{qn(c)} || v.{qn(c)}" if c in appended else f"{qn(c)} = v.{qn(c)}"
        for c in columns
    )


# From this many rows, ``update_rows`` stages them by COPY (three more round trips, but no
# document to parse and take apart: a load-balancing region renews thousands of a few kB).
STAGE_FROM = 500


def _update_staged(
    model: type[models.Model],
    key: str,
    keys: Sequence[Any],
    columns: Mapping[str, Sequence[Any]],
    only_if: Mapping[str, Sequence[Any]] | None,
    returning: bool,
    append: Collection[str] = (),
) -> int | list[int]:
    """``update_rows`` through a temporary table of the target's columns (no constraints;
    dropped at commit, emptied after each use): the rows go in by COPY, then one
    ``UPDATE … FROM`` it."""
    table = model._meta.db_table
    stage = f"_stage_{table}"
    qn = connection.ops.quote_name
    names: list[str] = []
    values: list[Sequence[Any]] = []
    for name, vals in {key: keys, **columns}.items():
        column, db_type = _column(model, name)
        names.append(column)
        values.append(_copy_values(db_type, vals))
    sets = _sets(model, names[1:], append)
    guard, params = _guard(model, only_if, "t.")
    settle()  # COPY is not allowed while statements are in flight
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {qn(stage)} ON COMMIT DROP AS "  # noqa: S608  # nosec B608
            f"SELECT * FROM {qn(table)} WITH NO DATA"
        )
        # Keyed, so that no plan scans it once per target row: when the target's statistics
        # say it is empty (analysed before a region's first rows went in, as after a mass
        # delete), the planner may loop over the target and look each row up here.
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {qn(f'{stage}_{names[0]}')} ON {qn(stage)} "
            f"({qn(names[0])})"
        )
        _copy(
            cursor.cursor,
            f"COPY {qn(stage)} ({', '.join(qn(c) for c in names)}) FROM STDIN",
            zip(*values, strict=True),
        )
        # The planner knows nothing of a table filled in this transaction: without its row
        # count it may scan it once per row of the target (seconds for a few thousand).
        cursor.execute(f"ANALYZE {qn(stage)} ({qn(names[0])})")
        update = (
            f"UPDATE {qn(table)} AS t SET {sets} FROM {qn(stage)} AS v "  # noqa: S608  # nosec B608
            f"WHERE t.{qn(names[0])} = v.{qn(names[0])}{guard}"
            + (f" RETURNING t.{qn(names[0])}" if returning else "")
        )
        result: int | list[int]
        if returning:
            cursor.execute(update, params)
            result = [row[0] for row in cursor.fetchall()]
        else:
            result = _send(cursor, update, params)
        _send(cursor, f"TRUNCATE {qn(stage)}", [])
    return result


class StagedUpdate:
    """Rows for one ``UPDATE`` of ``model`` made one at a time, sent while they are made.

    Each row is its ``key`` value, the values of the ``masked`` fields (set only where the
    row's ``changed`` positions say so; the others keep what they hold, and their values are
    not sent), and those of the ``always`` fields (set on every row). Until ``STAGE_FROM``
    rows are there they are held; from then on they stream by ``COPY`` into a temporary
    table as they come, so the server parses each while the caller makes the next (a
    load-balancing minute rewrites the words of thousands of renewals, ≈ 100 µs each, and a
    COPY after the last one kept the process waiting ≈ 140 ms for the server), and the
    ``UPDATE … FROM`` it is sent at the end of the block (ahead, inside ``sent_ahead``).
    Fewer rows go as ``update_rows`` would send them, one statement per set of changed
    fields.

    Use it as a context manager around the loop that makes the rows, inside a transaction
    (the stage is dropped at commit; one is opened if there is none). While its ``COPY`` is
    open no other statement can run on the connection (psycopg holds the connection's lock:
    it would wait for ever), so one sent through Django raises instead; an exception in the
    block abandons the ``COPY`` and rolls the transaction back."""

    def __init__(
        self,
        model: type[models.Model],
        key: str,
        masked: Sequence[str],
        always: Sequence[str],
    ) -> None:
        if len(masked) > 30:
            raise ValueError("at most 30 masked fields (one bit each)")
        self.model, self.key = model, key
        self.masked, self.always = tuple(masked), tuple(always)
        self._held: list[tuple[Any, tuple[Any, ...], tuple[int, ...], tuple[Any, ...]]] = []
        self._columns = [_column(model, f) for f in (key, *self.masked, *self.always)]
        self._tx: Any = None  # the transaction the stage lives in, once streaming
        self._stack: ExitStack | None = None  # the cursor and its open COPY
        self._write: Any = None
        self._times: dict[datetime, str] = {}
        # One stage per table and list of columns: another StagedUpdate of the same model
        # with other fields, in the same transaction, gets a table of its own shape.
        names = ",".join(c for c, _ in self._columns)
        self._stage = f"_renew_{model._meta.db_table}_{zlib.crc32(names.encode()):08x}"

    def __enter__(self) -> StagedUpdate:
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        stack, self._stack, self._write = self._stack, None, None
        tx, self._tx = self._tx, None
        if stack is None:  # never streamed
            if kind is None:
                self._send_held()
            return
        try:
            if kind is not None:
                with connection.wrap_database_errors:
                    stack.__exit__(kind, exc, tb)  # psycopg ends the COPY with an error
            else:
                with connection.wrap_database_errors:
                    stack.close()  # the COPY's end: the server has parsed most rows by now
                self._apply_stage()
        except BaseException as error:
            tx.__exit__(type(error), error, error.__traceback__)
            raise
        tx.__exit__(kind, exc, tb)

    def add(
        self,
        key: Any,
        masked: Sequence[Any],
        changed: Sequence[int],
        always: Sequence[Any],
    ) -> None:
        """One row: ``changed`` holds the positions (in ``masked``) of the fields to set."""
        row = (key, tuple(masked), tuple(changed), tuple(always))
        if self._write is not None:
            with connection.wrap_database_errors:
                self._write(self._copy_row(row))
            return
        self._held.append(row)
        if len(self._held) >= STAGE_FROM:
            self._open()

    def _copy_row(self, row: tuple[Any, tuple[Any, ...], tuple[int, ...], tuple[Any, ...]]) -> Any:
        key, masked, changed, always = row
        bits = 0
        values: list[Any] = [key]
        for j, value in enumerate(masked):
            if j in changed:
                bits |= 1 << j
                values.append(self._text(1 + j, value))
            else:
                values.append(None)
        offset = 1 + len(masked)
        values.extend(self._text(offset + j, value) for j, value in enumerate(always))
        values.append(bits)
        return values

    def _text(self, i: int, value: Any) -> Any:
        """A value as COPY is sent it (``_copy_values``, one value)."""
        db_type = self._columns[i][1]
        if db_type == "jsonb":
            return _json_text(value)
        if db_type == "timestamp with time zone" and value is not None and value.tzinfo:
            text = self._times.get(value)
            if text is None:
                text = self._times[value] = value.isoformat()
            return text
        return value

    def _open(self) -> None:
        qn = connection.ops.quote_name
        table, stage = self.model._meta.db_table, self._stage
        names = [c for c, _ in self._columns]
        settle()  # COPY is not allowed while statements are in flight
        tx = transaction.atomic(savepoint=False)
        tx.__enter__()
        stack = ExitStack()
        try:
            cursor = stack.enter_context(connection.cursor())
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {qn(stage)} ON COMMIT DROP AS "  # noqa: S608  # nosec B608
                f"SELECT {', '.join(qn(c) for c in names)}, 0::integer AS _changed "
                f"FROM {qn(table)} WITH NO DATA"
            )
            # Keyed, for the same reason as ``_update_staged``'s stage.
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {qn(f'{stage}_key')} ON {qn(stage)} ({qn(names[0])})"
            )
            columns = ", ".join(qn(c) for c in [*names, "_changed"])
            with connection.wrap_database_errors:
                copy = stack.enter_context(
                    _open_copy(cursor.cursor, f"COPY {qn(stage)} ({columns}) FROM STDIN")
                )
            stack.enter_context(connection.execute_wrapper(_refuse_while_copying))
            with connection.wrap_database_errors:
                for row in self._held:
                    copy.write_row(self._copy_row(row))
        except BaseException as error:
            with connection.wrap_database_errors:
                stack.__exit__(type(error), error, error.__traceback__)
            tx.__exit__(type(error), error, error.__traceback__)
            raise
        self._tx, self._stack, self._write, self._held = tx, stack, copy.write_row, []

    def _apply_stage(self) -> None:
        qn = connection.ops.quote_name
        names = [c for c, _ in self._columns]
        key, masked = names[0], names[1 : 1 + len(self.masked)]
        sets = [
            f"{qn(c)} = CASE WHEN v._changed & {1 << j} <> 0 THEN v.{qn(c)} ELSE t.{qn(c)} END"
            for j, c in enumerate(masked)
        ]
        sets += [f"{qn(c)} = v.{qn(c)}" for c in names[1 + len(self.masked) :]]
        stage = qn(self._stage)
        with connection.cursor() as cursor:
            # The planner knows nothing of a table filled in this transaction.
            cursor.execute(f"ANALYZE {stage} ({qn(key)})")
            _send(
                cursor,
                f"UPDATE {qn(self.model._meta.db_table)} AS t SET {', '.join(sets)} "  # noqa: S608  # nosec B608
                f"FROM {stage} AS v WHERE t.{qn(key)} = v.{qn(key)}",
                [],
            )
            _send(cursor, f"TRUNCATE {stage}", [])

    def _send_held(self) -> None:
        """Fewer than ``STAGE_FROM`` rows: one ``update_rows`` per set of changed fields."""
        groups: dict[tuple[int, ...], list[tuple[Any, ...]]] = {}
        for row in self._held:
            groups.setdefault(row[2], []).append(row)
        self._held = []
        for changed, rows in groups.items():
            update_rows(
                self.model,
                self.key,
                [r[0] for r in rows],
                {
                    **{self.masked[j]: [r[1][j] for r in rows] for j in changed},
                    **{f: [r[3][i] for r in rows] for i, f in enumerate(self.always)},
                },
            )


def _refuse_while_copying(*args: Any) -> Any:
    raise RuntimeError(
        "a statement while a StagedUpdate streams its rows by COPY: it would wait for ever "
        "(make the rows without reading the database, or read before the block)"
    )


def insert_rows(
    model: type[models.Model], columns: Mapping[str, Sequence[Any]], *, returning: bool = False
) -> list[int]:
    """Insert one row per position of the ``columns`` sequences (field name: values), in one
    statement. With ``returning``, the new primary keys (in no promised order; the
    evaluation's inserts use ``copy_insert``, whose keys follow the rows)."""
    lengths = {len(v) for v in columns.values()}
    if not columns or lengths == {0}:
        return []
    table = model._meta.db_table
    qn = connection.ops.quote_name
    names, select, document = _rows(model, columns)
    pk = model._meta.pk.column if model._meta.pk is not None else "id"
    sql = (
        f"INSERT INTO {qn(table)} ({', '.join(qn(c) for c in names)}) "  # noqa: S608  # nosec B608
        f"SELECT {select} FROM jsonb_array_elements(%s::jsonb) AS e"
        + (f" RETURNING {qn(pk)}" if returning else "")
    )
    if returning:
        settle()
    with connection.cursor() as cursor:
        if not returning:
            _send(cursor, sql, [document])
            return []
        cursor.execute(sql, [document])
        return [row[0] for row in cursor.fetchall()]


def copy_insert(model: type[models.Model], columns: Mapping[str, Sequence[Any]]) -> list[int]:
    """Insert one row per position of the ``columns`` sequences (field name: values) by
    ``COPY``, in one round trip for the keys and one stream for the rows. Returns the new
    rows' primary keys in the order of the rows. Values as ``insert_rows`` takes them
    (JSON fields as Python values, ``None`` for SQL NULL)."""
    lengths = {len(v) for v in columns.values()}
    if not columns or lengths == {0}:
        return []
    if len(lengths) != 1:
        raise ValueError("columns of different lengths")
    (n,) = lengths
    table = model._meta.db_table
    pk = model._meta.pk.column if model._meta.pk is not None else "id"
    qn = connection.ops.quote_name
    names = [pk]
    values: list[Sequence[Any]] = []
    for name, vals in columns.items():
        column, db_type = _column(model, name)
        names.append(column)
        values.append(_copy_values(db_type, vals))
    sql = f"COPY {qn(table)} ({', '.join(qn(c) for c in names)}) FROM STDIN"
    settle()  # the keys are needed, and COPY is not allowed while statements are in flight
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [table, pk, n],
        )
        ids = [row[0] for row in cursor.fetchall()]
        _copy(cursor.cursor, sql, zip(ids, *values, strict=True))
    return ids


def _copy_values(db_type: str, values: Sequence[Any]) -> Sequence[Any]:
    """One column's values as COPY is sent them: JSON as text; aware times as ISO text, each
    distinct time formatted once (most time columns hold the evaluation's one time, and
    psycopg's dumper took ≈ 1 µs a time, 4-5 times per row); the rest as they are."""
    if db_type == "jsonb":
        return [_json_text(v) for v in values]
    if db_type != "timestamp with time zone":
        return values
    done: dict[datetime, str] = {}
    out: list[Any] = []
    for v in values:
        if v is None or v.tzinfo is None:
            out.append(v)
            continue
        text = done.get(v)
        if text is None:
            text = done[v] = v.isoformat()
        out.append(text)
    return out


def _json_text(value: Any) -> str | None:
    """A JSON field's value as the text COPY sends (``None``: SQL NULL, as ``insert_rows``
    stores a JSON null). By orjson: the same JSON values as ``json.dumps`` (keys as text,
    times through ``_plain``) in a fifth of the time (a saturated region's first evaluation
    sends some 40,000 JSON values by COPY)."""
    if value is None:
        return None
    return orjson.dumps(value, default=_plain, option=_ORJSON).decode()


_ORJSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def _copy(cursor: Any, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """Stream ``rows`` by ``COPY … FROM STDIN`` (one statement; a seam for counting)."""
    with cursor.copy(sql) as copy:
        write = copy.write_row
        for row in rows:
            write(row)


def _open_copy(cursor: Any, sql: str) -> Any:
    """``COPY … FROM STDIN`` opened for rows written one by one (a seam for counting)."""
    return cursor.copy(sql)


def set_where_in(
    model: type[models.Model],
    key: str,
    keys: Sequence[Any],
    values: Mapping[str, Any],
    *,
    only_if: Mapping[str, Sequence[Any]] | None = None,
    returning: bool = False,
) -> int | list[int]:
    """Set the same ``values`` (field name: value) on every row whose ``key`` field (an
    integer) is in ``keys``: one statement, the keys as one array parameter; with
    ``only_if`` (field name: allowed values), only on rows that still hold one of them.
    Returns the number of rows updated, or with ``returning`` their keys."""
    if not keys:
        return [] if returning else 0
    qn = connection.ops.quote_name
    key_column, key_type = _column(model, key)
    sets, params = [], []
    for name, value in values.items():
        column, db_type = _column(model, name)
        if db_type == "jsonb":
            sets.append(f"{qn(column)} = %s::jsonb")
            params.append(json.dumps(value))
        else:
            sets.append(f"{qn(column)} = %s::{db_type}")
            params.append(value)
    guard, guard_params = _guard(model, only_if, "")
    sql = (
        f"UPDATE {qn(model._meta.db_table)} SET {', '.join(sets)} "  # noqa: S608  # nosec B608
        f"WHERE {qn(key_column)} = ANY(%s::{key_type}[]){guard}"
        + (f" RETURNING {qn(key_column)}" if returning else "")
    )
    if returning:
        settle()
    with connection.cursor() as cursor:
        if not returning:
            return _send(cursor, sql, [*params, int_array(keys), *guard_params])
        cursor.execute(sql, [*params, int_array(keys), *guard_params])
        return [row[0] for row in cursor.fetchall()]


# --- writes sent ahead ------------------------------------------------------------------------

_AHEAD = threading.local()
_PIPELINE_SUPPORTED = psycopg.Pipeline.is_supported


@contextmanager
def sent_ahead() -> Iterator[None]:
    """Within this block, this module's writes that need no answer (updates and inserts
    without ``returning``) are sent without waiting for the server (psycopg's pipeline
    mode): the server applies them on its own core while this process computes what comes
    next (a load-balancing minute's thousands of renewals while the alerts are planned).
    Their answers, and any error, are taken at the next of this module's statements that
    needs one (a ``COPY``, keys drawn, ``returning``), at ``settle``, or at the end of the
    block; any other statement rides the pipeline and a fetch waits for it. Row counts of
    writes sent ahead are not known (−1). Not for code that reads the row count of its own
    writes (an ORM ``save`` does): keep it outside the block."""
    if getattr(_AHEAD, "on", False):
        yield
        return
    _AHEAD.on, _AHEAD.stack = True, None
    try:
        yield
    except BaseException as exc:
        stack, _AHEAD.stack = _AHEAD.stack, None
        if stack is not None:
            stack.__exit__(type(exc), exc, exc.__traceback__)
        raise
    else:
        settle()
    finally:
        _AHEAD.on, _AHEAD.stack = False, None


def settle() -> None:
    """Wait for the answers of the writes sent ahead (raising the first error among them),
    leaving pipeline mode; nothing to do outside ``sent_ahead`` or with none in flight."""
    stack: ExitStack | None = getattr(_AHEAD, "stack", None)
    if stack is not None:
        _AHEAD.stack = None
        with connection.wrap_database_errors:  # raised as Django's errors, as at execute
            stack.close()


def _send(cursor: Any, sql: str, params: Sequence[Any]) -> int:
    """Execute a write whose answer is not needed: inside ``sent_ahead``, without waiting
    for it (−1: the count is not known yet); else, or where the client library has no
    pipeline mode (libpq before 14), as usual, returning its row count."""
    if not getattr(_AHEAD, "on", False) or not _PIPELINE_SUPPORTED():
        cursor.execute(sql, params)
        return int(cursor.rowcount)
    if _AHEAD.stack is None:
        stack = ExitStack()
        stack.enter_context(connection.connection.pipeline())
        _AHEAD.stack = stack
    cursor.execute(sql, params)
    return -1
