"""CORS, operations endpoints, request ids and the unexpected-error path."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import ALLOWED_ORIGIN
from tests.support import World


async def test_preflight_from_an_allowed_origin(client: TestClient, world: World) -> None:
    response = await client.options(
        f"/v1/objects/projects/p1/channel_data/{world.slack.id}",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": (
                "authorization, content-type, x-knock-user-token, x-knock-client, x-evil"
            ),
        },
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "PUT" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "x-knock-user-token" in allowed
    assert "x-evil" not in allowed


async def test_preflight_from_another_origin_is_refused(client: TestClient, world: World) -> None:
    response = await client.options(
        f"/v1/objects/projects/p1/channel_data/{world.slack.id}",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert response.status == 403
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_errors_carry_cors_headers_so_browsers_can_read_them(
    client: TestClient, world: World
) -> None:
    response = await client.get(
        f"/v1/objects/projects/p1/channel_data/{world.slack.id}", headers={"Origin": ALLOWED_ORIGIN}
    )
    assert response.status == 401
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


async def test_healthz_readyz_and_openapi(client: TestClient) -> None:
    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {
        "database": "ok",
        "redis": "in-process",
        "encryption_keys": "ok",
    }
    spec = await (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert "/v1/providers/slack/{channel_id}/channels" in paths  # the seed spec
    assert "/v1/objects/{collection}/{object_id}/channel_data/{channel_id}" in paths
    assert "/providers/slack/authenticate" in paths
    assert "/providers/ms-teams/authenticate" in paths
    assert {"/v1/audit_events", "/providers/slack/events", "/metrics"} <= set(paths)
    assert "ChannelData" in spec["components"]["schemas"]


async def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-Id": "req-123"})
    assert echoed.headers["X-Request-Id"] == "req-123"
    made = await client.get("/healthz")
    assert len(made.headers["X-Request-Id"]) == 32


async def test_an_unexpected_failure_is_a_500_in_knocks_body_without_details(
    client: TestClient, world: World
) -> None:
    """A real fault (the table vanished under the service), not a patched one."""
    from sqlalchemy import text

    from provider_gateway.web.appkeys import GATEWAY

    async with client.app[GATEWAY].engine.begin() as connection:
        await connection.execute(text("ALTER TABLE channel_data RENAME TO channel_data_gone"))
    try:
        response = await client.get(
            f"/v1/objects/projects/p1/channel_data/{world.slack.id}", headers=world.secret_headers()
        )
        assert response.status == 500
        body = await response.json()
        assert body == {
            "code": "internal_error",
            "message": "An unexpected error occurred.",
            "status": 500,
            "type": "api_error",
        }
    finally:
        async with client.app[GATEWAY].engine.begin() as connection:
            await connection.execute(text("ALTER TABLE channel_data_gone RENAME TO channel_data"))


def test_the_openapi_document_is_valid() -> None:
    from openapi_spec_validator import validate

    from provider_gateway.web.ops import openapi_document

    validate(openapi_document())  # type: ignore[arg-type]
    validate(openapi_document("https://gateway.example.com"))  # type: ignore[arg-type]


async def test_the_openapi_document_is_this_gateways(
    aiohttp_client: Any, make_settings: Any
) -> None:
    from provider_gateway.app import create_app
    from tests.support import serve

    public = "https://gateway.example.com"
    client = await serve(aiohttp_client, create_app(make_settings(GATEWAY_PUBLIC_URL=public)))
    text = await (await client.get("/openapi.json")).text()
    spec = json.loads(text)
    assert spec["servers"] == [{"url": public}]
    assert spec["info"]["license"]["name"] == "Apache-2.0"
    assert "Knock" not in spec["info"].get("contact", {}).get("name", "")
    assert "x-struct" not in text
    assert "x-validate" not in text
    assert "Elixir." not in text


async def test_a_request_the_http_parser_refuses_is_one_info_line_not_an_error(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Anyone can send an 8 KiB header; it must not write a traceback to the error log."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n")
    await writer.drain()
    with caplog.at_level(logging.DEBUG):
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
        for _ in range(50):  # aiohttp logs as it answers; let it finish
            if any(r.name == "aiohttp.server" for r in caplog.records):
                break
            await asyncio.sleep(0.02)
    writer.close()
    assert status_line.split()[1] == b"400"
    server_records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [(r.levelname, r.getMessage()) for r in server_records] == [
        ("INFO", "refused a malformed HTTP request (LineTooLong)")
    ]
    assert not [r for r in server_records if r.exc_info or r.exc_text]
