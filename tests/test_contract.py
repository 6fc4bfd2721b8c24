"""The OpenAPI document is the contract: the sandbox answers by it, bulksync asks by it (openapi-core)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from openapi_core import OpenAPI

import bulksync
from bulksync.sandbox import Sandbox
from tests.conftest import CHANNEL, FIELD, FORM, TOKEN, write

SPEC_PATH = Path(bulksync.__file__).parent / "sandbox" / "openapi.json"


@pytest.fixture(scope="module")
def spec() -> OpenAPI:
    # Imported here, not as the module is collected: half a second each test worker would spend.
    from openapi_core import OpenAPI

    return OpenAPI.from_dict(json.loads(SPEC_PATH.read_text()))


class _Request:
    """An httpx.Request as openapi-core reads one."""

    def __init__(self, request: httpx.Request) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        self.host_url = f"{request.url.scheme}://{request.url.netloc.decode()}"
        self.path = request.url.path
        self.method = request.method.lower()
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "")
        self.parameters = RequestParameters(query=ImmutableMultiDict(request.url.params.multi_items()),
                                            header=Headers(dict(request.headers)),
                                            cookie=ImmutableMultiDict())


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        from werkzeug.datastructures import Headers

        self.status_code = response.status_code
        self.headers = Headers(dict(response.headers))
        self.content_type = response.headers.get("content-type", "")
        self.data = response.content


def _check(spec: OpenAPI, response: httpx.Response, *, request_too: bool = True) -> None:
    request = _Request(response.request)
    if request_too:
        spec.validate_request(request)
    spec.validate_response(request, _Response(response))


@pytest.mark.parametrize("shape", ["observed", "documented"])
def test_the_sandbox_answers_by_the_contract(spec: OpenAPI, shape: str) -> None:
    with Sandbox(token=TOKEN, create_shape=shape, rate_limit=(100, 60)) as sb:  # type: ignore[arg-type]
        with httpx.Client(base_url=sb.url + "/", headers={"Authorization": f"Api-Token {TOKEN}"}) as c:
            created = c.post("ticket", json={
                "description": "Printer jams", "requesterChannel": CHANNEL, "formId": FORM,
                "priority": "High", "tags": ["hardware"], "assignee": None,
                "customFields": [{"fieldId": FIELD, "value": "IT"}]})
            assert created.status_code == 201
            _check(spec, created)
            (ticket,) = sb.tickets()
            tid, number = ticket["id"], ticket["ticketNumber"]
            for response in (
                c.patch(f"ticket/{tid}", json={"status": "Closed", "priority": None, "tags": None}),
                c.get(f"ticket/{number}"),
                c.post(f"ticket/external/{tid}", json={"externalId": "ZD-1", "integrationType": "Zendesk",
                                                        "url": "https://x.zendesk.com/agent/tickets/1"}),
                c.post(f"ticket/reply/{tid}", json={"text": "hi", "username": "Ann",
                                                     "channel": ["requester", "responder"]}),
                c.delete(f"ticket/{tid}"),
            ):
                assert response.status_code in (200, 201), response.text
                _check(spec, response)
            # Error answers follow the contract too (the requests themselves break it on purpose).
            for response, status in (
                (c.post("ticket", json={"description": "no form"}), 400),
                (c.get("ticket/abc"), 400),
                (c.get(f"ticket/{number}"), 404),
                (c.patch(f"ticket/{tid}", json={"status": "Closed"}), 404),
                (c.post(f"ticket/reply/{tid}", json={"text": "x", "channel": ["Requester"]}), 400),
                (c.post("ticket", headers={"Authorization": "Api-Token wrong"}, json={}), 401),
            ):
                assert response.status_code == status, response.text
                _check(spec, response, request_too=False)


def test_a_429_follows_the_contract(spec: OpenAPI) -> None:
    with Sandbox(token=TOKEN, rate_limit=(1, 60)) as sb:
        with httpx.Client(base_url=sb.url + "/", headers={"Authorization": f"Api-Token {TOKEN}"}) as c:
            c.get("ticket/1")
            response = c.get("ticket/1")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    _check(spec, response)


class _ContractTransport(httpx.AsyncBaseTransport):
    """Real HTTP, with every request bulksync makes and every answer checked against the contract."""

    def __init__(self, spec: OpenAPI) -> None:
        self.spec = spec
        self.inner = httpx.AsyncHTTPTransport()
        self.checked = 0
        self.errors: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        try:
            _check(self.spec, httpx.Response(response.status_code, headers=response.headers,
                                             content=response.content, request=request))
            self.checked += 1
        except Exception as e:  # collect every violation, report them together
            self.errors.append(f"{request.method} {request.url.path}: {e!r}")
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_bulksyncs_requests_follow_the_contract(spec: OpenAPI, tmp_path: Path) -> None:
    transport = _ContractTransport(spec)
    path = write(tmp_path / "t.csv", f"description,priority,tags,customField_{FIELD},assignee\n"
                                     "Printer jams,High,\"a, b\",IT,U05KQ2M8Z1A\nVPN drops,,,,\n")
    with Sandbox(token=TOKEN) as sb:
        kwargs: dict[str, Any] = {"token": TOKEN, "api_url": sb.url, "transport": transport,
                                  "form_id": FORM, "channel": CHANNEL}
        bulksync.push(path, **kwargs)
        bulksync.push(path, set={"status": "Closed"}, **kwargs)
    assert transport.errors == []
    assert transport.checked == 4
    asyncio.run(transport.aclose())


def test_the_contract_can_fail(spec: OpenAPI) -> None:
    """The checks above would catch a wrong answer or a wrong request."""
    url = "http://127.0.0.1:8900/api/v2/public/ticket"
    good = {"description": "x", "requesterChannel": CHANNEL, "formId": FORM}
    request = httpx.Request("POST", url, json=good, headers={"Authorization": "Api-Token x"})
    with pytest.raises(Exception, match="InvalidData|invalid"):
        _check(spec, httpx.Response(201, json={"oldTicket": {"id": "not-a-uuid"}}, request=request))
    bad = httpx.Request("POST", url, json={**good, "tags": "a,b"}, headers={"Authorization": "Api-Token x"})
    with pytest.raises(Exception, match="RequestBody|body"):
        _check(spec, httpx.Response(201, json={"ticketId": FORM}, request=bad))
