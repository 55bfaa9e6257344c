"""`provider-gateway` command line (CONTRACT §1): JSON out, one-line errors, non-zero exits."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from multidict import MultiDict
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from provider_gateway.audit_events import audit_query, event_json
from provider_gateway.config import ConfigError, Secret, Settings, load_settings
from provider_gateway.crypto import UndecryptableError
from provider_gateway.errors import GatewayError, InvalidParams
from provider_gateway.gateway import Gateway, open_gateway
from provider_gateway.models import Channel, Provider
from provider_gateway.ms_teams.credentials import certificate_credential
from provider_gateway.progress import ProgressLine
from provider_gateway.storage.database import migrate
from provider_gateway.storage.rotation import BATCH_SIZE, rotate_encryption_key
from provider_gateway.web.logs import configure_logging

log = logging.getLogger("provider_gateway")
CLI_ACTOR = "cli"
_ENVIRONMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class CommandError(Exception):
    """Bad input to a command; printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="provider-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)

    demo = commands.add_parser(
        "demo",
        help="the service with simulated Slack and Microsoft, a page at / and throwaway keys",
    )
    demo.add_argument("--port", type=int, default=8080)

    commands.add_parser("migrate", help="create or upgrade the database schema")

    environments = commands.add_parser("environments", help="manage environments")
    env_commands = environments.add_subparsers(dest="action", required=True, parser_class=_Parser)
    env_create = env_commands.add_parser("create", help="create an environment")
    env_create.add_argument("name")

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="action", required=True, parser_class=_Parser)
    key_create = key_commands.add_parser("create", help="issue pk_/sk_ keys and a signing key")
    key_create.add_argument("--environment", required=True)

    channels = commands.add_parser("channels", help="manage Slack and Teams channels")
    channel_commands = channels.add_subparsers(dest="action", required=True, parser_class=_Parser)
    add = channel_commands.add_parser("add", help="register a Slack app or an Entra app")
    add.add_argument("provider", choices=["slack", "ms-teams"])
    add.add_argument("--client-id", required=True)
    add.add_argument("--client-secret", help="the secret, or - to read stdin")
    add.add_argument(
        "--client-certificate",
        help="ms-teams only, instead of a secret: a PEM file with the private key and certificate",
    )
    add.add_argument("--app-id")
    add.add_argument(
        "--signing-secret", help="slack only: the app's signing secret, for the Events API"
    )
    add.add_argument("--id", dest="channel_id")
    add.add_argument("--environment")
    channel_commands.add_parser("list", help="list channels (never their secrets)")

    rotate = commands.add_parser(
        "rotate-encryption-key",
        help="re-encrypt every secret under the newest key (in batches, while the service "
        "runs; Ctrl+C stops it, running it again resumes)",
    )
    rotate.add_argument(
        "--batch-size", type=_positive_int, default=BATCH_SIZE, help="rows per transaction"
    )

    audit = commands.add_parser("audit", help="show the audit log, newest first")
    audit.add_argument("--environment", help="only this environment")
    audit.add_argument("--target", help="e.g. objects/$tenants/acme or users/u1")
    audit.add_argument("--channel", dest="channel_id")
    audit.add_argument(
        "--action", dest="actions", action="append", default=[], help="repeatable, e.g. install"
    )
    audit.add_argument("--since", help="ISO 8601 timestamp")
    audit.add_argument("--until", help="ISO 8601 timestamp")
    audit.add_argument("--limit", type=int, default=50)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":  # builds its own settings: nothing of the environment's
            from provider_gateway.demo.runner import PortInUse, run_demo

            try:
                return run_demo(args.port)
            except PortInUse as error:
                raise CommandError(str(error)) from None
        settings = load_settings()
        configure_logging(settings)
        if args.command == "serve":
            return _serve(settings, args.host, args.port)
        result = asyncio.run(_run(settings, args))
    except KeyboardInterrupt:
        return 130
    except (ConfigError, CommandError, GatewayError, UndecryptableError) as exc:
        return _fail(str(exc))
    except DBAPIError as exc:
        return _fail(f"database error: {_first_line(exc.orig)}")
    except SQLAlchemyError as exc:
        return _fail(f"database error: {type(exc).__name__}")
    except OSError as exc:
        return _fail(f"cannot reach a dependency: {_first_line(exc)}")
    except Exception as exc:  # a bug: still one line for the operator, details at debug level
        log.debug("unexpected error", exc_info=True)
        return _fail(
            f"unexpected {type(exc).__name__}: {_first_line(exc)} "
            "(GATEWAY_LOG_LEVEL=debug shows details)"
        )
    print(json.dumps(result, indent=2))
    return 0


def _fail(message: str) -> int:
    print(f"provider-gateway: error: {message}", file=sys.stderr)
    return 1


def _first_line(error: object) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _serve(settings: Settings, host: str, port: int) -> int:
    from aiohttp import web

    from provider_gateway.app import RUNNER_OPTIONS, create_app

    if settings.public_url is None:
        shown_host = "localhost" if host in {"0.0.0.0", "::"} else host  # noqa: S104
        settings = dataclasses.replace(settings, public_url=f"http://{shown_host}:{port}")
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        **RUNNER_OPTIONS,
        print=lambda message: log.info(" ".join(message.split()).strip("= ")),
        shutdown_timeout=10.0,
    )
    return 0


async def _run(settings: Settings, args: argparse.Namespace) -> Any:
    handlers: dict[
        tuple[str, str | None], Callable[[Gateway, argparse.Namespace], Awaitable[Any]]
    ] = {
        ("environments", "create"): _create_environment,
        ("keys", "create"): _create_keys,
        ("channels", "add"): _add_channel,
        ("channels", "list"): _list_channels,
        ("rotate-encryption-key", None): _rotate,
        ("audit", None): _audit,
    }
    if args.command == "migrate":
        async with open_gateway(settings, run_migrations=False) as gateway:
            revision = await migrate(gateway.engine, gateway.key_ring)
        return {"migrated": True, "revision": revision}
    handler = handlers[(args.command, getattr(args, "action", None))]
    async with open_gateway(settings, run_migrations=settings.auto_migrate) as gateway:
        return await handler(gateway, args)


async def _create_environment(gateway: Gateway, args: argparse.Namespace) -> Any:
    if not _ENVIRONMENT_NAME.match(args.name):
        raise CommandError("an environment name is letters, digits, '.', '_' or '-' (1-100)")
    environment = await gateway.environments.create(args.name, actor=CLI_ACTOR)
    return {
        "id": environment.id,
        "name": environment.name,
        "created_at": environment.created_at.isoformat(),
    }


async def _create_keys(gateway: Gateway, args: argparse.Namespace) -> Any:
    environment = await gateway.environments.by_name(args.environment)
    if environment is None:
        raise CommandError(f"no environment named {args.environment!r}")
    issued = await gateway.credentials.issue(environment, actor=CLI_ACTOR)
    return {
        "environment": environment.name,
        "public_key": issued.public_key,
        "secret_key": issued.secret_key,
        "signing_key": issued.signing_key_pem,
    }


async def _add_channel(gateway: Gateway, args: argparse.Namespace) -> Any:
    secret = _client_credential(args)
    if not args.client_id.strip():
        raise CommandError("--client-id must not be empty")
    if args.channel_id is not None:
        try:
            args.channel_id = str(uuid.UUID(args.channel_id))
        except ValueError:
            raise CommandError(f"--id {args.channel_id!r} is not a UUID") from None
    environment_id = None
    if args.environment is not None:
        environment = await gateway.environments.by_name(args.environment)
        if environment is None:
            raise CommandError(f"no environment named {args.environment!r}")
        environment_id = environment.id
    provider: Provider = args.provider
    if args.signing_secret is not None and provider != "slack":
        raise CommandError("--signing-secret is for slack channels")
    channel = await gateway.channels.add(
        provider=provider,
        client_id=args.client_id.strip(),
        client_secret=Secret(secret),
        app_id=args.app_id,
        channel_id=args.channel_id,
        environment_id=environment_id,
        signing_secret=Secret(args.signing_secret) if args.signing_secret else None,
        actor=CLI_ACTOR,
    )
    return await _describe_channel(gateway, channel)


def _client_credential(args: argparse.Namespace) -> str:
    if (args.client_secret is None) == (args.client_certificate is None):
        raise CommandError("give exactly one of --client-secret and --client-certificate")
    if args.client_certificate is not None:
        if args.provider != "ms-teams":
            raise CommandError("--client-certificate is for ms-teams channels")
        try:
            pem = Path(args.client_certificate).read_text(encoding="ascii")
            credential = certificate_credential(pem)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise CommandError(f"--client-certificate: {_first_line(exc)}") from None
        if credential is None:
            raise CommandError("--client-certificate: not a PEM file")
        return pem
    read_stdin = args.client_secret == "-"  # noqa: S105 - "-" means "read the secret from stdin"
    secret: str = sys.stdin.readline().strip() if read_stdin else args.client_secret
    if not secret:
        raise CommandError("--client-secret must not be empty")
    return secret


async def _list_channels(gateway: Gateway, _args: argparse.Namespace) -> Any:
    return [await _describe_channel(gateway, channel) for channel in await gateway.channels.all()]


async def _describe_channel(gateway: Gateway, channel: Channel) -> dict[str, Any]:
    environment = (
        await gateway.environments.by_id(channel.environment_id) if channel.environment_id else None
    )
    return {
        "id": channel.id,
        "provider": channel.provider,
        "client_id": channel.client_id,
        "app_id": channel.app_id,
        "events": channel.signing_secret is not None,
        "environment": environment.name if environment else None,
        "created_at": channel.created_at.isoformat(),
    }


async def _rotate(gateway: Gateway, args: argparse.Namespace) -> Any:
    line = ProgressLine(sys.stderr, "rows")
    try:
        report = await rotate_encryption_key(
            gateway.engine,
            gateway.key_ring,
            actor=CLI_ACTOR,
            batch_size=args.batch_size,
            progress=lambda p: line.update(p.done, p.total, p.elapsed),
        )
    except asyncio.CancelledError:  # Ctrl+C: the batch in flight rolls back, the rest stays
        line.finish()
        print(
            f"provider-gateway: interrupted after {line.done:,} of {line.total:,} rows; "
            "run rotate-encryption-key again to resume",
            file=sys.stderr,
        )
        raise
    line.finish()
    return dataclasses.asdict(report)


def _positive_int(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a positive whole number")
    return int(raw)


async def _audit(gateway: Gateway, args: argparse.Namespace) -> Any:
    environment_id = None
    if args.environment:
        environment = await gateway.environments.by_name(args.environment)
        if environment is None:
            raise CommandError(f"no environment named {args.environment!r}")
        environment_id = environment.id
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
    except InvalidParams as error:
        raise CommandError(
            str(error).replace("starting_at", "--since").replace("ending_at", "--until")
        ) from None
    return [event_json(event) for event in await gateway.audit.search(query)]
