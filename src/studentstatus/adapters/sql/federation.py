"""Provincial stores and a national hub on PostgreSQL's own logical replication.

What travels, and how (the how-to is ``docs/how-to/federation.md``):

* **Province → hub.**  :func:`publish` gives a provincial store a *feed schema*
  ``province_PP`` — ``records`` (id, county, kindergarten, state, grade, sex,
  number kind and the child's national identity hash), ``events`` (the change log
  without operators, reasons or field values), ``problems`` (kind, county,
  status) and ``outbox`` (messages to other provinces) — kept by statement-level
  triggers on the store's own tables in the writing transaction, and a
  publication of those four tables.  The hub subscribes (:meth:`Hub.attach`) into a
  schema of the same name, so the rows of two provinces never meet in one table.
  Names, document numbers, guardians and national numbers never leave the
  province; the identity hash is an HMAC under a national key that the hub does
  not hold (:func:`studentstatus.domain.federation.national_ident`).
* **Hub → province.**  An ``ALWAYS`` trigger on each ``province_PP.outbox`` routes
  a replicated message into ``national.mail``; the hub's duplicate notices go
  there too.  Each province subscribes to the publication of
  ``national.mail WHERE destination = 'PP'`` (inserts only), into a table of the
  same name; :class:`ProvinceLink` reads it, marking each message applied in the
  transaction that applies it.

Replication, ordering, catch-up after a node was down and retention of what a
subscriber has not confirmed are PostgreSQL's (replication slots); this module
only creates the objects, idempotently, and checks them: ``wal_level`` must be
``logical`` on every node (:class:`~studentstatus.errors.FederationError`
``wal_level_not_logical``), and a subscription whose slot is gone is reported
(``slot_missing``).  Other stores are refused (``postgresql_only``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from studentstatus.adapters.sql.store import SqlStore, SqlUnitOfWork
from studentstatus.domain.enums import Grade, State
from studentstatus.domain.federation import (
    IDENT_HEX,
    Message,
    MessageKind,
    Transfer,
    TransferStatus,
    check_key,
    check_province,
    national_ident,
    open_number,
    seal_number,
)
from studentstatus.domain.model import ApprovalStep, Child
from studentstatus.errors import ConflictError, FederationError, StorageError
from studentstatus.ports import UnitOfWork
from studentstatus.serialization import from_dict, to_dict

__all__ = [
    "LOCAL_SCHEMA",
    "NATIONAL_SCHEMA",
    "Hub",
    "NodeStatus",
    "ProvinceLink",
    "PublishReport",
    "conninfo",
    "feed_schema",
    "publish",
    "records_feed_equal",
]

LOCAL_SCHEMA = "studentstatus_federation"
"""Per node, never published: settings, transfer rows, trigger functions."""
NATIONAL_SCHEMA = "national"
"""``national.mail``: on the hub every message; on a province, those to it."""

_HERE = "subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
"""pg_subscription is shared by the cluster's databases: this database's rows."""
_LIVE = tuple(s.value for s in State if s.is_live)
_LIVE_SQL = ", ".join(f"'{s}'" for s in _LIVE)


def feed_schema(province: str) -> str:
    """The schema of a province's feed, on the province and on the hub.

    >>> feed_schema("44")
    'province_44'
    """
    return f"province_{check_province(province)}"


def _publication(province: str) -> str:
    return f"studentstatus_{province}"


def _hub_publication(province: str) -> str:
    return f"studentstatus_hub_to_{province}"


def _hub_subscription(province: str) -> str:
    return f"studentstatus_hub_from_{province}"


def _province_subscription(province: str) -> str:
    return f"studentstatus_{province}_from_hub"


def conninfo(url: str | sa.URL) -> str:
    """The libpq connection string of a SQLAlchemy URL (what a subscription connects with).

    >>> conninfo("postgresql+psycopg://postgres@127.0.0.1:55441/test")
    "host='127.0.0.1' port='55441' user='postgres' dbname='test'"
    """
    u = sa.make_url(url) if isinstance(url, str) else url
    parts = {
        "host": u.host,
        "port": u.port,
        "user": u.username,
        "password": u.password,
        "dbname": u.database,
    }
    return " ".join(
        f"{k}='{str(v).replace(chr(92), chr(92) * 2).replace(chr(39), chr(92) + chr(39))}'"
        for k, v in parts.items()
        if v is not None
    )


def _store_dialect(store: object) -> str:
    if isinstance(store, SqlStore):
        return store.dialect_name
    return type(store).__name__


def _require_postgresql(dialect: str, what: str) -> None:
    if dialect != "postgresql":
        raise FederationError(
            "postgresql_only",
            f"{what}: the federation runs on PostgreSQL stores only, not {dialect}",
            f"{what}：省际联网仅支持 PostgreSQL 存储，不支持 {dialect}",
            hint="run the provincial store on PostgreSQL (docs/how-to/postgresql.md)",
            field="store",
        )


def _check_wal_level(conn: Connection, node: str) -> None:
    level = conn.exec_driver_sql("SHOW wal_level").scalar_one()
    if level != "logical":
        raise FederationError(
            "wal_level_not_logical",
            f"{node}: wal_level is {level}, logical replication needs logical",
            f"{node}：wal_level 为 {level}，逻辑复制需要 logical",
            hint="ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL",
            field="wal_level",
        )


@contextmanager
def _autocommit(engine: Engine) -> Iterator[Connection]:
    # CREATE SUBSCRIPTION (which creates a slot) runs outside a transaction block.
    with engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT")


def _exists(conn: Connection, sql: str, **params: Any) -> bool:
    return conn.execute(sa.text(sql), params).first() is not None


# ------------------------------------------------------------------------- DDL


def _feed_ddl(province: str, *, hub: bool = False) -> list[str]:
    s = feed_schema(province)
    # The hub looks only for live records (dedupe: an index-only scan of the live ones); the
    # province also for a child's earlier records (a transfer request: record_here).
    ident_index = (
        f"CREATE INDEX IF NOT EXISTS records_live_ident ON {s}.records (ident) "
        f"WHERE state IN ({_LIVE_SQL})"
        if hub
        else f"CREATE INDEX IF NOT EXISTS records_ident ON {s}.records (ident)"
    )
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"""CREATE TABLE IF NOT EXISTS {s}.records (
            record_id varchar(64) PRIMARY KEY,
            region_code varchar(12) NOT NULL,
            kindergarten_code varchar(32) NOT NULL,
            state varchar(32) NOT NULL,
            grade varchar(32),
            sex char(1),
            number_kind char(1),
            ident char({IDENT_HEX}))""",
        ident_index,
        f"""CREATE TABLE IF NOT EXISTS {s}.events (
            record_id varchar(64) NOT NULL,
            seq integer NOT NULL,
            kind varchar(32) NOT NULL,
            from_state varchar(32),
            to_state varchar(32) NOT NULL,
            effective_date date NOT NULL,
            recorded_at timestamp NOT NULL,
            PRIMARY KEY (record_id, seq))""",
        f"""CREATE TABLE IF NOT EXISTS {s}.problems (
            id varchar(64) PRIMARY KEY,
            record_id varchar(64) NOT NULL,
            kind varchar(32) NOT NULL,
            county_code varchar(12) NOT NULL,
            status varchar(32) NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS {s}.outbox (
            id varchar(96) PRIMARY KEY,
            source varchar(8) NOT NULL,
            destination char(2) NOT NULL,
            kind varchar(32) NOT NULL,
            body jsonb NOT NULL,
            created_at timestamptz NOT NULL)""",
    ]


_MAIL_DDL = [
    f"CREATE SCHEMA IF NOT EXISTS {NATIONAL_SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {NATIONAL_SCHEMA}.mail (
        id varchar(96) PRIMARY KEY,
        source varchar(8) NOT NULL,
        destination char(2) NOT NULL,
        kind varchar(32) NOT NULL,
        body jsonb NOT NULL,
        created_at timestamptz NOT NULL,
        applied_at timestamptz)""",
    f"CREATE INDEX IF NOT EXISTS mail_unapplied ON {NATIONAL_SCHEMA}.mail "
    "(destination, created_at, id) WHERE applied_at IS NULL",
]

_LOCAL_DDL = [
    f"CREATE SCHEMA IF NOT EXISTS {LOCAL_SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {LOCAL_SCHEMA}.settings (
        province char(2) PRIMARY KEY,
        ident_key bytea NOT NULL,
        ipad bytea NOT NULL,
        opad bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now())""",
    f"""CREATE TABLE IF NOT EXISTS {LOCAL_SCHEMA}.transfers (
        id varchar(96) PRIMARY KEY,
        direction varchar(3) NOT NULL,
        status varchar(16) NOT NULL,
        other_province char(2) NOT NULL,
        ident char({IDENT_HEX}) NOT NULL,
        effective_date date NOT NULL,
        kindergarten_code varchar(32),
        county_code varchar(12),
        record_id varchar(64),
        grade varchar(32),
        child jsonb,
        national_number varchar(32),
        requested_by varchar(200) NOT NULL,
        decided_by varchar(200),
        reason text NOT NULL,
        created_at timestamptz,
        updated_at timestamptz,
        steps jsonb NOT NULL DEFAULT '[]',
        sides jsonb NOT NULL DEFAULT '[]')""",
    f"CREATE INDEX IF NOT EXISTS transfers_county ON {LOCAL_SCHEMA}.transfers (county_code, id)",
]


def _pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer padded keys (RFC 2104), for the SQL twin below.

    >>> import hashlib, hmac
    >>> ipad, opad = _pads(b"k" * 32)
    >>> inner = hashlib.sha256(ipad + b"m").digest()
    >>> hashlib.sha256(opad + inner).hexdigest() == hmac.new(b"k" * 32, b"m", "sha256").hexdigest()
    True
    """
    block = hashlib.sha256(key).digest() if len(key) > 64 else key
    block = block.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


# The SQL twin of studentstatus.domain.federation.national_ident over the identity key of
# studentstatus.domain.claims.identity_key (document number compacted, upper-cased): HMAC from
# PostgreSQL's own sha256() and the padded keys kept in the settings.  (pgcrypto's hmac() took
# about 50 us a row; two sha256() calls a few.)
_IDENT_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {LOCAL_SCHEMA}.ident(
    ipad bytea, opad bytea, dtype text, dnum text, nm text, sx text, bd date) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT left(encode(sha256(opad || sha256(ipad || convert_to(
    CASE WHEN dnum IS NOT NULL AND dnum <> '' AND coalesce(dtype, '') <> 'none'
         THEN 'd' || chr(31) || upper(regexp_replace(dnum, '[[:space:]-]', '', 'g'))
         ELSE 'i' || chr(31) || nm || chr(31) || sx || chr(31) || to_char(bd, 'YYYY-MM-DD')
    END, 'UTF8'))), 'hex'), {IDENT_HEX})
$$"""


def _q(conn: Connection, table: sa.Table) -> str:
    return conn.dialect.identifier_preparer.format_table(table)


def _feed_functions(conn: Connection, store: SqlStore, province: str) -> list[str]:
    t = store.tables
    s = feed_schema(province)
    rec, kids, log, probs = (_q(conn, x) for x in (t.records, t.children, t.change_log, t.problems))
    ident = (
        f"{LOCAL_SCHEMA}.ident(st.ipad, st.opad, c.document_type, c.document_number, c.name, "
        "c.sex, c.birth_date)"
    )
    upsert_records = f"""
  INSERT INTO {s}.records AS f
      (record_id, region_code, kindergarten_code, state, grade, sex, number_kind, ident)
  SELECT n.id, n.region_code, n.kindergarten_code, n.state, n.grade, c.sex,
         left(n.national_number, 1), {ident}
  FROM %(source)s n LEFT JOIN {kids} c ON c.id = n.child_id
       CROSS JOIN {LOCAL_SCHEMA}.settings st
  ON CONFLICT (record_id) DO UPDATE SET
      region_code = EXCLUDED.region_code, kindergarten_code = EXCLUDED.kindergarten_code,
      state = EXCLUDED.state, grade = EXCLUDED.grade, number_kind = EXCLUDED.number_kind,
      sex = coalesce(EXCLUDED.sex, f.sex), ident = coalesce(EXCLUDED.ident, f.ident)
  WHERE (f.region_code, f.kindergarten_code, f.state, f.grade, f.number_kind)
        IS DISTINCT FROM (EXCLUDED.region_code, EXCLUDED.kindergarten_code, EXCLUDED.state,
                          EXCLUDED.grade, EXCLUDED.number_kind)
     OR (EXCLUDED.sex IS NOT NULL AND f.sex IS DISTINCT FROM EXCLUDED.sex)
     OR (EXCLUDED.ident IS NOT NULL AND f.ident IS DISTINCT FROM EXCLUDED.ident)"""
    children_to_records = f"""
  UPDATE {s}.records f SET sex = c.sex, ident = {ident}
  FROM new_rows c JOIN {rec} r ON r.child_id = c.id CROSS JOIN {LOCAL_SCHEMA}.settings st
  WHERE f.record_id = r.id AND (f.sex, f.ident) IS DISTINCT FROM (c.sex, {ident})"""
    events = f"""
  INSERT INTO {s}.events
      (record_id, seq, kind, from_state, to_state, effective_date, recorded_at)
  SELECT record_id, seq, kind, from_state, to_state, effective_date, recorded_at
  FROM %(source)s ON CONFLICT DO NOTHING"""
    problems = f"""
  INSERT INTO {s}.problems AS f (id, record_id, kind, county_code, status)
  SELECT id, record_id, kind, county_code, status FROM %(source)s
  ON CONFLICT (id) DO UPDATE SET county_code = EXCLUDED.county_code, status = EXCLUDED.status
  WHERE (f.county_code, f.status) IS DISTINCT FROM (EXCLUDED.county_code, EXCLUDED.status)"""

    def fn(name: str, body: str) -> str:
        return (
            f"CREATE OR REPLACE FUNCTION {LOCAL_SCHEMA}.{name}() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN {body}; RETURN NULL; END $$"
        )

    out = [
        fn("feed_records", upsert_records % {"source": "new_rows"}),
        fn("feed_children", children_to_records),
        fn("feed_events", events % {"source": "new_rows"}),
        fn("feed_problems", problems % {"source": "new_rows"}),
    ]
    for table, func in ((rec, "feed_records"), (kids, "feed_children"), (probs, "feed_problems")):
        for event in ("INSERT", "UPDATE"):
            name = f"studentstatus_fed_{func[5:]}_{event.lower()}"
            out.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            out.append(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING NEW TABLE AS "
                f"new_rows FOR EACH STATEMENT EXECUTE FUNCTION {LOCAL_SCHEMA}.{func}()"
            )
    out.append(f"DROP TRIGGER IF EXISTS studentstatus_fed_events_insert ON {log}")
    out.append(
        f"CREATE TRIGGER studentstatus_fed_events_insert AFTER INSERT ON {log} REFERENCING "
        f"NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {LOCAL_SCHEMA}.feed_events()"
    )
    # The backfill: the same statements over the whole tables.
    out.append(upsert_records % {"source": rec})
    out.append(events % {"source": log})
    out.append(problems % {"source": probs})
    return out


# ---------------------------------------------------------------------- publish


@attrs.frozen
class PublishReport:
    """What :func:`publish` found and did."""

    province: str
    publication: str
    created: bool
    """Whether this run created the publication (``False``: it was there, re-checked)."""
    records: int
    """Rows of the feed's ``records`` after the run."""


def _settings(conn: Connection) -> tuple[str, bytes] | None:
    if not _exists(
        conn,
        "SELECT 1 FROM information_schema.tables "
        "WHERE table_schema = :s AND table_name = 'settings'",
        s=LOCAL_SCHEMA,
    ):
        return None
    row = conn.exec_driver_sql(f"SELECT province, ident_key FROM {LOCAL_SCHEMA}.settings").first()
    return None if row is None else (str(row[0]), bytes(row[1]))


def publish(store: SqlStore, province: str, national_key: bytes) -> PublishReport:
    """Set up a provincial store's side (idempotent; see the module docs): the feed schema,
    its triggers and backfill, the local tables, the publication and the inbox table.

    Refused: a store that is not PostgreSQL, ``wal_level`` not ``logical``, a store
    already published for another province or under another national key.
    """
    _require_postgresql(_store_dialect(store), "federation publish")
    check_province(province)
    key = check_key(national_key)
    with store.engine.begin() as conn:
        _check_wal_level(conn, "province")
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('studentstatus_federation'))")
        for stmt in _LOCAL_DDL:
            conn.exec_driver_sql(stmt)
        known = _settings(conn)
        if known is None:
            conn.execute(
                sa.text(
                    f"INSERT INTO {LOCAL_SCHEMA}.settings (province, ident_key, ipad, opad) "
                    "VALUES (:p, :k, :i, :o)"
                ),
                {"p": province, "k": key, "i": _pads(key)[0], "o": _pads(key)[1]},
            )
        elif known[0] != province:
            raise FederationError(
                "province_mismatch",
                f"this store is published for province {known[0]}, not {province}",
                f"该存储已作为 {known[0]} 省发布，不是 {province}",
                field="province",
            )
        elif known[1] != key:
            raise FederationError(
                "national_key_mismatch",
                "this store was published under another national key",
                "该存储发布时使用的是另一把全国密钥",
                hint="every province uses the same national key; rotating it needs a re-hash",
                field="national_key",
            )
        conn.exec_driver_sql(_IDENT_FUNCTION)
        for stmt in _feed_ddl(province) + _MAIL_DDL:
            conn.exec_driver_sql(stmt)
        for stmt in _feed_functions(conn, store, province):
            conn.exec_driver_sql(stmt)
        name = _publication(province)
        created = not _exists(conn, "SELECT 1 FROM pg_publication WHERE pubname = :n", n=name)
        if created:
            s = feed_schema(province)
            conn.exec_driver_sql(
                f"CREATE PUBLICATION {name} FOR TABLE {s}.records, {s}.events, {s}.problems, "
                f"{s}.outbox"
            )
        count = conn.exec_driver_sql(
            f"SELECT count(*) FROM {feed_schema(province)}.records"
        ).scalar_one()
    return PublishReport(province, name, created, int(count))


# ------------------------------------------------------------------ province link


def _message(row: Any) -> Message:
    """A mail row as a message; a kind this version does not know, or a body that is not an
    object, becomes an UNKNOWN message (never applied) instead of an error that would stop
    the whole inbox."""
    body = row.body
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            body = None
    try:
        kind = MessageKind(row.kind)
    except ValueError:
        kind = MessageKind.UNKNOWN
    if not isinstance(body, dict):
        kind, body = MessageKind.UNKNOWN, {}
    return Message(row.id, row.source.strip(), row.destination, kind, body, row.created_at)


_TRANSFER_COLUMNS = (
    "id, direction, status, other_province, ident, effective_date, kindergarten_code, "
    "county_code, record_id, grade, child, national_number, requested_by, decided_by, reason, "
    "created_at, updated_at, steps, sides"
)


def _transfer(row: Any) -> Transfer:
    child = None
    if row.child is not None:
        data = row.child if isinstance(row.child, dict) else json.loads(row.child)
        child = from_dict(Child, data)
    return Transfer(
        id=row.id,
        direction=row.direction,
        status=TransferStatus(row.status),
        other_province=row.other_province,
        ident=row.ident,
        effective_date=row.effective_date,
        kindergarten_code=row.kindergarten_code,
        county_code=row.county_code,
        record_id=row.record_id,
        grade=Grade(row.grade) if row.grade else None,
        child=child,
        national_number=row.national_number,
        requested_by=row.requested_by,
        decided_by=row.decided_by,
        reason=row.reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        steps=tuple(from_dict(ApprovalStep, d) for d in _json(row.steps)),
        sides=tuple(str(x) for x in _json(row.sides)),
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


_JSONB = ("child", "steps", "sides")


def _transfer_params(t: Transfer) -> dict[str, Any]:
    return {
        "id": t.id,
        "direction": t.direction,
        "status": t.status.value,
        "other_province": t.other_province,
        "ident": t.ident,
        "effective_date": t.effective_date,
        "kindergarten_code": t.kindergarten_code,
        "county_code": t.county_code,
        "record_id": t.record_id,
        "grade": t.grade.value if t.grade else None,
        "child": None if t.child is None else json.dumps(to_dict(t.child), ensure_ascii=False),
        "national_number": t.national_number,
        "requested_by": t.requested_by,
        "decided_by": t.decided_by,
        "reason": t.reason,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "steps": json.dumps([to_dict(x) for x in t.steps], ensure_ascii=False),
        "sides": json.dumps(list(t.sides)),
    }


class ProvinceLink:
    """A provincial store's side of the federation
    (:class:`~studentstatus.ports.FederationLink`), for a store :func:`publish` set up.

    Its methods run in the caller's :class:`~studentstatus.adapters.sql.store.SqlUnitOfWork`.
    """

    def __init__(self, store: SqlStore) -> None:
        _require_postgresql(_store_dialect(store), "federation")
        with store.engine.connect() as conn:
            found = _settings(conn)
        if found is None:
            raise FederationError(
                "not_published",
                "this store is not set up for the federation",
                "该存储尚未加入省际联网",
                hint="run studentstatus federation publish on it first",
                field="store",
            )
        self.store = store
        self.province, self._key = found
        self._feed = feed_schema(self.province)

    def __repr__(self) -> str:
        return f"ProvinceLink(province={self.province!r})"

    @staticmethod
    def _conn(uow: UnitOfWork) -> Connection:
        if not isinstance(uow, SqlUnitOfWork):
            msg = "the federation link works in a SqlUnitOfWork of its store"
            raise StorageError(msg)
        return uow.connection()

    def ident(self, identity_key: tuple[str, ...]) -> str:
        """See :meth:`~studentstatus.ports.FederationLink.ident`."""
        return national_ident(self._key, identity_key)

    def seal_number(self, transfer_id: str, number: str) -> str:
        """See :meth:`~studentstatus.ports.FederationLink.seal_number`."""
        return seal_number(self._key, transfer_id, number)

    def open_number(self, transfer_id: str, sealed: str) -> str:
        """See :meth:`~studentstatus.ports.FederationLink.open_number`."""
        return open_number(self._key, transfer_id, sealed)

    def send(self, uow: UnitOfWork, message: Message) -> None:
        """See :meth:`~studentstatus.ports.FederationLink.send`."""
        conn = self._conn(uow)
        result = conn.execute(
            sa.text(
                f"INSERT INTO {self._feed}.outbox (id, source, destination, kind, body, created_at)"
                " VALUES (:id, :source, :destination, :kind, CAST(:body AS jsonb), :at)"
                " ON CONFLICT (id) DO NOTHING"
            ),
            {
                "id": message.id,
                "source": message.source,
                "destination": message.destination,
                "kind": message.kind.value,
                "body": json.dumps(dict(message.body), ensure_ascii=False, sort_keys=True),
                "at": message.created_at or datetime.now(UTC),
            },
        )
        if result.rowcount == 0:
            msg = f"message {message.id} was sent already"
            raise ConflictError(msg)

    def next_messages(self, uow: UnitOfWork, limit: int) -> list[Message]:
        """See :meth:`~studentstatus.ports.FederationLink.next_messages`."""
        rows = self._conn(uow).execute(
            sa.text(
                "SELECT id, source, destination, kind, body, created_at"
                f" FROM {NATIONAL_SCHEMA}.mail WHERE destination = :p AND applied_at IS NULL"
                " ORDER BY created_at, id"
                " LIMIT :n FOR UPDATE SKIP LOCKED"
            ),
            {"p": self.province, "n": limit},
        )
        return [_message(r) for r in rows]

    def mark_applied(self, uow: UnitOfWork, message_id: str) -> bool:
        """See :meth:`~studentstatus.ports.FederationLink.mark_applied`."""
        result = self._conn(uow).execute(
            sa.text(
                f"UPDATE {NATIONAL_SCHEMA}.mail SET applied_at = now()"
                " WHERE id = :id AND applied_at IS NULL"
            ),
            {"id": message_id},
        )
        return bool(result.rowcount == 1)

    def live_records(self, uow: UnitOfWork, ident: str) -> list[str]:
        """See :meth:`~studentstatus.ports.FederationLink.live_records`."""
        rows = self._conn(uow).execute(
            sa.text(
                f"SELECT record_id FROM {self._feed}.records WHERE ident = :i "
                f"AND state IN ({_LIVE_SQL}) ORDER BY record_id"
            ),
            {"i": ident},
        )
        return [r[0] for r in rows]

    def records_with(self, uow: UnitOfWork, ident: str) -> list[str]:
        """See :meth:`~studentstatus.ports.FederationLink.records_with`."""
        rows = self._conn(uow).execute(
            sa.text(f"SELECT record_id FROM {self._feed}.records WHERE ident = :i ORDER BY 1"),
            {"i": ident},
        )
        return [r[0] for r in rows]

    def add_transfer(self, uow: UnitOfWork, transfer: Transfer) -> None:
        """See :meth:`~studentstatus.ports.FederationLink.add_transfer`."""
        params = _transfer_params(transfer)
        names = ", ".join(params)
        marks = ", ".join(f"CAST(:{k} AS jsonb)" if k in _JSONB else f":{k}" for k in params)
        result = self._conn(uow).execute(
            sa.text(
                f"INSERT INTO {LOCAL_SCHEMA}.transfers ({names}) VALUES ({marks})"
                " ON CONFLICT (id) DO NOTHING"
            ),
            params,
        )
        if result.rowcount == 0:
            msg = f"transfer {transfer.id} exists"
            raise ConflictError(msg)

    def get_transfer(self, uow: UnitOfWork, transfer_id: str) -> Transfer | None:
        """See :meth:`~studentstatus.ports.FederationLink.get_transfer`."""
        row = (
            self._conn(uow)
            .execute(
                sa.text(
                    f"SELECT {_TRANSFER_COLUMNS} FROM {LOCAL_SCHEMA}.transfers WHERE id = :id"
                    " FOR UPDATE"
                ),
                {"id": transfer_id},
            )
            .first()
        )
        return None if row is None else _transfer(row)

    def save_transfer(self, uow: UnitOfWork, transfer: Transfer) -> None:
        """See :meth:`~studentstatus.ports.FederationLink.save_transfer`."""
        params = _transfer_params(transfer)
        sets = ", ".join(
            f"{k} = CAST(:{k} AS jsonb)" if k in _JSONB else f"{k} = :{k}"
            for k in params
            if k != "id"
        )
        self._conn(uow).execute(
            sa.text(f"UPDATE {LOCAL_SCHEMA}.transfers SET {sets} WHERE id = :id"), params
        )

    def list_transfers(
        self,
        uow: UnitOfWork,
        *,
        region_prefix: str = "",
        kindergarten_code: str | None = None,
        status: TransferStatus | None = None,
        limit: int = 100,
    ) -> list[Transfer]:
        """See :meth:`~studentstatus.ports.FederationLink.list_transfers`."""
        where = ["county_code LIKE :prefix"]
        params: dict[str, Any] = {"prefix": region_prefix + "%", "n": limit}
        if kindergarten_code is not None:
            where.append("kindergarten_code = :kg")
            params["kg"] = kindergarten_code
        if status is not None:
            where.append("status = :status")
            params["status"] = status.value
        rows = self._conn(uow).execute(
            sa.text(
                f"SELECT {_TRANSFER_COLUMNS} FROM {LOCAL_SCHEMA}.transfers "
                f"WHERE {' AND '.join(where)} ORDER BY county_code, id LIMIT :n"
            ),
            params,
        )
        return [_transfer(r) for r in rows]


# ------------------------------------------------------------------------ the hub


_ROUTE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {LOCAL_SCHEMA}.route_mail() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- The sender is the province whose feed the row came in by, whatever the row says.
  INSERT INTO {NATIONAL_SCHEMA}.mail (id, source, destination, kind, body, created_at)
  SELECT NEW.id, right(TG_TABLE_SCHEMA, 2), NEW.destination, NEW.kind, NEW.body, NEW.created_at
  WHERE NEW.destination <> right(TG_TABLE_SCHEMA, 2)
  ON CONFLICT (id) DO NOTHING;
  RETURN NULL;
END $$"""


@attrs.frozen
class NodeStatus:
    """One province as the hub sees it (:meth:`Hub.status`)."""

    province: str
    inbound: str
    """The hub's subscription to the province: ``streaming``, ``stopped``, ``slot_missing``."""
    outbound: str
    """The province's subscription to the hub, likewise."""
    lag_bytes: int | None
    """Hub WAL the province has not confirmed yet (mail on its way; ``None``: no slot)."""
    unrouted: int
    """Outbox rows on the hub not yet in ``national.mail`` (0 when routing works)."""


class Hub:
    """The national hub: one PostgreSQL database that subscribes to every province
    (:class:`~studentstatus.ports.NationalHub`).

    ``bind`` is a URL or an engine of the hub database.
    """

    def __init__(self, bind: Engine | str | sa.URL) -> None:
        if isinstance(bind, Engine):
            self.engine = bind
            self._owns = False
        else:
            self.engine = sa.create_engine(bind, hide_parameters=True)
            self._owns = True
        _require_postgresql(self.engine.dialect.name, "federation hub")

    def __repr__(self) -> str:
        return f"Hub({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Dispose the engine if the hub created it."""
        if self._owns:
            self.engine.dispose()

    def attach(
        self,
        province: str,
        province_url: str | sa.URL,
        *,
        province_conninfo: str | None = None,
        hub_conninfo: str | None = None,
    ) -> dict[str, bool]:
        """Subscribe the hub to a published province and the province to its mail
        (idempotent).  ``province_conninfo`` is how the hub reaches the province and
        ``hub_conninfo`` how the province reaches the hub (default: the URLs').

        Returns which objects this run created.
        """
        check_province(province)
        p_engine = sa.create_engine(province_url, hide_parameters=True)
        try:
            _require_postgresql(p_engine.dialect.name, "federation subscribe")
            to_province = province_conninfo or conninfo(sa.make_url(province_url))
            to_hub = hub_conninfo or conninfo(self.engine.url)
            return self._attach(province, p_engine, to_province, to_hub)
        finally:
            p_engine.dispose()

    def _attach(
        self, province: str, p_engine: Engine, to_province: str, to_hub: str
    ) -> dict[str, bool]:
        made: dict[str, bool] = {}
        with p_engine.connect() as pc:
            _check_wal_level(pc, f"province {province}")
            if not _exists(
                pc, "SELECT 1 FROM pg_publication WHERE pubname = :n", n=_publication(province)
            ):
                raise FederationError(
                    "not_published",
                    f"province {province} has no publication {_publication(province)}",
                    f"{province} 省尚未发布 {_publication(province)}",
                    hint="run studentstatus federation publish on the provincial store first",
                    field="store",
                )
        s = feed_schema(province)
        with self.engine.begin() as hc:
            _check_wal_level(hc, "hub")
            hc.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('studentstatus_federation'))")
            hc.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {LOCAL_SCHEMA}")
            for stmt in _feed_ddl(province, hub=True) + _MAIL_DDL:
                hc.exec_driver_sql(stmt)
            hc.exec_driver_sql(_ROUTE_FUNCTION)
            hc.exec_driver_sql(f"DROP TRIGGER IF EXISTS studentstatus_route ON {s}.outbox")
            hc.exec_driver_sql(
                f"CREATE TRIGGER studentstatus_route AFTER INSERT ON {s}.outbox FOR EACH ROW "
                f"EXECUTE FUNCTION {LOCAL_SCHEMA}.route_mail()"
            )
            hc.exec_driver_sql(f"ALTER TABLE {s}.outbox ENABLE ALWAYS TRIGGER studentstatus_route")
            pub = _hub_publication(province)
            made["hub_publication"] = not _exists(
                hc, "SELECT 1 FROM pg_publication WHERE pubname = :n", n=pub
            )
            if made["hub_publication"]:
                hc.exec_driver_sql(
                    f"CREATE PUBLICATION {pub} FOR TABLE {NATIONAL_SCHEMA}.mail "
                    f"WHERE (destination = '{province}') WITH (publish = 'insert')"
                )
        with p_engine.begin() as pc:
            for stmt in _MAIL_DDL:
                pc.exec_driver_sql(stmt)
        made["hub_subscription"] = self._subscribe(
            self.engine,
            p_engine,
            _hub_subscription(province),
            to_province,
            _publication(province),
            f"province {province}",
        )
        made["province_subscription"] = self._subscribe(
            p_engine,
            self.engine,
            _province_subscription(province),
            to_hub,
            _hub_publication(province),
            "hub",
        )
        # Messages that reached the hub before its routing trigger existed (or while it was
        # disabled) are routed now; routing is idempotent.
        self.route()
        return made

    @staticmethod
    def _subscribe(
        subscriber: Engine,
        publisher: Engine,
        name: str,
        to_publisher: str,
        publication: str,
        publisher_label: str,
    ) -> bool:
        with _autocommit(subscriber) as conn:
            if _exists(
                conn,
                f"SELECT 1 FROM pg_subscription WHERE subname = :n AND {_HERE}",
                n=name,
            ):
                with publisher.connect() as pc:
                    if not _exists(
                        pc, "SELECT 1 FROM pg_replication_slots WHERE slot_name = :n", n=name
                    ):
                        raise FederationError(
                            "slot_missing",
                            f"subscription {name} exists but {publisher_label} has no slot {name}",
                            f"订阅 {name} 存在，但 {publisher_label} 上没有复制槽 {name}",
                            hint="drop the subscription (ALTER SUBSCRIPTION … SET (slot_name = "
                            "NONE); DROP SUBSCRIPTION …) and subscribe again",
                            field="subscription",
                        )
                return False
            quoted = to_publisher.replace("'", "''")
            # Applied transactions commit synchronously: a message is durable on the hub
            # when applied, and the next hop's walsender is woken at once (with the
            # subscriptions' default, off, each hop waited for the WAL writer: about
            # 300 ms province -> hub -> province instead of about 110 ms; bench/federation.py).
            conn.exec_driver_sql(
                f"CREATE SUBSCRIPTION {name} CONNECTION '{quoted}' PUBLICATION {publication} "
                "WITH (synchronous_commit = on)"
            )
            return True

    def provinces(self) -> list[str]:
        """See :meth:`~studentstatus.ports.NationalHub.provinces`."""
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT subname FROM pg_subscription WHERE {_HERE} "
                "AND subname LIKE 'studentstatus_hub_from_%%' ORDER BY subname"
            )
            return [r[0][-2:] for r in rows]

    def route(self) -> int:
        """Copy into ``national.mail`` any outbox row the trigger did not route (idempotent);
        returns how many."""
        total = 0
        with self.engine.begin() as conn:
            for p in self._provinces(conn):
                result = conn.exec_driver_sql(
                    f"INSERT INTO {NATIONAL_SCHEMA}.mail (id, source, destination, kind, body, "
                    f"created_at) SELECT id, '{p}', destination, kind, body, created_at "
                    f"FROM {feed_schema(p)}.outbox WHERE destination <> '{p}' "
                    "ON CONFLICT (id) DO NOTHING"
                )
                total += result.rowcount
        return total

    def _provinces(self, conn: Connection) -> list[str]:
        rows = conn.exec_driver_sql(
            f"SELECT subname FROM pg_subscription WHERE {_HERE} "
            "AND subname LIKE 'studentstatus_hub_from_%%'"
        )
        return sorted(r[0][-2:] for r in rows)

    def _live_union(self, provinces: Sequence[str]) -> str:
        return " UNION ALL ".join(
            f"SELECT DISTINCT ident, '{p}'::text AS province FROM {feed_schema(p)}.records "
            f"WHERE ident IS NOT NULL AND state IN ({_LIVE_SQL})"
            for p in provinces
        )

    def dedupe(self) -> tuple[int, int]:
        """See :meth:`~studentstatus.ports.NationalHub.dedupe`."""
        with self.engine.begin() as conn:
            provinces = self._provinces(conn)
            if len(provinces) < 2:
                return (0, 0)
            conn.exec_driver_sql(
                "CREATE TEMP TABLE dup ON COMMIT DROP AS "
                "SELECT ident, array_agg(province ORDER BY province) AS provinces "
                f"FROM ({self._live_union(provinces)}) live GROUP BY ident HAVING count(*) > 1"
            )
            findings = conn.exec_driver_sql("SELECT count(*) FROM dup").scalar_one()
            sent = conn.exec_driver_sql(
                f"INSERT INTO {NATIONAL_SCHEMA}.mail (id, source, destination, kind, body, "
                "created_at) "
                "SELECT 'dup-' || p.province || '-' || left(md5(d.ident || ':' || "
                "array_to_string(d.provinces, ',')), 24), 'hub', p.province, "
                f"'{MessageKind.DUPLICATE_NOTICE.value}', "
                "jsonb_build_object('ident', d.ident, 'others', "
                "to_jsonb(array_remove(d.provinces, p.province))), now() "
                "FROM dup d CROSS JOIN LATERAL unnest(d.provinces) AS p(province) "
                "ON CONFLICT (id) DO NOTHING"
            ).rowcount
        return (int(findings), int(sent))

    def counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """See :meth:`~studentstatus.ports.NationalHub.counts`."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        with self.engine.connect() as conn:
            for p in self._provinces(conn):
                s = feed_schema(p)
                doc: dict[str, dict[str, int]] = {}
                for key, column in (
                    ("by_county", "region_code"),
                    ("by_grade", "grade"),
                    ("by_sex", "sex"),
                ):
                    rows = conn.exec_driver_sql(
                        f"SELECT {column}, count(*) FROM {s}.records WHERE state = 'ACTIVE' "
                        f"GROUP BY {column}"
                    )
                    doc[key] = {
                        str(k).strip() if k is not None else "None": int(n) for k, n in rows
                    }
                rows = conn.exec_driver_sql(
                    f"SELECT kind || '/' || status, count(*) FROM {s}.problems GROUP BY 1"
                )
                doc["problems"] = {str(k): int(n) for k, n in rows}
                out[p] = doc
        return out

    def status(self) -> list[NodeStatus]:
        """Each province's replication in both directions, as seen from the hub."""
        out: list[NodeStatus] = []
        with self.engine.connect() as conn:
            for p in self._provinces(conn):
                name = _hub_subscription(p)
                row = conn.execute(
                    sa.text(
                        "SELECT s.subenabled, st.pid IS NOT NULL AS running "
                        "FROM pg_subscription s LEFT JOIN pg_stat_subscription st "
                        "ON st.subid = s.oid AND st.relid IS NULL WHERE s.subname = :n AND "
                        f"s.{_HERE}"
                    ),
                    {"n": name},
                ).first()
                inbound = "streaming" if row is not None and row.running else "stopped"
                slot = conn.execute(
                    sa.text(
                        "SELECT active, pg_current_wal_lsn() - confirmed_flush_lsn AS lag "
                        "FROM pg_replication_slots WHERE slot_name = :n"
                    ),
                    {"n": _province_subscription(p)},
                ).first()
                outbound = (
                    "slot_missing" if slot is None else ("streaming" if slot.active else "stopped")
                )
                unrouted = conn.exec_driver_sql(
                    f"SELECT count(*) FROM {feed_schema(p)}.outbox o WHERE NOT EXISTS "
                    f"(SELECT 1 FROM {NATIONAL_SCHEMA}.mail m WHERE m.id = o.id)"
                ).scalar_one()
                lag = None if slot is None or slot.lag is None else int(slot.lag)
                out.append(NodeStatus(p, inbound, outbound, lag, int(unrouted)))
        return out


def records_feed_equal(store: SqlStore) -> bool:
    """Whether the feed's ``records`` holds exactly the store's records (for tests and
    ``federation status --check`` on a province)."""
    with store.engine.connect() as conn:
        found = _settings(conn)
        if found is None:
            return False
        s = feed_schema(found[0])
        rec = _q(conn, store.tables.records)
        missing = conn.exec_driver_sql(
            f"SELECT count(*) FROM {rec} r FULL JOIN {s}.records f ON f.record_id = r.id "
            "WHERE r.id IS NULL OR f.record_id IS NULL OR r.state <> f.state "
            "OR r.region_code <> f.region_code OR f.ident IS NULL"
        ).scalar_one()
        return int(missing) == 0
