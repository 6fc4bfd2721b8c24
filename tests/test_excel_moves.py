"""What people do between two pushes, in Excel (issue 23): sort or paste rows without
bulksync's columns, save from a window opened before the push, reuse a sheet's fields for
other people, rotate the token. The IDs in a sheet always belong to the row they stand in."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import httpx
import pytest

import bulksync
from bulksync.errors import TargetMismatch
from bulksync.journal import SCHEMA_VERSION, Target, read_view, store_path
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FORM, TOKEN, read_rows, run_cli, write, write_rows

DEFAULTS = {"form_id": FORM, "channel": CHANNEL}
FLAGS = ("--form-id", FORM, "--channel", CHANNEL)


_rows, _write_rows = read_rows, write_rows


def _env(sb: Sandbox, token: str = TOKEN) -> dict[str, str]:
    return {"SUPTASK_API_URL": sb.url, "SUPTASK_API_TOKEN": token}


def _sent(sb: Sandbox, since: int) -> list[dict[str, object]]:
    return sb.requests()[since:]


def _tickets_sheet(path: Path) -> Path:
    return write(path, "description,priority\n" + "".join(
        f"Printer {i} is jammed,{p}\n" for i, p in enumerate(("Low", "Medium", "High", "Low"))))


# -- 1. IDs left behind by a sort -------------------------------------------------------------

def _sort_user_columns(path: Path) -> None:
    """Sort description and priority (the user's selection, A:B), leaving bulksync's columns
    where they were: what sorting a range that does not take them in does."""
    rows = _rows(path)
    user = sorted(({"description": r["description"], "priority": r["priority"]} for r in rows),
                  key=lambda r: r["description"], reverse=True)
    _write_rows(path, [{**r, **u} for r, u in zip(rows, user, strict=True)])


def test_ids_a_sort_left_beside_other_tickets_cells_stop_plan_push_and_delete(tmp_path: Path,
                                                                              sandbox: Sandbox) -> None:
    sheet = _tickets_sheet(tmp_path / "t.csv")
    assert bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS).counts["created"] == 4
    number = {r["description"]: r["ticketNumber"] for r in _rows(sheet)}
    pushed = {r["ticketId"]: (r["description"], r["priority"]) for r in _rows(sheet)}
    _sort_user_columns(sheet)
    before, sent = sheet.read_bytes(), len(sandbox.requests())

    plan = run_cli("plan", str(sheet), *FLAGS, env=_env(sandbox))
    assert plan.returncode == 1, plan.stdout + plan.stderr
    # Row 2 held "Printer 0" and its ticket's ID; after the sort it holds "Printer 3", whose
    # ID is still on row 5.
    mine, theirs = number["Printer 0 is jammed"], number["Printer 3 is jammed"]
    assert (f"row 2, column ticketId: holds ticket #{theirs}'s cells beside #{mine}'s ID (#{theirs}'s ID "
            "is on row 5)") in plan.stderr
    assert "4 row(s) hold another ticket's cells beside their ticketId" in plan.stderr
    assert "PATCH" not in plan.stdout
    for command in (("push", *FLAGS), ("delete", "--yes")):
        refused = run_cli(*command[:1], str(sheet), *command[1:], env=_env(sandbox))
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "holds ticket #" in refused.stderr and "Traceback" not in refused.stderr
    assert sheet.read_bytes() == before and _sent(sandbox, sent) == []

    # Put back as it was (the user's Ctrl+Z): nothing to send, nothing refused.
    rows = _rows(sheet)
    for row in rows:
        row["description"], row["priority"] = pushed[row["ticketId"]]
    _write_rows(sheet, rows)
    again = run_cli("push", str(sheet), *FLAGS, env=_env(sandbox))
    assert again.returncode == 0, again.stderr
    assert _sent(sandbox, sent) == []


def test_a_sort_with_bulksyncs_columns_is_no_move(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _tickets_sheet(tmp_path / "t.csv")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    _write_rows(sheet, sorted(_rows(sheet), key=lambda r: r["priority"]))  # whole rows move
    report, plan = bulksync.plan(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert report.valid and plan.counts()["unchanged"] == 4


def test_an_edit_that_equals_a_neighbours_cells_is_an_edit(tmp_path: Path, sandbox: Sandbox) -> None:
    """Closing one ticket of a list where another is closed: the neighbour's row did not move."""
    sheet = write(tmp_path / "t.csv", "description,status\nA,Open\nA,Closed\nB,Open\n")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    rows = _rows(sheet)
    rows[0]["status"] = "Closed"  # row 2 now holds what row 3's ticket was last synced with
    _write_rows(sheet, rows)
    report, plan = bulksync.plan(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert report.valid, report.lines()
    assert [(op.row_number, dict(op.payload)) for op in plan.operations if op.kind == "update"] == [
        (2, {"status": "Closed"})]


def test_two_rows_swapped_on_purpose_go_with_trust_ids(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "t.csv", "description,priority\nA,Low\nB,High\n")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    rows = _rows(sheet)
    rows[0]["description"], rows[1]["description"] = "B", "A"
    rows[0]["priority"], rows[1]["priority"] = "High", "Low"
    _write_rows(sheet, rows)
    refused = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert refused.refused and {p.code for p in refused.report.problems} == {"moved-ids", "moved-id"}
    sent = len(sandbox.requests())
    pushed = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, trust_ids=True, **DEFAULTS)
    assert pushed.counts["updated"] == 2 and len(_sent(sandbox, sent)) == 2


# -- 2. rows are the same only when all their cells are ------------------------------------------

def _onboarding(path: Path, names: list[str]) -> Path:
    return write(path, "new hire\n" + "".join(f"{n}\n" for n in names))


def test_rows_that_send_the_same_fields_for_other_people_are_other_tickets(tmp_path: Path,
                                                                           sandbox: Sandbox) -> None:
    options = {**DEFAULTS, "set": {"description": "Set up a laptop and accounts"}}
    week1 = _onboarding(tmp_path / "week1.csv", ["Ada", "Grace", "Linus", "Ken", "Barbara"])
    fresh = week1.read_bytes()
    assert bulksync.push(week1, token=TOKEN, api_url=sandbox.url, **options).counts["created"] == 5
    week2 = _onboarding(tmp_path / "week2.csv", ["Alan", "Edsger", "Donald", "Niklaus", "Frances"])
    second = bulksync.push(week2, token=TOKEN, api_url=sandbox.url, **options)
    assert second.counts["created"] == 5 and second.summary()["matched"] == 0
    assert len(sandbox.tickets()) == 10
    # A renamed copy of week 1, in another folder, taken before its IDs were written: matched.
    (tmp_path / "other").mkdir()
    copy = tmp_path / "other" / "week1 (copy).csv"
    copy.write_bytes(fresh)
    again = bulksync.push(copy, token=TOKEN, api_url=sandbox.url, **options)
    assert again.counts["created"] == 5 and again.summary()["matched"] == 5
    assert len(sandbox.tickets()) == 10
    assert [r["ticketId"] for r in _rows(copy)] == [r["ticketId"] for r in _rows(week1)]


def test_a_store_of_bulksync_0_1_still_finds_its_in_flight_rows(tmp_path: Path, sandbox: Sandbox) -> None:
    """A row with a column of the user's was known by its Suptask cells alone before: its
    create, in flight when 0.1 stopped, is found under that key, not sent again."""
    from bulksync.columns import row_contents
    from bulksync.config import resolve_settings
    from bulksync.journal import Journal
    from bulksync.preflight import prepare

    sheet = write(tmp_path / "t.csv", "description,notes\nPrinter jammed,ask Bob\n")
    settings = resolve_settings(sheet, api_url=sandbox.url, **DEFAULTS)
    prepared = prepare(sheet, settings)
    old = row_contents(prepared.rows, users=False)[2]
    assert old != row_contents(prepared.rows)[2]
    with Journal(Target.of(sandbox.url, TOKEN)) as journal:
        assert journal.intend(f"row\x1f{prepared.scope}\x1f{old}", 2, {"description": "Printer jammed"},
                              scope=prepared.scope, content=old) is None
    _, plan = bulksync.plan(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert sorted(plan.reconciliation.pending) == [2]


# -- 3. a save from a window opened before the push -----------------------------------------------

def test_a_stale_save_holds_the_edited_row_and_relink_gives_it_back(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _tickets_sheet(tmp_path / "t.csv")
    opened = sheet.read_text()  # the window the user opened before the push
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    made = {r["description"]: (r["ticketId"], r["ticketNumber"]) for r in _rows(sheet)}
    # The user edits row 3 in that window and saves: the IDs are gone, row 3 is new text.
    sheet.write_text(opened.replace("Printer 1 is jammed,Medium", "Printer 1 is jammed again,High"))
    sent = len(sandbox.requests())

    plan = run_cli("plan", str(sheet), *FLAGS, env=_env(sandbox))
    assert plan.returncode == 1
    assert f"row 3: held: ticket #{made['Printer 1 is jammed'][1]} was created from this row" in plan.stdout
    assert "0 to create, 0 to update, 0 unchanged, 0 with nothing to send, 0 invalid, 1 held" in plan.stdout
    assert "3 row(s) already created (recovered from bulksync's state): 2, 4–5" in plan.stdout
    pushed = run_cli("push", str(sheet), *FLAGS, env=_env(sandbox))
    assert pushed.returncode == 1, pushed.stderr
    assert re.search(r"row 3: held: ticket #\d+ was created from this row.*--relink", pushed.stdout)
    assert "3 created, 0 updated, 0 failed, 1 held, 3 of them recovered (0 requests)" in pushed.stdout
    assert _sent(sandbox, sent) == [] and len(sandbox.tickets()) == 4
    assert _rows(sheet)[1]["syncStatus"] == "held" and _rows(sheet)[1]["ticketId"] == ""

    # Pushed again, the rows recovered meanwhile do not make row 3 a new row.
    still = run_cli("push", str(sheet), *FLAGS, env=_env(sandbox))
    assert still.returncode == 1 and "1 held" in still.stdout and len(sandbox.tickets()) == 4

    relinked = run_cli("push", str(sheet), *FLAGS, "--relink", env=_env(sandbox))
    assert relinked.returncode == 0, relinked.stdout + relinked.stderr
    ticket_id, number = made["Printer 1 is jammed"]
    row = _rows(sheet)[1]
    assert (row["ticketId"], row["ticketNumber"], row["syncStatus"]) == (ticket_id, number, "updated")
    calls = [(r["method"], r["path"].rsplit("/ticket", 1)[1]) for r in _sent(sandbox, sent)]
    assert calls == [("GET", f"/{number}"), ("PATCH", f"/{ticket_id}")]  # prepared, then sent
    by_id = {t["id"]: t for t in sandbox.tickets()}
    assert (by_id[ticket_id]["description"], by_id[ticket_id]["priority"]) == ("Printer 1 is jammed again", "High")
    assert len(by_id) == 4


def test_a_stale_save_with_allow_duplicates_creates_the_row_anew(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _tickets_sheet(tmp_path / "t.csv")
    opened = sheet.read_text()
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    sheet.write_text(opened.replace("Printer 2 is jammed", "Printer 2 is on fire"))
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, allow_duplicates=True, **DEFAULTS)
    assert result.counts["created"] == 4 and result.summary()["recovered"] == 3
    assert len(sandbox.tickets()) == 5


def test_a_row_typed_where_a_deleted_row_was_is_a_new_row(tmp_path: Path, sandbox: Sandbox) -> None:
    """The sheet kept its other IDs: the last row was deleted and another typed in its place."""
    sheet = _tickets_sheet(tmp_path / "t.csv")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    rows = _rows(sheet)
    rows[-1] = {"description": "A new request", "priority": "Low", "ticketId": "", "ticketNumber": "",
                "syncStatus": ""}
    _write_rows(sheet, rows)
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert result.counts["created"] == 1 and result.counts["held"] == 0
    assert len(sandbox.tickets()) == 5


# -- 4. a rotated token ------------------------------------------------------------------------

def test_a_rotated_token_for_the_same_workspace_keeps_the_sheets_state(tmp_path: Path) -> None:
    sheet = _tickets_sheet(tmp_path / "t.csv")
    with Sandbox(token=TOKEN) as sb:
        bulksync.push(sheet, token=TOKEN, api_url=sb.url, **DEFAULTS)
        rows = _rows(sheet)
        rows[0]["priority"] = "High"
        _write_rows(sheet, rows)
        sb.token = "rotated-token"
        sent = len(sb.requests())
        pushed = run_cli("push", str(sheet), *FLAGS, env=_env(sb, "rotated-token"))
        assert pushed.returncode == 0, pushed.stderr
        assert pushed.stderr.count("carries over") == 1 and "1 request" in pushed.stderr
        assert "rotated-token" not in pushed.stderr + pushed.stdout
        calls = [r["method"] for r in _sent(sb, sent)]
        assert calls == ["GET", "PATCH"]  # one read to check; only the edit is sent
        # From now on the new token is at home: no read, nothing resent.
        sent = len(sb.requests())
        again = run_cli("push", str(sheet), *FLAGS, env=_env(sb, "rotated-token"))
        assert again.returncode == 0 and "carries over" not in again.stderr
        assert _sent(sb, sent) == []
        # And bulksync's state for it is the earlier token's: a plan without a token finds it.
        view = read_view(Target.of(sb.url, "rotated-token"), [r["ticketId"] for r in rows])
        assert len(view.baselines) == 4 and not view.foreign


@pytest.mark.parametrize("workspace", ["another workspace (404)", "a refused token (401)"])
def test_a_token_that_does_not_read_the_sheets_tickets_is_refused(tmp_path: Path, workspace: str) -> None:
    sheet = _tickets_sheet(tmp_path / "t.csv")
    with Sandbox(token=TOKEN) as sb:
        bulksync.push(sheet, token=TOKEN, api_url=sb.url, **DEFAULTS)
        before = sheet.read_bytes()
        if "404" in workspace:  # the ticket read is not there for the new token
            first = _rows(sheet)[0]["ticketId"]
            httpx.delete(f"{sb.url}/ticket/{first}", headers={"Authorization": f"Api-Token {TOKEN}"})
            sb.token = "other-token"
        sent = len(sb.requests())
        with pytest.raises(TargetMismatch) as refused:
            bulksync.push(sheet, token="other-token", api_url=sb.url, **DEFAULTS)
        assert "with the new token, reading it answered" in str(refused.value)
        assert "other-token" not in str(refused.value)
        assert [r["method"] for r in _sent(sb, sent)] == ["GET"]
        assert sheet.read_bytes() == before
        db = sqlite3.connect(store_path())
        assert db.execute("SELECT count(*) FROM aliases").fetchone()[0] == 0


def test_a_store_of_schema_2_gains_aliases_and_lost_marks(tmp_path: Path) -> None:
    from bulksync.journal import _SCHEMA_V1, _SCHEMA_V2, Journal

    store_path().parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(store_path())
    db.executescript(_SCHEMA_V1 + _SCHEMA_V2)
    db.execute("INSERT INTO creates (target, key, scope, content, row_number, state, payload, sent_at) "
               "VALUES ('t', 'k', 's', 'c', 2, 'created', '{}', 1)")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    with Journal(Target("http://x", "f")):
        pass
    db = sqlite3.connect(store_path())
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert db.execute("SELECT lost FROM creates").fetchall() == [(0,)]
    assert db.execute("SELECT count(*) FROM aliases").fetchone()[0] == 0
    assert json.loads(db.execute("SELECT payload FROM creates").fetchone()[0]) == {}


def test_a_pull_with_a_rotated_token_carries_the_state_over_too(tmp_path: Path) -> None:
    sheet = _tickets_sheet(tmp_path / "t.csv")
    with Sandbox(token=TOKEN) as sb:
        bulksync.push(sheet, token=TOKEN, api_url=sb.url, **DEFAULTS)
        number = _rows(sheet)[0]["ticketNumber"]
        sb.edit(int(number), priority="High")
        sb.token = "rotated-token"
        pulled = run_cli("pull", str(sheet), env=_env(sb, "rotated-token"))
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr
        assert "carries over" in pulled.stderr
        assert (_rows(sheet)[0]["priority"], _rows(sheet)[0]["syncStatus"]) == ("High", "pulled")


def test_a_stale_row_a_spreadsheet_only_rewrote_is_recovered_and_its_value_then_held(
        tmp_path: Path, sandbox: Sandbox) -> None:
    from tests.conftest import FIELD

    sheet = write(tmp_path / "t.csv", f"description,customField_{FIELD}\nA,00123\nB,00456\n")
    opened = sheet.read_text()
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    made = _rows(sheet)[0]["ticketId"]
    sheet.write_text(opened.replace("00123", "123"))  # a stale window's save, through LibreOffice
    sent = len(sandbox.requests())
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert result.counts["created"] == 2 and result.summary()["recovered"] == 2 and result.counts["held"] == 0
    assert _rows(sheet)[0]["ticketId"] == made
    again = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert again.counts["held"] == 1 and "dropped its leading zeros" in _rows(sheet)[0]["syncError"]
    assert _sent(sandbox, sent) == [] and len(sandbox.tickets()) == 2


# -- what an adversarial review found (issue 23) -------------------------------------------------

def test_a_stale_save_with_a_row_inserted_above_holds_only_the_edited_row(tmp_path: Path,
                                                                         sandbox: Sandbox) -> None:
    sheet = _tickets_sheet(tmp_path / "t.csv")
    opened = _rows(sheet)
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    edited = [dict(r) for r in opened]
    edited[1]["description"] = "Printer 1 is on fire"
    _write_rows(sheet, [{"description": "A new request", "priority": "Low"}, *edited])
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert (result.counts["created"], result.counts["held"], result.summary()["recovered"]) == (4, 1, 3)
    assert [r["syncStatus"] for r in _rows(sheet)] == ["created", "created", "held", "created", "created"]
    assert len(sandbox.tickets()) == 5  # the new row, and nothing twice


def test_a_stale_save_with_a_row_deleted_pairs_the_edited_row_with_its_own_ticket(
        tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _tickets_sheet(tmp_path / "t.csv")
    opened = _rows(sheet)
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    made = {r["description"]: r["ticketId"] for r in _rows(sheet)}
    edited = [dict(r) for r in opened[1:]]  # row 2 deleted in the stale window,
    edited[0]["priority"] = "High"            # and the next one edited
    _write_rows(sheet, edited)
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, relink=True, **DEFAULTS)
    assert result.counts["updated"] == 1 and _rows(sheet)[0]["ticketId"] == made["Printer 1 is jammed"]
    assert len(sandbox.tickets()) == 4


def test_a_stale_row_that_may_be_either_of_two_tickets_is_held_unpaired(tmp_path: Path,
                                                                        sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "t.csv", "description,priority\nSame text,Low\nSame text,Low\nOther,High\n")
    opened = _rows(sheet)
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    edited = [dict(r) for r in opened[1:]]
    edited[0]["priority"] = "Medium"
    _write_rows(sheet, edited)
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, relink=True, **DEFAULTS)
    assert result.counts["held"] == 1 and "may be one of the tickets" in _rows(sheet)[0]["syncError"]
    assert _rows(sheet)[0]["ticketId"] == "" and len(sandbox.tickets()) == 3  # no ID guessed, none made


def test_a_sheet_reused_for_other_people_is_not_a_stale_save(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "hires.csv", "Name\nAlice\nBob\n")
    options = {**DEFAULTS, "set": {"description": "Laptop for new hire"}}
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **options)
    write(sheet, "Name\nCarol\nDan\n")
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **options)
    assert result.counts["created"] == 2 and result.counts["held"] == 0 and len(sandbox.tickets()) == 4


def test_allow_duplicates_settles_a_stale_save_for_good(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _tickets_sheet(tmp_path / "t.csv")
    opened = sheet.read_text()
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    sheet.write_text(opened.replace("Printer 1 is jammed", "Printer 1 is on fire"))
    assert bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS).counts["held"] == 1
    assert bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, allow_duplicates=True,
                         **DEFAULTS).counts["created"] == 1
    rows = _rows(sheet)  # later: the new row is deleted, and another typed in its place
    rows[1] = {**rows[1], "description": "Order more paper", "ticketId": "", "ticketNumber": "",
               "syncStatus": ""}
    _write_rows(sheet, rows)
    again = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert again.counts["held"] == 0 and again.counts["created"] == 1


def test_a_stale_saves_invalid_row_is_held_once_it_is_fixed(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _tickets_sheet(tmp_path / "t.csv")
    opened = sheet.read_text()
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    sheet.write_text(opened.replace("Printer 1 is jammed,Medium", ",Medium"))  # no description: invalid
    first = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, skip_invalid=True, **DEFAULTS)
    assert first.counts["invalid"] == 1 and first.summary()["recovered"] == 3
    sheet.write_text(sheet.read_text().replace("\n,Medium,", "\nPrinter 1 is on fire,Medium,"))
    fixed = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert fixed.counts["held"] == 1 and fixed.counts["created"] == 0 and len(sandbox.tickets()) == 4


def test_a_sort_that_moves_a_new_row_among_the_ids_is_refused(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "t.csv", "description,priority\nB printer,Low\n")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    rows = _rows(sheet)
    rows.append({"description": "A new laptop", "priority": "Urgent", "ticketId": "", "ticketNumber": "",
                 "syncStatus": ""})
    user = sorted(({"description": r["description"], "priority": r["priority"]} for r in rows),
                  key=lambda r: r["description"])
    _write_rows(sheet, [{**r, **u} for r, u in zip(rows, user, strict=True)])
    sent = len(sandbox.requests())
    refused = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert refused.refused and "moved-id" in {p.code for p in refused.report.problems}
    assert _sent(sandbox, sent) == []


def test_a_sort_then_a_column_filled_down_is_caught(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "t.csv", "description,priority,status\nA,Low,Open\nB,High,Open\nC,Medium,Open\n")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    rows = _rows(sheet)
    user = [{"description": r["description"], "priority": r["priority"], "status": "Closed"} for r in rows[::-1]]
    _write_rows(sheet, [{**r, **u} for r, u in zip(rows, user, strict=True)])
    report, _ = bulksync.plan(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert [p.row_number for p in report.problems if p.code == "moved-id"] == [2, 4]


def test_a_sort_of_the_users_own_columns_alone_is_caught(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "hires.csv", "Name,status\nAlice,Open\nBob,Open\nCarol,Open\n")
    options = {**DEFAULTS, "set": {"description": "Onboard a new hire"}}
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **options)
    rows = _rows(sheet)
    names = ["Carol", "Bob", "Alice"]
    for row, name in zip(rows, names, strict=True):
        row["Name"] = name
    rows[0]["status"] = "Closed"  # the user closes Carol's ticket, beside Alice's ID
    _write_rows(sheet, rows)
    report, plan = bulksync.plan(sheet, token=TOKEN, api_url=sandbox.url, **options)
    # Row 4 holds Alice, beside Carol's ID: the sheet is refused, Carol's close not sent to Alice.
    assert [p.row_number for p in report.problems if p.code == "moved-id"] == [4] and not plan.operations


def test_a_sort_in_a_sheet_a_spreadsheet_saved_again_is_caught(tmp_path: Path, sandbox: Sandbox) -> None:
    """Only the user's asset and room numbers tell the rows apart, and LibreOffice dropped
    their leading zeros when it saved the sorted sheet."""
    sheet = write(tmp_path / "t.csv", "asset,room\n00123,0101\n00456,0202\n00789,0303\n")
    options = {**DEFAULTS, "set": {"description": "Replace the toner"}}
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **options)
    rows = _rows(sheet)
    user = [{"asset": r["asset"].lstrip("0"), "room": r["room"].lstrip("0")} for r in rows[::-1]]
    _write_rows(sheet, [{**r, **u} for r, u in zip(rows, user, strict=True)])
    report, _ = bulksync.plan(sheet, token=TOKEN, api_url=sandbox.url, **options)
    assert [p.row_number for p in report.problems if p.code == "moved-id"] == [2, 4]


def test_a_status_list_whose_statuses_were_swapped_by_hand_is_sent(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "t.csv", "description\nA\nB\n")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    ids = [r["ticketId"] for r in _rows(sheet)]
    close = write(tmp_path / "close.csv", f"ticketId,status\n{ids[0]},Open\n{ids[1]},Closed\n")
    bulksync.push(close, token=TOKEN, api_url=sandbox.url)
    write(close, f"ticketId,status\n{ids[0]},Closed\n{ids[1]},Open\n")  # reopen one, close the other
    result = bulksync.push(close, token=TOKEN, api_url=sandbox.url)
    assert not result.refused and result.counts["updated"] == 2


def test_a_delete_refused_for_moved_ids_does_not_offer_a_push_option(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = write(tmp_path / "t.csv", "description,priority\nA,Low\nB,High\n")
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    rows = _rows(sheet)
    rows[0]["description"], rows[1]["description"] = "B", "A"
    rows[0]["priority"], rows[1]["priority"] = "High", "Low"
    _write_rows(sheet, rows)
    refused = run_cli("delete", str(sheet), "--yes", env=_env(sandbox))
    assert refused.returncode == 1 and "list the IDs alone" in refused.stderr
    assert "--trust-ids" not in refused.stderr and len(sandbox.tickets()) == 2


def test_relink_with_only_failed_sends_the_relinked_row(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _tickets_sheet(tmp_path / "t.csv")
    opened = sheet.read_text()
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    sheet.write_text(opened.replace("Printer 2 is jammed,High", "Printer 2 is jammed,Low"))
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, relink=True, only_failed=True, **DEFAULTS)
    assert result.counts["updated"] == 1 and _rows(sheet)[2]["syncStatus"] == "updated"


def test_a_rotated_token_reads_the_number_the_sheet_gives(tmp_path: Path) -> None:
    with Sandbox(token=TOKEN) as sb:
        sheet = _tickets_sheet(tmp_path / "t.csv")
        bulksync.push(sheet, token=TOKEN, api_url=sb.url, **DEFAULTS)
        close = write(tmp_path / "close.csv", "ticketNumber,ticketId\n" + "".join(
            f"{r['ticketNumber']},{r['ticketId']}\n" for r in _rows(sheet)))
        bulksync.push(close, token=TOKEN, api_url=sb.url, set={"status": "Closed"})
        with sqlite3.connect(store_path()) as db:  # a list of tickets bulksync never created
            db.execute("DELETE FROM creates")
        sb.token = "rotated-token"
        report, plan = bulksync.plan(close, token="rotated-token", api_url=sb.url, set={"status": "Open"})
        assert any("made with another token" in n for n in report.notes) and plan.counts()["update"] == 4
        result = bulksync.push(close, token="rotated-token", api_url=sb.url, set={"status": "Open"})
        assert result.counts["updated"] == 4


def test_a_third_token_keeps_the_state_of_the_first_two() -> None:
    from bulksync.journal import Journal

    url = "https://api.example.com"
    t1, t2, t3 = (Target.of(url, t) for t in ("one", "two", "three"))
    with Journal(t2) as journal:
        journal.begin_run("sheet", "push")
    with Journal(t3) as journal:
        journal.same_workspace(t1)
        journal.same_workspace(t2)  # the sheet held IDs of both earlier tokens
    keys = {}
    for target in (t1, t2, t3):
        with Journal(target) as journal:
            keys[target.fingerprint] = journal.runs("sheet")
    assert all(len(found) == 1 for found in keys.values()), keys


def test_a_row_replaced_by_another_in_a_stale_window_is_created(tmp_path: Path, sandbox: Sandbox) -> None:
    sheet = _tickets_sheet(tmp_path / "t.csv")
    opened = sheet.read_text()
    bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    sheet.write_text(opened.replace("Printer 1 is jammed,Medium", "Order more paper,Low"))
    result = bulksync.push(sheet, token=TOKEN, api_url=sandbox.url, **DEFAULTS)
    assert result.counts["held"] == 0 and result.summary()["recovered"] == 3 and len(sandbox.tickets()) == 5
