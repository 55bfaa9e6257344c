"""`audit`: the audit log, newest first, with the HTTP API's filters."""

from __future__ import annotations

import argparse
from typing import Any

from multidict import MultiDict

from provider_gateway.commands import CommandError, environment_named
from provider_gateway.errors import InvalidParams
from provider_gateway.gateway import Gateway


async def search(gateway: Gateway, args: argparse.Namespace) -> Any:
    from provider_gateway.audit_events import audit_query, event_json

    environment_id = None
    if args.environment:
        environment_id = (await environment_named(gateway, args.environment)).id
    params = MultiDict[str]()
    for name, value in (
        ("target", args.target),
        ("channel_id", args.channel_id),
        ("starting_at", args.since),
        ("ending_at", args.until),
        ("page_size", str(args.limit)),
    ):
        if value:
            params[name] = value
    for action in args.actions:
        params.add("action", action)
    try:
        query = audit_query(params, environment_id)
    except InvalidParams as error:  # named as the CLI's flags, not the HTTP parameters
        message = str(error)
        for parameter, flag in (
            ("starting_at", "--since"),
            ("ending_at", "--until"),
            ("page_size", "--limit"),
            ("channel_id", "--channel"),
        ):
            message = message.replace(parameter, flag)
        raise CommandError(message) from None
    return [event_json(event) for event in await gateway.audit.search(query)]
