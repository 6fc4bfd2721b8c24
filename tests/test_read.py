"""Reading: encodings, delimiters, every cell as text, XLSX values, row numbers."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
import pytest

from bulksync.errors import SheetError
from bulksync.sheets.read import read_table
from bulksync.sheets.table import CsvFormat, XlsxFormat
from tests.conftest import write


@pytest.mark.parametrize(("encoding", "bom", "text_encoding"), [
    ("utf-8", b"", "utf-8"),
    ("utf-8", b"\xef\xbb\xbf", "utf-8-sig"),
    ("utf-16-le", b"\xff\xfe", "utf-16"),
    ("cp1252", b"", "cp1252"),
])
def test_encodings_are_detected(tmp_path: Path, encoding: str, bom: bytes, text_encoding: str) -> None:
    path = write(tmp_path / "t.csv", "description,notes\r\nCafé crème – 5 €,ok\r\n", text_encoding)
    table = read_table(path)
    assert table.format == CsvFormat(encoding=encoding, bom=bom, delimiter=",", newline="\r\n")
    assert table.header == ("description", "notes")
    assert table.frame.loc[2].tolist() == ["Café crème – 5 €", "ok"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_are_detected(tmp_path: Path, delimiter: str) -> None:
    path = write(tmp_path / "t.csv", delimiter.join(["description", "tags", "x"]) + "\n"
                 + delimiter.join(["a", '"b,c;d|e"', "z"]) + "\n")
    table = read_table(path)
    assert isinstance(table.format, CsvFormat) and table.format.delimiter == delimiter
    assert table.frame.loc[2].tolist() == ["a", "b,c;d|e", "z"]


def test_every_cell_stays_text(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", 'a,b,c,d,e\n007,1234567890123456789,NA,null,"two\nlines"\n')
    table = read_table(path)
    assert table.frame.loc[2].tolist() == ["007", "1234567890123456789", "NA", "null", "two\nlines"]


def test_rows_are_numbered_as_a_spreadsheet_shows_them(tmp_path: Path) -> None:
    # A quoted newline stays inside its row; a blank line is a row of its own.
    path = write(tmp_path / "t.csv", 'a,b\n"x\ny",1\n\nz,2\n')
    table = read_table(path)
    assert table.frame.index.tolist() == [2, 3, 4]
    assert table.frame.loc[4].tolist() == ["z", "2"]


def _workbook_with_cached_formula(path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Tickets"
    ws.append(["whole", "decimal", "date", "datetime", "bool", "formula", "text"])
    ws.append([42, 2.5, dt.date(2024, 3, 1), dt.datetime(2024, 3, 1, 14, 30), True, "=A2*2", "007"])
    wb.create_sheet("Other")["A1"] = "other"
    wb.save(path)
    # openpyxl writes no cached value for a formula; Excel would. Put one in, as Excel does.
    with zipfile.ZipFile(path) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    assert "<f>A2*2</f><v></v>" in sheet
    parts["xl/worksheets/sheet1.xml"] = sheet.replace("<f>A2*2</f><v></v>", "<f>A2*2</f><v>84</v>").encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)


def test_xlsx_cells_as_text(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    _workbook_with_cached_formula(path)
    table = read_table(path)
    assert table.format == XlsxFormat("Tickets", ("Tickets", "Other"))
    assert table.frame.loc[2].tolist() == ["42", "2.5", "2024-03-01", "2024-03-01T14:30:00",
                                           "TRUE", "84", "007"]


def test_xlsx_sheet_by_name_and_unknown_sheet(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    _workbook_with_cached_formula(path)
    assert read_table(path, sheet="Other").header == ("other",)
    with pytest.raises(SheetError) as e:
        read_table(path, sheet="Nope")
    assert str(e.value) == f"{path}: has no sheet named 'Nope'; its sheets are: 'Tickets', 'Other'"


@pytest.mark.parametrize(("name", "content", "message"), [
    ("empty.csv", b"", "is empty: the first row must be a header naming the columns"),
    ("fake.xlsx", b"description\nhello\n", "is not an .xlsx workbook (it is not a zip package)"),
    ("old.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "is a legacy .xls or an encrypted"),
    ("junk.csv", bytes(range(256)) * 4, "is not a text file"),
    ("ragged.csv", b"a,b\n1,2,3\n", "row 2 has 3 cells but the header has 2 columns"),
])
def test_unreadable_files_say_why(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SheetError) as e:
        read_table(path)
    assert str(e.value).startswith(f"{path}: {message}")


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(SheetError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(SheetError, match="is a folder"):
        read_table(tmp_path)
