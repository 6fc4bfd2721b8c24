"""GET /ticket/{ticketNumber} answers, read tolerantly (issue 17): every shape any source names."""

from __future__ import annotations

import pytest

from bulksync.api import read_ticket

ID = "3f2b6c1e-8d4a-4f7b-9c2e-1a5d6e7f8a9b"
FIELD = "0b8e5a7c-2f41-4d9a-b6c3-8e1f7a2d4c95"

PLAIN = {"id": ID, "ticketNumber": 42, "status": "Waiting for customer", "priority": "High",
         "assignee": None, "requesterId": "U073PBJPHGW", "tags": ["sso", "vip"],
         "description": "SSO loops\nsince 9:00", "customFields": [{"fieldId": FIELD, "value": "IT"}],
         "createdAt": "2026-11-30T09:15:00Z"}
WEBHOOK = {"ticket": {"id": ID.upper(), "ticketNumber": "42", "teamTicketId": "team-42",
                      "status": "WAITING_FOR_CUSTOMER", "assignee": "UNASSIGNED", "requesterId": "U073PBJPHGW",
                      "tags": ["sso", "vip"], "createdAt": 1764494100, "archived": False,
                      "formValues": [{"fieldName": FIELD, "value": "IT"},
                                     {"fieldName": "Product area", "value": ["Billing", "SSO"]}]}}


def test_the_plain_shape() -> None:
    t = read_ticket(PLAIN)
    assert t is not None and (t.ticket_id, t.ticket_number) == (ID, 42)
    assert t.cells == {"status": "Waiting for customer", "priority": "High", "assignee": "",
                       "requester": "U073PBJPHGW",
                       "tags": "sso,vip", "description": "SSO loops\nsince 9:00",
                       f"customField_{FIELD}": "IT"}


def test_the_webhook_shape() -> None:
    t = read_ticket(WEBHOOK)
    assert t is not None and (t.ticket_id, t.ticket_number) == (ID, 42)
    assert t.cells == {"status": "Waiting for customer", "assignee": "", "requester": "U073PBJPHGW",
                       "tags": "sso,vip", f"customField_{FIELD}": "IT"}
    assert "description" not in t.cells  # unknown whether GET has it: absent is not "emptied"
    assert "Product area" not in t.cells  # a form field known by name only: no column to put it in


@pytest.mark.parametrize("value, status", [("OPEN", "Open"), ("in-progress", "In-progress"),
                                           ("IN_PROGRESS", "In-progress"), ("ON HOLD", "On-hold"),
                                           ("Needs QA", "Needs QA"), ("NEEDS_QA", "NEEDS_QA")])
def test_statuses_in_any_case(value: str, status: str) -> None:
    t = read_ticket({"id": ID, "status": value})
    assert t is not None and t.cells["status"] == status


def test_what_is_not_a_ticket_and_what_a_hostile_server_sends() -> None:
    assert read_ticket(["not", "a", "ticket"]) is None and read_ticket("x") is None
    t = read_ticket({"id": "not-a-uuid", "ticketNumber": True, "status": "\x1b]0;PWNED\x07Open",
                     "priority": {"nested": 1}, "description": "line\x1b[2J one\nline two"})
    assert t is not None and (t.ticket_id, t.ticket_number) == (None, None)
    assert t.cells["status"] == "]0;PWNEDOpen" and "priority" not in t.cells  # no control character
    assert t.cells["description"] == "line[2J one\nline two"  # line breaks kept, nothing else added


def test_a_description_is_kept_exactly_spaces_tabs_and_length() -> None:
    text = "Name:  Alice\tBob\n" + "x" * 12_000 + "\nEND"
    t = read_ticket({"id": ID, "description": text}, secrets=("secret-token-123",))
    assert t is not None and t.cells["description"] == text
    leaked = read_ticket({"id": ID, "description": "token secret-token-123 here"}, secrets=("secret-token-123",))
    assert leaked is not None and leaked.cells["description"] == "token [token] here"
