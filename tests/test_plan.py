"""Planning: rows → the exact requests the API wants."""

from __future__ import annotations

from pathlib import Path

from bulksync.columns import Defaults, select_rows
from bulksync.plan import Operation, plan_rows
from bulksync.sheets.read import read_table
from tests.conftest import CHANNEL, FIELD, FORM, write

TID = "9b2d7e41-5c3a-4f86-8e1b-0a7d6c5f4e32"
OTHER_FIELD = "d3c9f1a2-7b64-4e08-9a5d-2c6e8b1f3a70"


def test_payloads_are_exactly_what_the_api_wants(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv",
                 f"ticketId,description,priority,assignee,tags,customField_{FIELD},"
                 f"customField_{OTHER_FIELD},notes\n"
                 f",Printer jams,High,,\"hardware, floor 3\",IT,,mine\n"
                 f"{TID},,Low,U05KQ2M8Z1A,,,Gold,\n"
                 f"{TID.replace('9', '8')},,,,,,,only my note\n")
    rows = select_rows(read_table(path), Defaults(form_id=FORM, channel=CHANNEL))
    ops = plan_rows(rows).operations
    assert ops == (
        Operation(2, "create", None, {
            "description": "Printer jams", "priority": "High", "requesterChannel": CHANNEL,
            "tags": ["hardware", "floor 3"], "formId": FORM,
            "customFields": [{"fieldId": FIELD, "value": "IT"}]}),
        Operation(3, "update", TID, {
            "priority": "Low", "assignee": "U05KQ2M8Z1A",
            "customFields": [{"fieldId": OTHER_FIELD, "value": "Gold"}]}),
        Operation(4, "skip", TID.replace("9", "8"), {}),
    )
    assert (ops[0].method, ops[0].path) == ("POST", "/ticket")
    assert (ops[1].method, ops[1].path) == ("PATCH", f"/ticket/{TID}")


def test_excluded_rows_are_not_planned(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "description\na\nb\nc\n")
    rows = select_rows(read_table(path), Defaults(form_id=FORM, channel=CHANNEL))
    assert [op.row_number for op in plan_rows(rows, exclude=frozenset({3})).operations] == [2, 4]


def test_rows_sending_the_same_body_share_one_payload(tmp_path: Path) -> None:
    ids = [TID, TID.replace("9", "8"), TID.replace("9", "7")]
    path = write(tmp_path / "t.csv", "ticketId,reason\n" + "".join(f"{t},dup\n" for t in ids))
    ops = plan_rows(select_rows(read_table(path), Defaults(set={"status": "Closed"}))).operations
    assert [(op.kind, op.ticket_id, op.payload) for op in ops] == [
        ("update", t, {"status": "Closed"}) for t in ids]
    assert ops[0].payload is ops[1].payload is ops[2].payload  # one body, made once
    # Rows whose cells differ get their own payloads, each right.
    path = write(tmp_path / "u.csv", "ticketId,priority\n" + "".join(
        f"{t},{p}\n" for t, p in zip(ids, ["High", "High", "Low"], strict=True)))
    ops = plan_rows(select_rows(read_table(path), Defaults(set={"status": "Closed"}))).operations
    assert [op.payload for op in ops] == [{"priority": p, "status": "Closed"} for p in ("High", "High", "Low")]
    assert ops[0].payload is not ops[1].payload


def test_plan_is_exactly_what_push_sends_on_a_migration_with_links_and_replies(tmp_path: Path) -> None:
    """Issue 15: every request a push sends is in the plan first, counted the same way."""
    import json
    import shutil

    import bulksync
    from bulksync.resources import bundled
    from bulksync.sandbox import Sandbox
    from tests.conftest import TOKEN, run_cli

    for name in ("zendesk-export.csv", "zendesk-comments.csv", "users.csv", "bulksync.toml"):
        shutil.copy(bundled("sample_data") / name, tmp_path / name)
    sheet = tmp_path / "zendesk-export.csv"
    args = ["--mapping", "zendesk", "--users", str(tmp_path / "users.csv"),
            "--comments", str(tmp_path / "zendesk-comments.csv")]
    with Sandbox(token=TOKEN) as sb:
        env = {"SUPTASK_API_URL": sb.url, "SUPTASK_API_TOKEN": TOKEN}
        planned = json.loads(run_cli("plan", str(sheet), "--json", *args, env=env).stdout)
        totals: set[int] = set()
        result = bulksync.push(sheet, token=TOKEN, api_url=sb.url, mapping="zendesk",
                               users=tmp_path / "users.csv", comments=tmp_path / "zendesk-comments.csv",
                               on_progress=lambda done, total, note: totals.add(total))
        sent = [(r["method"], r["path"].removeprefix("/api/v2/public"), r["body"]) for r in sb.requests()]
    assert result.ok, result.summary()
    table = read_table(sheet)
    where = table.position("ticketId")
    assert where is not None
    ids = {int(row): t for row, t in table.frame[where].items()}
    ops = [op for op in planned["operations"] if op["method"]]
    expected = []
    for op in ops:
        path = op["path"]
        for row, ticket_id in ids.items():
            path = path.replace(f"{{ticket of row {row}}}", ticket_id)
        expected.append((op["method"], path, op["body"]))
    assert planned["requests"] == len(ops) == len(sent) == 14  # 4 creates, 4 links, 6 replies
    assert sorted(map(json.dumps, sent)) == sorted(map(json.dumps, expected))
    assert totals == {14}  # the bar's total is known from the start


def test_the_delete_plan_is_what_delete_sends(tmp_path: Path) -> None:
    import bulksync
    from bulksync.sandbox import Sandbox
    from tests.conftest import CHANNEL, FORM, TOKEN, write

    sheet = write(tmp_path / "t.csv", "description\na\nb\nc\n")
    with Sandbox(token=TOKEN) as sb:
        bulksync.push(sheet, token=TOKEN, api_url=sb.url, form_id=FORM, channel=CHANNEL)
        planned: list[Operation] = []
        before = len(sb.requests())
        bulksync.delete(sheet, token=TOKEN, api_url=sb.url, confirm=lambda ops: bool(planned.extend(ops)) or True)
        sent = [(r["method"], r["path"].removeprefix("/api/v2/public")) for r in sb.requests()[before:]]
    assert sorted(sent) == sorted((op.method, op.path) for op in planned) and len(sent) == 3
