"""``studentstatus check-id``."""

from __future__ import annotations

import json

from click.testing import CliRunner

from studentstatus.cli import main


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check-id", *args])
    return result.exit_code, result.output


def test_all_valid_exit_0_and_masked() -> None:
    code, out = _run("360426199101010071", "810000199408230021", "--today", "2025-09-01")
    assert code == 0
    assert "360426199101010071" not in out
    assert "36****************" in out
    assert "81****************" in out
    assert len(out.strip().splitlines()) == 2


def test_any_invalid_exit_1() -> None:
    code, out = _run("360426199101010071", "36042619910102009X")
    assert code == 1
    assert "36042619910102009X" not in out
    assert "checksum" in out


def test_usage_error_exit_2() -> None:
    assert _run("--type", "bogus", "1")[0] == 2
    assert _run()[0] == 2
    assert _run("--today", "yesterday", "1")[0] == 2


def test_json_shape() -> None:
    code, out = _run(
        "--json",
        "--today",
        "2025-09-01",
        "44011320141005001x",
        "36042619910102009X",
        "91110000600037341L",
    )
    assert code == 1
    data = json.loads(out)
    assert [d["valid"] for d in data] == [True, False, True]
    first = data[0]
    assert first["type"] == "resident"
    assert first["normalized"] == "44****************"  # masked: the birth date is beside it
    assert first["birth_date"] == "2014-10-05"
    assert first["sex"] == "M"
    assert first["region_code"] == "440113"
    assert data[1]["error"]["code"] == "checksum"
    assert set(data[1]["error"]) >= {"code", "message_zh", "message_en"}
    assert data[2]["type"] == "uscc"
    assert data[2]["region_code"] is None
    assert data[2]["normalized"] == "91110000600037341L"  # an organisation code: not masked


def test_reveal_prints_the_number() -> None:
    """``--reveal`` (asked for; the PII sweep does not check such an output)."""
    code, out = _run("--json", "--reveal", "--today", "2025-09-01", "44011320141005001x")
    assert code == 0
    assert json.loads(out)[0]["normalized"] == "44011320141005001X"
    code, out = _run("--reveal", "--today", "2025-09-01", "44011320141005001x")
    assert "44011320141005001x" in out


def test_lenient_and_type() -> None:
    number = "110103201501010014"
    assert _run("--type", "resident", number)[0] == 1
    assert _run("--type", "resident", "--lenient", number)[0] == 0
    assert _run("--type", "passport", "E12345678")[0] == 0
    assert _run("--type", "tw_permit", "810000199408230021")[0] == 1


def test_today_rejects_future_birth() -> None:
    code, out = _run("--json", "--today", "2021-08-31", "440306202109010045")
    assert code == 1
    assert json.loads(out)[0]["error"]["code"] == "date"
