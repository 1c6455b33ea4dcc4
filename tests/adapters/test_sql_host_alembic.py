"""A host with its own Alembic environment runs our migrations beside its own: from its
``env.py`` after its revisions, or from inside one of its revisions (docs/how-to/migrations.md).
Both used to end in ``KeyError: 'script'`` when the nested run removed Alembic's globals."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from studentstatus.adapters.sql.migrate import current, head_revision

ENV_RUNS_OURS = """
import sqlalchemy as sa
from alembic import context

from studentstatus.adapters.sql.migrate import upgrade as studentstatus_upgrade

engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
    studentstatus_upgrade(connection, prefix="app_")
    connection.commit()
"""

ENV_PLAIN = """
import sqlalchemy as sa
from alembic import context

engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
"""

REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "h001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("host_things", sa.Column("id", sa.Integer, primary_key=True))
    {ours}
    op.create_table("host_after", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("host_after")
    op.drop_table("host_things")
"""

OURS_IN_REVISION = (
    "from studentstatus.adapters.sql.migrate import upgrade as studentstatus_upgrade\n"
    '    studentstatus_upgrade(op.get_bind(), prefix="app_")'
)


@pytest.mark.parametrize("where", ["env.py", "revision"])
def test_a_host_alembic_run_includes_ours(tmp_path: Path, where: str) -> None:
    (tmp_path / "versions").mkdir()
    (tmp_path / "env.py").write_text(ENV_RUNS_OURS if where == "env.py" else ENV_PLAIN)
    ours = OURS_IN_REVISION if where == "revision" else "pass"
    (tmp_path / "versions" / "h001_host.py").write_text(REVISION.format(ours=ours))
    url = f"sqlite:///{tmp_path / 'host.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(tmp_path))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "head")  # raised KeyError: 'script' before
    engine = sa.create_engine(url)
    names = set(sa.inspect(engine).get_table_names())
    assert {"host_things", "host_after", "app_records", "app_audit_log"} <= names
    assert current(engine, prefix="app_") == head_revision()
    with engine.connect() as conn:
        host = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert host == "h001"
    command.upgrade(cfg, "head")  # a second run changes nothing and does not fail
    engine.dispose()
