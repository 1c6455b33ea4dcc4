"""No command ends in a Python traceback, whatever the path, the file or the store URL.

The sweep walks the click command tree (as ``tests/test_cli_reference.py`` does), so a
new command is covered without a line here: every command runs with each bad store URL
(unknown scheme, a server nobody listens on, an SQLite file in a missing directory, a
file store it cannot create, a malformed URL) and, on a real empty store, with each bad
path in every path parameter (missing, a directory, an empty file, a binary file, a file
in a missing directory).  Each run must end with exit 0, 1 or 2, print no traceback,
no ``internal_error`` and never the URL's password.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from studentstatus.cli import main
from studentstatus.cli._common import DateParam

PASSWORD = "s3cret-pw"

BAD_URLS = (
    "foo://bar",
    f"postgresql+psycopg://app:{PASSWORD}@127.0.0.1:1/xueji",
    f"mysql+pymysql://app:{PASSWORD}@127.0.0.1:1/xueji",
    "sqlite:////nonexistent-dir-for-tests/x.db",
    "file:///proc/nonexistent-store",
    "postgresql+psycopg://:::@/",
)


def _commands(
    cmd: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            yield from _commands(cmd.commands[name], (*path, name))
    else:
        yield path, cmd


COMMANDS = list(_commands(main))


def _value(param: click.Parameter, path_value: str) -> str:
    """A plausible value for a parameter; paths get ``path_value``."""
    t = param.type
    if isinstance(t, click.Path | click.File):
        return path_value
    if isinstance(t, click.Choice):
        return str(t.choices[0])
    if isinstance(t, click.IntRange):
        return str(t.min if t.min is not None else 1)
    if isinstance(t, DateParam | click.DateTime):
        return "2026-09-01"
    if t is click.INT:
        return "2026"
    name = param.name or ""
    if name == "operator_text":
        return "county:110105"
    if name in ("county", "region"):
        return "110105"
    if name in ("kindergarten_code", "school_code"):
        return "1111000001"
    return "x1"


def _argv(path: tuple[str, ...], cmd: click.Command, path_value: str) -> tuple[list[str], bool]:
    """The command line, and whether it has a path parameter at all."""
    argv = list(path)
    has_path = False
    for param in cmd.params:
        if isinstance(param.type, click.Path | click.File):
            has_path = True
        if isinstance(param, click.Argument):
            argv.append(_value(param, path_value))
        elif isinstance(param, click.Option):
            if param.is_flag:
                continue
            if param.required or isinstance(param.type, click.Path | click.File):
                argv += [param.opts[0], _value(param, path_value)]
    return argv, has_path


def _check(result: click.testing.Result, argv: list[str]) -> None:
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    where = " ".join(argv)
    assert result.exit_code in (0, 1, 2), (where, result.exit_code, text)
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), (where, repr(result.exception))
    assert "Traceback" not in text, (where, text)
    assert "internal_error" not in text, (where, text)
    assert PASSWORD not in text, (where, text)


@pytest.mark.parametrize("url", BAD_URLS)
def test_every_command_with_a_bad_store(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    (tmp_path / "in.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    for path, cmd in COMMANDS:
        argv, _ = _argv(path, cmd, str(tmp_path / "in.csv"))
        if any(p.name == "store_url" for p in cmd.params):
            argv += ["--store", url]
        result = runner.invoke(main, argv, env={"STUDENTSTATUS_STORE": url})
        _check(result, argv)


def _bad_paths(tmp: Path) -> list[str]:
    (tmp / "empty.csv").write_bytes(b"")
    (tmp / "a-dir").mkdir()
    binary = tmp / "binary.csv"
    shutil.copyfile("/bin/ls", binary) if Path("/bin/ls").exists() else binary.write_bytes(
        bytes(range(256)) * 64
    )
    (tmp / "header.csv").write_text("id_number,name\n", encoding="utf-8")
    return [
        str(tmp / "missing.csv"),
        str(tmp / "a-dir"),
        str(tmp / "empty.csv"),
        str(binary),
        str(tmp / "header.csv"),
        "/nonexistent-dir-for-tests/out.csv",
        "/proc/version",  # exists, not writable
    ]


def test_every_command_with_bad_paths(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--store", url]).exit_code == 0
    paths = _bad_paths(tmp_path)
    swept = 0
    for path, cmd in COMMANDS:
        if path == ("demo",):
            continue  # a good store would run the whole demo; its bad stores are swept above
        for bad in paths:
            argv, has_path = _argv(path, cmd, bad)
            if not has_path:
                break
            if any(p.name == "store_url" for p in cmd.params):
                argv += ["--store", url]
            _check(runner.invoke(main, argv, env={"STUDENTSTATUS_STORE": url}), argv)
            swept += 1
    assert swept >= 40  # import, verify, problems --csv, export --out, report --out, …


def test_export_to_a_missing_directory_writes_no_audit_entry(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    runner = CliRunner()
    runner.invoke(main, ["init", "--store", url])
    argv = ["export", "--graduated", "--school-year", "2025", "--as", "county:110105"]
    result = runner.invoke(main, [*argv, "--store", url, "--out", "/nonexistent-dir/g.json"])
    assert result.exit_code == 1
    assert "/nonexistent-dir" in result.output
    assert "Traceback" not in result.output
    verify = runner.invoke(main, ["audit", "verify", "--json", "--store", url])
    assert '"checked": 0' in verify.output, verify.output
    out = tmp_path / "g.json"
    result = runner.invoke(main, [*argv, "--store", url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    verify = runner.invoke(main, ["audit", "verify", "--json", "--store", url])
    assert '"checked": 1' in verify.output, verify.output


def test_storage_errors_name_the_store_and_the_fix_once(tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"postgresql+psycopg://app:{PASSWORD}@127.0.0.1:1/xueji"
    result = runner.invoke(main, ["records", "--as", "county:110105", "--store", url])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert "127.0.0.1:1" in line
    assert "xueji" in line
    assert PASSWORD not in line
    assert "is the server running" in line
    assert "服务是否已启动" in line
    assert line.count("begin unit of work failed") == 1
    result = runner.invoke(main, ["problems", "--as", "county:110105", "--store", url, "--json"])
    assert '"cause": "unreachable"' in result.output


def test_missing_tables_suggest_init(tmp_path: Path) -> None:
    import sqlalchemy as sa

    db = tmp_path / "empty.db"
    sa.create_engine(f"sqlite:///{db}").connect().close()
    from studentstatus.store import open_store

    # a server-like store: tables are not created on open
    store = open_store(f"sqlite:///{db}", create=False)
    with pytest.raises(Exception) as info, store.unit_of_work() as uow:
        uow.records.count()
    store.close()
    from studentstatus.cli._common import _error_doc

    doc = _error_doc(info.value, f"sqlite:///{db}")
    assert doc["cause"] == "missing_schema"
    assert "studentstatus init" in doc["message_en"]
    assert "studentstatus init" in doc["message_zh"]


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_init_on_every_store_kind(kind: str, tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    url = f"file://{target}" if kind == "file" else "memory://"
    result = CliRunner().invoke(main, ["init", "--store", url])
    assert result.exit_code == 0, result.output
    if kind == "file":
        assert target.is_dir()
        assert (target / "journal.jsonl").exists()
        again = CliRunner().invoke(main, ["init", "--store", url, "--json"])
        assert again.exit_code == 0
        assert '"action": "initialised"' in again.output
    else:
        assert "nothing to do" in result.output


def test_unexpected_errors_are_one_line_unless_debugging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from studentstatus.cli._common import handle_errors

    @click.command()
    @click.option("--json", "as_json", is_flag=True)
    @handle_errors()
    def boom(as_json: bool) -> None:
        raise KeyError("detail-that-stays-inside")

    result = CliRunner().invoke(boom, [])
    assert result.exit_code == 1
    assert "internal_error" in result.output
    assert "KeyError" in result.output
    assert "detail-that-stays-inside" not in result.output
    monkeypatch.setenv("STUDENTSTATUS_DEBUG", "1")
    result = CliRunner().invoke(boom, [])
    assert isinstance(result.exception, KeyError)


@pytest.mark.parametrize(
    "env_name", ["STUDENTSTATUS_TEST_POSTGRES_URL", "STUDENTSTATUS_TEST_MYSQL_URL"]
)
def test_a_missing_database_or_table_on_a_real_server(env_name: str) -> None:
    import os

    import sqlalchemy as sa

    url = os.environ.get(env_name)
    if not url:
        pytest.skip(f"{env_name} not set: no server to test against")
    runner = CliRunner()
    missing_db = sa.make_url(url).set(database="studentstatus_no_such_db").render_as_string(False)
    result = runner.invoke(
        main, ["records", "--as", "county:110105", "--store", missing_db, "--json"]
    )
    assert result.exit_code == 1, result.output
    doc = json.loads(result.output)["error"]
    assert doc["cause"] == "missing_database", doc
    assert "studentstatus_no_such_db" in doc["message_en"]
    assert "CREATE DATABASE" in doc["message_zh"]
    # a database without the tables (the server's default one, tables under another prefix)
    code, out = _records_with_prefix(runner, url)
    assert code == 1
    assert "studentstatus init" in out


def _records_with_prefix(runner: CliRunner, url: str) -> tuple[int, str]:
    """``problems`` on a store whose tables do not exist (a random table prefix)."""
    import uuid

    from studentstatus.cli._common import _error_doc
    from studentstatus.store import open_store

    store = open_store(url, create=False, prefix=f"t{uuid.uuid4().hex[:8]}_")
    try:
        with store.unit_of_work() as uow:
            uow.records.count()
    except Exception as exc:
        doc = _error_doc(exc, url)
        return 1, f"{doc['message_en']} / {doc['message_zh']}"
    finally:
        store.close()
    return 0, ""
