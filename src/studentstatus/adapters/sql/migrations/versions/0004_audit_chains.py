"""Audit chains per scope: a chain column on the audit log and a table of chain heads.

The audit log's key becomes ``(chain, seq)``; the entries already stored keep
the chain ``""`` (the single chain of logs written before chains existed, whose
hashes do not cover a chain name) and ``audit_heads`` gets one row per chain
stored, the ``(seq, hash)`` of its last entry.

Downgrading refuses while entries of other chains are stored (their ``seq``
values would collide in one chain); it drops ``audit_heads`` and the column
otherwise.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op

from studentstatus.adapters.sql.migrate import migration_names
from studentstatus.errors import StorageError

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CHAIN, HASH, NAME = 64, 128, 200


def _names() -> tuple[str, str | None]:
    return migration_names(context.config.attributes, context.get_x_argument(as_dictionary=True))


def _log(p: str, schema: str | None) -> sa.TableClause:
    return sa.table(
        f"{p}audit_log",
        sa.column("chain", sa.String),
        sa.column("seq", sa.Integer),
        sa.column("hash", sa.String),
        schema=schema,
    )


def _copy_sqlite_log(table: str, schema: str | None, *, chained: bool) -> None:
    """SQLite (no ALTER of a primary key): the audit log made again, with the key
    ``(chain, seq)`` and the ``chain`` column (``chained``) or with neither, and its
    rows copied over."""
    old = f"{table}_0004_old"
    op.rename_table(table, old, schema=schema)
    kept = ["seq", "at", "operator", "action", "subject", "reason", "before", "after"]
    kept += ["prev_hash", "hash"]
    columns: list[sa.schema.SchemaItem] = [
        sa.Column("seq", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("operator", sa.String(NAME), nullable=False),
        sa.Column("action", sa.String(NAME), nullable=False),
        sa.Column("subject", sa.String(NAME), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("before", sa.JSON, nullable=False),
        sa.Column("after", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(HASH), nullable=False),
        sa.Column("hash", sa.String(HASH), nullable=False),
    ]
    if chained:
        columns.append(sa.Column("chain", sa.String(CHAIN), nullable=False, server_default=""))
    columns.append(sa.PrimaryKeyConstraint(*(["chain", "seq"] if chained else ["seq"])))
    op.create_table(table, *columns, schema=schema)
    copied: list[sa.ColumnClause[Any]] = [sa.column(c) for c in kept]
    q = sa.select(*copied).select_from(sa.table(old, schema=schema))
    target = sa.table(table, *(sa.column(c) for c in kept), schema=schema)
    op.execute(target.insert().from_select(kept, q))
    op.drop_table(old, schema=schema)


def _set_primary_key(table: str, schema: str | None, columns: list[str]) -> None:
    """Replace ``table``'s primary key by one on ``columns`` (PostgreSQL, MySQL/MariaDB)."""
    bind = op.get_bind()
    if bind.dialect.name in ("mysql", "mariadb"):
        prep = bind.dialect.identifier_preparer
        name = (
            prep.quote(table)
            if schema is None
            else f"{prep.quote_schema(schema)}.{prep.quote(table)}"
        )
        cols = ", ".join(prep.quote(c) for c in columns)
        op.execute(f"ALTER TABLE {name} DROP PRIMARY KEY, ADD PRIMARY KEY ({cols})")
        return
    pk = sa.inspect(bind).get_pk_constraint(table, schema=schema)
    name = pk.get("name") or f"{table}_pkey"
    op.drop_constraint(name, table, schema=schema, type_="primary")
    op.create_primary_key(name, table, columns, schema=schema)


def upgrade() -> None:
    """Add ``audit_log.chain`` (key ``(chain, seq)``), create and fill ``audit_heads``."""
    p, schema = _names()
    table = f"{p}audit_log"
    chain = sa.Column("chain", sa.String(CHAIN), nullable=False, server_default="")
    if op.get_bind().dialect.name == "sqlite":  # no ALTER of keys: the table is copied
        _copy_sqlite_log(table, schema, chained=True)
    else:
        op.add_column(table, chain, schema=schema)
        _set_primary_key(table, schema, ["chain", "seq"])
    op.create_table(
        f"{p}audit_heads",
        sa.Column("chain", sa.String(CHAIN), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(HASH), nullable=False),
        schema=schema,
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    log = _log(p, schema)
    heads = sa.table(
        f"{p}audit_heads",
        sa.column("chain", sa.String),
        sa.column("seq", sa.Integer),
        sa.column("hash", sa.String),
        schema=schema,
    )
    other = log.alias("later")
    last = sa.select(log.c.chain, log.c.seq, log.c.hash).where(
        ~sa.exists().where(other.c.chain == log.c.chain, other.c.seq > log.c.seq)
    )
    op.execute(heads.insert().from_select(["chain", "seq", "hash"], last))


def downgrade() -> None:
    """Drop ``audit_heads`` and ``audit_log.chain`` (key ``seq`` again); refused while
    entries of chains other than ``""`` are stored."""
    p, schema = _names()
    table = f"{p}audit_log"
    log = _log(p, schema)
    bind = op.get_bind()
    if bind.execute(sa.select(log.c.seq).where(log.c.chain != "").limit(1)).first() is not None:
        msg = (
            "cannot downgrade below 0004: the audit log holds entries of per-scope chains, "
            "whose seq values would collide in one chain / 审计日志含分链记录，无法降级"
        )
        raise StorageError(msg)
    op.drop_table(f"{p}audit_heads", schema=schema)
    if bind.dialect.name == "sqlite":
        _copy_sqlite_log(table, schema, chained=False)
    else:
        _set_primary_key(table, schema, ["seq"])
        op.drop_column(table, "chain", schema=schema)
