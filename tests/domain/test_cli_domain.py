"""CLI: ``studentstatus diagram`` and ``studentstatus transitions``."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from studentstatus.cli import main
from studentstatus.cli.domain import register
from studentstatus.domain import machine


@pytest.fixture
def runner() -> CliRunner:
    """A click runner."""
    return CliRunner()


def test_registered_on_main(runner: CliRunner) -> None:
    """Both commands hang off the ``studentstatus`` group."""
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "diagram" in result.output
    assert "transitions" in result.output


def test_diagram_mermaid_default(runner: CliRunner) -> None:
    """Mermaid is the default and equals to_mermaid()."""
    result = runner.invoke(main, ["diagram"])
    assert result.exit_code == 0
    assert result.output == machine.to_mermaid()


def test_diagram_dot(runner: CliRunner) -> None:
    """--format dot prints the digraph."""
    result = runner.invoke(main, ["diagram", "--format", "dot"])
    assert result.exit_code == 0
    assert result.output == machine.to_dot()


def test_diagram_bad_format(runner: CliRunner) -> None:
    """An unknown format is a usage error (exit 2)."""
    result = runner.invoke(main, ["diagram", "--format", "png"])
    assert result.exit_code == 2


def test_transitions_json(runner: CliRunner) -> None:
    """A JSON array with change, from (list), to, approvals (list of roles)."""
    result = runner.invoke(main, ["transitions", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert isinstance(rows, list)
    assert len(rows) == len(machine.TABLE)
    for row in rows:
        assert isinstance(row["change"], str)
        assert isinstance(row["from"], list)
        assert isinstance(row["to"], str)
        assert isinstance(row["approvals"], list)
        assert set(row["approvals"]) <= {"kindergarten", "county", "city", "province", "ministry"}
    by = {r["change"]: r for r in rows}
    assert by["DEATH"]["from"] == ["PENDING", "ACTIVE", "SUSPENDED", "ABROAD", "WITHDRAWN"]
    assert by["DEATH"]["to"] == "DECEASED"
    assert by["APPROVE"]["approvals"] == ["county"]
    assert by["REGISTER"]["label_zh"] == "入园建籍"


def test_transitions_text(runner: CliRunner) -> None:
    """Plain text: one line per row."""
    result = runner.invoke(main, ["transitions"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == len(machine.TABLE)
    assert lines[0].startswith("REGISTER")
    assert "ACTIVE,SUSPENDED,ABROAD → WITHDRAWN" in result.output


def test_register_on_another_group(runner: CliRunner) -> None:
    """register() attaches the commands to any group."""
    group = click.Group()
    register(group)
    assert sorted(group.commands) == ["diagram", "transitions"]
