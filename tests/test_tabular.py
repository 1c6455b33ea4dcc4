"""studentstatus.tabular: encodings detected, workbooks read and written, files checked as files.

Every file here is made by the test: GB18030 with Chinese headers, UTF-16 with and
without a byte-order mark, UTF-8 with and without one, .xlsx workbooks made with
openpyxl (first sheet and a named one), empty, header-only, binary and wrongly
headed files.
"""

from __future__ import annotations

import io
import os
import random
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studentstatus.tabular import (
    CHILD_ALIASES,
    CsvRow,
    FileInfo,
    FileRejected,
    check_file,
    detect_encoding,
    open_table,
    read_table,
    write_table,
    xlsx,
)

openpyxl = pytest.importorskip("openpyxl")

ALIASES = {"name": "name", "姓名": "name", "sex": "sex", "性别": "sex", "出生日期": "birth_date"}
ZH_TEXT = (
    "姓名,性别,出生日期\n王小明,男,2020-03-15\n\n阿依古丽·买买提,女,2021/5/1\n𠀀㐀,男,20200101\n"
)


def _rows(table: object) -> list[tuple[int, dict[str, str], list[str]]]:
    return [(r.number, dict(r.values), [p.code for p in r.problems]) for r in table]  # type: ignore[attr-defined]


EXPECTED = [
    (1, {"name": "王小明", "sex": "男", "birth_date": "2020-03-15"}, []),
    (2, {"name": "阿依古丽·买买提", "sex": "女", "birth_date": "2021/5/1"}, []),
    (3, {"name": "𠀀㐀", "sex": "男", "birth_date": "20200101"}, []),
]


@pytest.mark.parametrize(
    ("encoding", "reported"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("gb18030", "gb18030"),
        ("utf-16", "utf-16"),  # with a BOM (little-endian here)
        ("utf-16-be", None),  # no BOM, Chinese header: no NUL pattern to go by
    ],
)
def test_text_encodings_read_alike(tmp_path: Path, encoding: str, reported: str | None) -> None:
    path = tmp_path / f"roster-{encoding}.csv"
    path.write_bytes(ZH_TEXT.encode(encoding))
    if reported is None:
        with pytest.raises(FileRejected) as err:
            open_table(path, aliases=ALIASES, required=["name"])
        assert err.value.code == "file_encoding"
        return
    with open_table(path, aliases=ALIASES, required=["name"]) as table:
        assert table.info.encoding == reported
        assert table.info.format == "csv"
        assert _rows(table) == EXPECTED


def test_utf16_without_bom_is_found_by_its_nul_bytes(tmp_path: Path) -> None:
    for enc, name in (("utf-16-le", "utf-16-le"), ("utf-16-be", "utf-16-be")):
        path = tmp_path / f"{enc}.csv"
        path.write_bytes("name,sex\n王小明,男\n".encode(enc))
        info = check_file(path, aliases=ALIASES, required=["name"])
        assert info.encoding == name
        assert [r.values["name"] for r in read_table(path, aliases=ALIASES)] == ["王小明"]


def test_gbk_export_with_chinese_headers() -> None:
    """What Excel on Chinese Windows writes: GBK (a subset of GB18030), Chinese headers."""
    data = "幼儿姓名,性别,出生日期,监护人姓名\n李小红,女,2021-05-01,李强\n".encode("gbk")
    assert detect_encoding(data, CHILD_ALIASES, whole=True) == "gb18030"
    rows = list(read_table(io.BytesIO(data), aliases=CHILD_ALIASES, required=["name"]))
    assert rows[0].values["guardian_name"] == "李强"


def test_mostly_utf8_with_stray_bytes_is_utf8_with_cell_problems() -> None:
    data = "name,sex\n王小明,男\n".encode() + b"\xff\xfe,F\n" + "李四,男\n".encode()
    with open_table(io.BytesIO(data), aliases=ALIASES) as table:
        assert table.info.encoding == "utf-8"
        got = _rows(table)
    assert got[1][0] == 2
    assert got[1][2] == ["encoding"]
    assert got[2][1]["name"] == "李四"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "file_empty"),
        (b"   \r\n\n", "file_empty"),
        (b"\xef\xbb\xbf", "file_empty"),
        (b"name,sex\n", "file_no_rows"),
        (b"name,sex\n\n , \n", "file_no_rows"),
        ("姓名,性别\n".encode("gb18030"), "file_no_rows"),
        (b"nom,sexe\nA,M\n", "file_header"),
        (bytes(range(256)) * 20, "file_encoding"),
        (b"\x00" * 2000, "file_encoding"),
        ("名字,性別\n王,男\n".encode("big5"), "file_encoding"),
        (b"PK\x03\x04garbage that is no zip", "file_format"),
    ],
)
def test_files_refused_as_files(data: bytes, code: str) -> None:
    with pytest.raises(FileRejected) as err:
        open_table(io.BytesIO(data), aliases=ALIASES, required=["name"])
    assert err.value.code == code
    assert err.value.message_zh
    assert err.value.message_en
    assert err.value.message_zh != err.value.message_en


def test_a_real_binary_is_refused(tmp_path: Path) -> None:
    binary = next((p for p in ("/bin/ls", "/usr/bin/env") if os.path.exists(p)), None)
    if binary is None:  # pragma: no cover - every Linux has one
        pytest.skip("no binary to read")
    with pytest.raises(FileRejected) as err:
        check_file(binary, aliases=CHILD_ALIASES, required=["name"])
    assert err.value.code == "file_encoding"


def test_missing_file_and_wrong_header_name_the_columns(tmp_path: Path) -> None:
    with pytest.raises(FileRejected) as err:
        check_file(tmp_path / "nope.csv", aliases=ALIASES)
    assert err.value.code == "file_missing"
    with pytest.raises(FileRejected) as err:
        check_file(io.BytesIO("名字,性别\n王,男\n".encode()), aliases=ALIASES, required=["name"])
    assert (err.value.code, err.value.field) == ("file_header", "name")
    assert "姓名" in err.value.message_zh
    assert "名字" in err.value.message_zh


def test_control_characters_are_row_problems_with_their_row() -> None:
    data = "name,sex\n王小明,男\n王\x00明,男\n李\u0085四,女\n".encode()
    got = _rows(open_table(io.BytesIO(data), aliases=ALIASES))
    assert [(n, codes) for n, _, codes in got] == [
        (1, []),
        (2, ["control_character"]),
        (3, ["control_character"]),
    ]


def _workbook(path: Path, sheets: dict[str, list[list[object]]]) -> None:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append(r)
    wb.save(path)


def test_workbook_first_sheet_and_named_sheet(tmp_path: Path) -> None:
    from datetime import date, datetime

    path = tmp_path / "roster.xlsx"
    _workbook(
        path,
        {
            "说明": [["填表说明"], ["姓名", "性别"], ["不要", "读"]],
            "名单": [
                ["姓名", "性别", "出生日期", "备注"],
                ["王小明", "男", date(2020, 3, 15)],  # trailing cells left out
                [None, None, None],  # a blank row: skipped, not counted
                ["阿依古丽·买买提", "女", "2021/5/1"],
                ["𠀀㐀", "男", datetime(2020, 1, 1)],
            ],
        },
    )
    with open_table(path, aliases=ALIASES, required=["name"], sheet="名单") as table:
        assert table.info == FileInfo("xlsx", None, "名单", ("birth_date", "name", "sex"))
        got = _rows(table)
    assert got == [
        (1, {"name": "王小明", "sex": "男", "birth_date": "2020-03-15"}, []),
        (2, {"name": "阿依古丽·买买提", "sex": "女", "birth_date": "2021/5/1"}, []),
        (3, {"name": "𠀀㐀", "sex": "男", "birth_date": "2020-01-01"}, []),
    ]
    # The first sheet by default: here its first non-blank row is not a header we know.
    with pytest.raises(FileRejected) as err:
        open_table(path, aliases=ALIASES, required=["name"])
    assert err.value.code == "file_header"
    with pytest.raises(FileRejected) as err:
        open_table(path, aliases=ALIASES, sheet="Sheet9")
    assert err.value.code == "file_sheet"
    assert "名单" in err.value.message_en
    # A CSV has no sheets.
    with pytest.raises(FileRejected) as err:
        open_table(io.BytesIO(b"name\nA\n"), aliases=ALIASES, sheet="名单")
    assert err.value.code == "file_sheet"


def test_workbook_and_csv_give_the_same_rows_and_problems(tmp_path: Path) -> None:
    rows = [["name", "sex"], ["A", "M"], ["", ""], ["B" * 1001, "F"], ["C", "F", "extra"]]
    csv_path = tmp_path / "same.csv"
    csv_path.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
    xlsx_path = tmp_path / "same.xlsx"
    _workbook(xlsx_path, {"S": rows})  # type: ignore[dict-item]
    from_csv = _rows(open_table(csv_path, aliases=ALIASES))
    from_xlsx = _rows(open_table(xlsx_path, aliases=ALIASES))
    assert from_csv == from_xlsx
    assert [codes for _, _, codes in from_csv] == [[], ["too_long"], ["row_long"]]


def test_workbook_header_only_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "h.xlsx"
    _workbook(path, {"S": [["姓名", "性别"]]})
    with pytest.raises(FileRejected) as err:
        check_file(path, aliases=ALIASES)
    assert err.value.code == "file_no_rows"
    _workbook(path, {"S": []})
    with pytest.raises(FileRejected) as err:
        check_file(path, aliases=ALIASES)
    assert err.value.code == "file_empty"


def test_workbook_from_a_stream_that_cannot_seek(tmp_path: Path) -> None:
    path = tmp_path / "s.xlsx"
    _workbook(path, {"S": [["name"], ["A"]]})

    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: object) -> int:
            chunk = self.data.read(len(b))  # type: ignore[arg-type]
            b[: len(chunk)] = chunk  # type: ignore[index]
            return len(chunk)

    got = [r.values["name"] for r in read_table(Pipe(path.read_bytes()), aliases=ALIASES)]  # type: ignore[arg-type]
    assert got == ["A"]
    got = [r.values["name"] for r in read_table(Pipe(b"name\nB\n"), aliases=ALIASES)]  # type: ignore[arg-type]
    assert got == ["B"]


def test_without_openpyxl_a_workbook_is_refused_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "w.xlsx"
    _workbook(path, {"S": [["name"], ["A"]]})
    real = xlsx.importlib.import_module

    def no_openpyxl(name: str, *a: object) -> object:
        if name.startswith("openpyxl"):
            raise ImportError(name)
        return real(name, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(xlsx.importlib, "import_module", no_openpyxl)
    with pytest.raises(FileRejected) as err:
        check_file(path, aliases=ALIASES)
    assert err.value.code == "file_format"
    assert "studentstatus[xlsx]" in err.value.message_en
    assert "studentstatus[xlsx]" in err.value.message_zh
    with pytest.raises(FileRejected):
        write_table(tmp_path / "out.xlsx", ["a"], [["b"]])


def test_xlsx_export_keeps_formula_like_text_as_text(tmp_path: Path) -> None:
    path = tmp_path / "problems.xlsx"
    nasty = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", '=HYPERLINK("http://x")', "王\x00明", "普通"]
    n = write_table(path, ["id", "text", "count"], [[f"p{i}", t, i] for i, t in enumerate(nasty)])
    assert n == len(nasty)
    wb = openpyxl.load_workbook(path)  # not read-only: formulas would show as data_type "f"
    ws = wb.active
    cells = [ws.cell(row=i + 2, column=2) for i in range(len(nasty))]
    assert all(c.data_type == "s" for c in cells)
    assert [c.value for c in cells][:5] == nasty[:5]
    assert cells[5].value == "王\ufffd明"  # XML cannot hold NUL
    assert ws.cell(row=2, column=3).value == 0  # numbers stay numbers
    with zipfile.ZipFile(path) as z:
        sheet = next(n for n in z.namelist() if n.startswith("xl/worksheets/sheet"))
        assert b"<f>" not in z.read(sheet)
    # read back through the checked reader: the same text
    back = [r.values["name"] for r in read_table(path, aliases={"text": "name"})]
    assert back[:5] == nasty[:5]


def test_csv_export_by_name(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    write_table(path, ["text"], [["=1+1"]])
    assert path.read_text(encoding="utf-8-sig").splitlines() == ["text", "'=1+1"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=3000),
        st.text(max_size=400).map(lambda t: ("name,sex\n" + t).encode("utf-8", "surrogatepass")),
        st.text(max_size=400).flatmap(
            lambda t: st.sampled_from(["utf-16", "gb18030", "utf-8-sig"]).map(
                lambda e: ("姓名,性别\n" + t).encode(e, "replace")
            )
        ),
    )
)
def test_any_bytes_are_refused_as_a_file_or_read_as_rows(data: bytes) -> None:
    refused: FileRejected | None = None
    try:
        table = open_table(io.BytesIO(data), aliases=ALIASES, required=["name"])
    except FileRejected as err:
        refused = err
    if refused is not None:
        assert refused.code.startswith("file_")
        assert refused.message_zh
        assert refused.message_en
        return
    rows = list(table)
    assert rows
    assert [r.number for r in rows] == list(range(1, len(rows) + 1))
    for r in rows:
        assert isinstance(r, CsvRow)
        assert all(p.code and p.message_zh and p.message_en for p in r.problems)


def test_random_binary_files_are_refused() -> None:
    rnd = random.Random(7)
    for _ in range(50):
        data = bytes(rnd.getrandbits(8) for _ in range(4096))
        with pytest.raises(FileRejected) as err:
            check_file(io.BytesIO(data), aliases=CHILD_ALIASES, required=["name"])
        assert err.value.code in {"file_encoding", "file_header"}


def test_an_id_typed_as_an_excel_number_is_reported(tmp_path: Path) -> None:
    """Excel keeps 15 digits: an 18-digit ID stored as a number has lost its tail."""
    path = tmp_path / "ids.xlsx"
    _workbook(
        path,
        {"S": [["姓名", "身份证件号码", "联系电话"],
               ["王小明", 110105202003150038, 13800138000],
               ["李四", "110105202003150038", 13900139000]]},
    )  # fmt: skip
    got = _rows(open_table(path, aliases=CHILD_ALIASES, required=["name"]))
    assert got[0][2] == ["number_precision"]
    assert got[0][1]["guardian_phone"] == "13800138000"  # 11 digits: exact
    assert got[1][2] == []  # typed as text: exact
    assert got[1][1]["id_number"] == "110105202003150038"
