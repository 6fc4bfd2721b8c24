"""Sheets in legacy encodings: what bulksync writes back must fit the file's encoding."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

import bulksync
from bulksync.resources import bundled
from bulksync.sandbox import Sandbox
from bulksync.sheets.read import read_table
from bulksync.sheets.write_csv import encodable
from tests.conftest import CHANNEL, FORM, TOKEN, run_cli

SAMPLES = bundled("sample_data")


def _cp1252_export(folder: Path) -> Path:
    """The Zendesk sample as Excel on Windows saves it: cp1252, one status the preset lacks."""
    for name in ("users.csv", "bulksync.toml"):
        shutil.copy(SAMPLES / name, folder / name)
    text = (SAMPLES / "zendesk-export.csv").read_text(encoding="utf-8")
    text = text.replace(",pending,normal,", ",on review,normal,", 1)
    path = folder / "zendesk-export.csv"
    path.write_bytes(text.encode("cp1252"))
    return path


def _cells(path: Path, column: str) -> list[str]:
    table = read_table(path)
    where = table.position(column)
    assert where is not None, column
    return table.frame[where].tolist()


def test_a_cp1252_export_gets_its_ids_although_a_message_holds_an_arrow(
        tmp_path: Path, sandbox: Sandbox) -> None:
    path = _cp1252_export(tmp_path)
    before = path.read_bytes()
    args = ("push", str(path), "--mapping", "zendesk", "--users", str(tmp_path / "users.csv"),
            "--skip-invalid", "-q")
    env = {"SUPTASK_API_URL": sandbox.url, "SUPTASK_API_TOKEN": TOKEN}
    first = run_cli(*args, env=env)
    assert first.returncode == 1, first.stderr  # one invalid row, no traceback
    assert "Traceback" not in first.stderr
    assert len(sandbox.tickets()) == 3
    after = path.read_bytes()
    after.decode("cp1252")  # still the file's own encoding
    assert after.startswith(before.split(b"\n", 1)[0])  # the header kept, our columns appended
    assert "Ana Garc\xeda".encode("cp1252") in after
    ids = _cells(path, "ticketId")
    assert sorted(ids) == sorted(["", *(t["id"] for t in sandbox.tickets())])
    error = _cells(path, "syncError")[1]
    assert "Status (-> status)" in error and "on review" in error, error
    # Each original line is still there, byte for byte, at the start of its line.
    for old, new in zip(before.splitlines(), after.splitlines(), strict=True):
        assert new.startswith(old)
    # A rerun sends nothing and does not crash.
    count = len(sandbox.requests())
    again = run_cli(*args, env=env)
    assert again.returncode == 1 and "Traceback" not in again.stderr, again.stderr
    assert len(sandbox.requests()) == count and len(sandbox.tickets()) == 3


def test_server_text_a_cp1252_file_cannot_hold_is_escaped(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("description,notes\nCaf\xe9 printer,r\xe9sum\xe9\n".encode("cp1252"))

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"message": "Статус → “Ω” 日本 not allowed…"})

    result = bulksync.push(path, token=TOKEN, api_url="http://127.0.0.1:9", form_id=FORM,
                           channel=CHANNEL, transport=httpx.MockTransport(refuse))
    assert result.counts["failed"] == 1 and result.written_to == path, result.summary()
    data = path.read_bytes()
    assert data.startswith("description,notes,syncStatus,syncError\nCaf\xe9 printer,r\xe9sum\xe9,"
                           .encode("cp1252"))
    error = _cells(path, "syncError")[0]
    assert "\\u0421\\u0442\\u0430\\u0442\\u0443\\u0441 -> \"\\u03a9\" \\u65e5\\u672c not allowed..." in error


def test_encodable_keeps_what_the_encoding_holds() -> None:
    assert encodable("Caf\xe9 – ok", "cp1252") == "Caf\xe9 – ok"  # cp1252 has the en dash
    assert encodable("a → b", "cp1252") == "a -> b"
    assert encodable("Caf\xe9 – ok", "latin-1") == "Caf\xe9 - ok"
    assert encodable("日本", "cp1252") == "\\u65e5\\u672c"
