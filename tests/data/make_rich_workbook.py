"""How tests/data/rich.xlsx and rich.xlsm were made (run once; the files are checked in).

A workbook with everything a user's workbook may hold besides the cells
bulksync writes: a chart, an image, a comment, data validation, conditional
formatting, formulas with cached values (as Excel saves them), a defined
name, a frozen header, a second sheet; the .xlsm also holds a VBA project part.
Needs openpyxl and Pillow (Pillow only here, not in bulksync).

    .venv/bin/python tests/data/make_rich_workbook.py
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.comments import Comment
from openpyxl.drawing.image import Image
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import Font, PatternFill
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation
from PIL import Image as PILImage

HERE = Path(__file__).parent


def build() -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "Tickets"
    ws.append(["description", "priority", "status", "assignee", "hours", "cost", "notes"])
    rows = [("Printer jams on floor 3", "High", "Open", "U05KQ2M8Z1A", 2),
            ("VPN drops every 10 minutes", "Medium", "Open", "", 5),
            ("Invoice shows the wrong VAT", "Low", "Open", "U02R4T6Y8U0", 1)]
    for i, (desc, prio, status, assignee, hours) in enumerate(rows, start=2):
        ws.append([desc, prio, status, assignee or None, hours, f"=E{i}*80", "=SUM(1,2)"])
    for cell in ws[1]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="4A154B")
    ws.freeze_panes = "A2"
    ws["A2"].comment = Comment("Reported twice this week", "Ann")
    dv = DataValidation(type="list", formula1='"Low,Medium,High,CRITICAL"', allow_blank=True)
    ws.add_data_validation(dv)
    dv.add("B2:B100")
    ws.conditional_formatting.add("E2:E100", CellIsRule(operator="greaterThan", formula=["3"],
                                                        fill=PatternFill("solid", fgColor="FFC7CE")))
    wb.defined_names["HourlyRate"] = DefinedName("HourlyRate", attr_text="Tickets!$E$2")
    chart = BarChart()
    chart.add_data(Reference(ws, min_col=5, min_row=1, max_row=4), titles_from_data=True)
    ws.add_chart(chart, "I2")
    png = io.BytesIO()
    PILImage.new("RGB", (40, 20), (74, 21, 75)).save(png, format="PNG")
    ws.add_image(Image(png), "I20")
    other = wb.create_sheet("Summary")
    other["A1"] = "Open tickets"
    other["B1"] = "=COUNTA(Tickets!A2:A100)"
    out = io.BytesIO()
    wb.save(out)
    return _with_cached_values(out.getvalue())


def _with_cached_values(data: bytes) -> bytes:
    """openpyxl writes formulas without their cached values; Excel writes both."""
    cached = {"F2": "160", "F3": "400", "F4": "80", "G2": "3", "G3": "3", "G4": "3", "B1": "3"}
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            part = src.read(info)
            if info.filename.startswith("xl/worksheets/sheet"):
                text = part.decode()
                for ref, value in cached.items():
                    text = re.sub(rf'(<c r="{ref}"[^>]*>)<f>([^<]*)</f><v\s*/?>(</v>)?',
                                  rf"\1<f>\2</f><v>{value}</v>", text)
                # As Excel writes it: extension namespaces that mc:Ignorable names by prefix.
                text = text.replace(
                    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">',
                    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                    'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
                    'mc:Ignorable="x14ac xr" '
                    'xmlns:x14ac="http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac" '
                    'xmlns:xr="http://schemas.microsoft.com/office/spreadsheetml/2014/revision" '
                    'xr:uid="{00000000-0001-0000-0000-000000000000}">')
                text = re.sub(r'<row r="(\d+)">', r'<row r="\1" spans="1:7" x14ac:dyDescent="0.25">', text)
                part = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n' + text).encode()
            dst.writestr(info, part)
    return out.getvalue()


def with_vba(data: bytes) -> bytes:
    """The same workbook as an .xlsm with a (stand-in) VBA project part."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            part = src.read(info)
            if info.filename == "[Content_Types].xml":
                part = part.replace(
                    b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                    b"application/vnd.ms-excel.sheet.macroEnabled.main+xml").replace(
                    b"</Types>", b'<Default Extension="bin" ContentType="application/'
                                 b'vnd.ms-office.vbaProject"/></Types>')
            if info.filename == "xl/_rels/workbook.xml.rels":
                part = part.replace(b"</Relationships>", b'<Relationship Id="rIdVba" Type="http://'
                                    b'schemas.microsoft.com/office/2006/relationships/vbaProject" '
                                    b'Target="vbaProject.bin"/></Relationships>')
            dst.writestr(info, part)
        dst.writestr("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0 stand-in VBA project " * 20)
    return out.getvalue()


if __name__ == "__main__":
    data = build()
    (HERE / "rich.xlsx").write_bytes(data)
    (HERE / "rich.xlsm").write_bytes(with_vba(data))
