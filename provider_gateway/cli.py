"""`provider-gateway` command line (CONTRACT §1, §4): JSON out, one-line errors, non-zero exits.

Only argparse is imported up front: `--help` must answer at once, and each command loads
just what it uses (the HTTP stack for `serve`, the database for the rest, Alembic only when
the schema is behind)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from provider_gateway import __version__

if TYPE_CHECKING:
    from provider_gateway.config import Settings
    from provider_gateway.gateway import Gateway

log = logging.getLogger("provider_gateway")
# rotate-encryption-key's batch (storage.rotation.BATCH_SIZE, not imported: --help stays fast)
ROTATION_BATCH_SIZE = 500

# (command, action) -> "module:function" under provider_gateway.commands, imported on use.
HANDLERS = {
    ("environments", "create"): "environments:create",
    ("environments", "list"): "environments:list_all",
    ("keys", "create"): "keys:create",
    ("keys", "list"): "keys:list_pairs",
    ("keys", "revoke"): "keys:revoke",
    ("channels", "add"): "channels:add",
    ("channels", "list"): "channels:list_all",
    ("channels", "show"): "channels:show",
    ("channels", "update"): "channels:update",
    ("channels", "remove"): "channels:remove",
    ("tenants", "list"): "tenants:list_connected",
    ("audit", None): "audit:search",
}
# Commands that only read: on SQLite they never create a database (a missing one means the
# command runs elsewhere than `serve` does, or with another GATEWAY_DATA_DIR).
READ_ONLY = {
    ("environments", "list"),
    ("keys", "list"),
    ("channels", "list"),
    ("channels", "show"),
    ("tenants", "list"),
    ("audit", None),
}


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless it says so itself."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "default" in text
            or not action.option_strings
            or action.required
            or action.default in (None, False, argparse.SUPPRESS)
        ):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        kwargs.setdefault("allow_abbrev", False)  # flags are named in errors as typed
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _port(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port (1-65535)")
    return int(raw)


def _group(commands: Any, name: str, help_text: str) -> Any:
    """A command with actions (`keys create`); given without one, it prints its help."""
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(group=parser)
    return parser.add_subparsers(dest="action", parser_class=_Parser, metavar="ACTION")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="provider-gateway",
        description="A self-hosted, Knock-compatible Providers API for Slack and Microsoft "
        "Teams. Configured by GATEWAY_* environment variables; commands print JSON.",
    )
    parser.add_argument("--version", action="version", version=f"provider-gateway {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_port, default=8080, help="port to listen on")
    demo = commands.add_parser(
        "demo",
        help="the service with simulated Slack and Microsoft, a page at / and throwaway keys",
    )
    demo.add_argument("--port", type=_port, default=8080, help="port to listen on")
    commands.add_parser("migrate", help="create or upgrade the database schema")
    doctor = commands.add_parser(
        "doctor", help="check the configuration, the stored data and each app's credentials"
    )
    doctor.add_argument(
        "--json", action="store_true", help="print a JSON list (default: one line per check)"
    )

    environments = _group(commands, "environments", "manage environments")
    environments.add_parser("create", help="create an environment").add_argument(
        "name", help="e.g. production"
    )
    environments.add_parser("list", help="list environments")

    keys = _group(commands, "keys", "manage API key pairs (pk_, sk_ and a signing key)")
    for action, help_text in (
        ("create", "issue a key pair (shown once)"),
        ("list", "list key pairs (the sk_ by its last four characters)"),
    ):
        keys.add_parser(action, help=help_text).add_argument(
            "--environment", required=True, help="the environment's name"
        )
    keys.add_parser("revoke", help="revoke a key pair: both keys and its signing key").add_argument(
        "id", help="the pair's id (see: keys list)"
    )

    _channel_commands(_group(commands, "channels", "manage Slack and Teams channels"))

    tenants = _group(commands, "tenants", "see who is connected")
    tenants.add_parser("list", help="tenants connected through a channel").add_argument(
        "--channel", required=True, help="the channel's id"
    )

    rotate = commands.add_parser(
        "rotate-encryption-key",
        help="re-encrypt every secret under the newest key (in batches, while the service "
        "runs; Ctrl+C stops it, running it again resumes)",
    )
    rotate.add_argument(
        "--batch-size",
        type=_positive_int,
        default=ROTATION_BATCH_SIZE,
        help="rows re-encrypted per transaction",
    )

    audit = commands.add_parser("audit", help="show the audit log, newest first")
    audit.add_argument("--environment", help="only this environment (default: all)")
    audit.add_argument("--target", help="e.g. objects/$tenants/acme or users/u1 (default: all)")
    audit.add_argument("--channel", dest="channel_id", help="a channel's id (default: all)")
    audit.add_argument(
        "--action",
        dest="actions",
        action="append",
        default=[],
        help="repeatable, e.g. install (default: all)",
    )
    audit.add_argument("--since", help="ISO 8601 timestamp (default: the beginning)")
    audit.add_argument("--until", help="ISO 8601 timestamp (default: now)")
    audit.add_argument("--limit", type=int, default=50, help="at most this many events")
    return parser


def _channel_commands(channels: Any) -> None:
    add = channels.add_parser("add", help="register a Slack app or an Entra app")
    add.add_argument("provider", choices=["slack", "ms-teams"], help="the app's provider")
    add.add_argument("--client-id", required=True, help="Slack Client ID, or the Entra app's GUID")
    add.add_argument("--client-secret", help="the secret, or - to read stdin (default: none)")
    add.add_argument(
        "--client-certificate",
        help="ms-teams, instead of a secret: a PEM file with the private key and certificate "
        "(default: none)",
    )
    add.add_argument("--app-id", help="Slack App ID, checked at install (default: not checked)")
    add.add_argument(
        "--signing-secret",
        help="slack: the app's signing secret for the Events API, or - (default: no events)",
    )
    add.add_argument("--id", dest="channel_id", help="the channel id (default: a new UUID)")
    add.add_argument(
        "--environment", help="serve only this environment (default: every environment)"
    )
    channels.add_parser("list", help="list channels (never their secrets)")
    channels.add_parser("show", help="one channel (never its secrets)").add_argument(
        "id", help="the channel's id"
    )
    update = channels.add_parser("update", help="change a channel's app credentials")
    update.add_argument("id", help="the channel's id")
    update.add_argument("--client-id", help="a new client id (default: unchanged)")
    update.add_argument(
        "--client-secret", help="a new secret, or - to read stdin (default: unchanged)"
    )
    update.add_argument(
        "--client-certificate", help="ms-teams: a new PEM file instead (default: unchanged)"
    )
    update.add_argument("--app-id", help="a new App ID, '' to clear it (default: unchanged)")
    update.add_argument(
        "--signing-secret", help="slack: a new signing secret, or - (default: unchanged)"
    )
    remove = channels.add_parser(
        "remove", help="remove a channel; refused while tenants are connected"
    )
    remove.add_argument("id", help="the channel's id")
    remove.add_argument(
        "--force",
        action="store_true",
        help="remove it even with tenants connected, and their channel data (default: refuse)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if getattr(args, "group", None) is not None and args.action is None:
        args.group.print_help()
        return 2
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every failure is one line; see `_describe_failure`
        return _fail(_describe_failure(exc))


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":  # builds its own settings: nothing of the environment's
        from provider_gateway.demo.runner import run_demo

        return run_demo(args.port)
    from provider_gateway.config import load_settings
    from provider_gateway.web.logs import configure_logging

    settings = load_settings()
    configure_logging(settings)
    if args.command == "serve":
        return _serve(settings, args.host, args.port)
    if args.command == "doctor":
        from provider_gateway.doctor import run_doctor

        return run_doctor(settings, as_json=args.json)
    result = asyncio.run(_run(settings, args))
    print(json.dumps(result, indent=2))
    return 0


def _fail(message: str) -> int:
    print(f"provider-gateway: error: {message}", file=sys.stderr)
    return 1


def _describe_failure(exc: Exception) -> str:
    from provider_gateway.failures import describe_failure

    message = describe_failure(exc)
    if message is None:  # a bug: still one line for the operator, details at debug level
        log.debug("unexpected error", exc_info=exc)
        text = str(exc).strip().splitlines()
        message = (
            f"unexpected {type(exc).__name__}: {text[0] if text else ''} "
            "(GATEWAY_LOG_LEVEL=debug shows details)"
        )
    return message


def _serve(settings: Settings, host: str, port: int) -> int:
    from aiohttp import web

    from provider_gateway.app import RUNNER_OPTIONS, create_app
    from provider_gateway.failures import database_errors
    from provider_gateway.serving import listening_socket, log_startup_summary, warm_imports

    sock = listening_socket(host, port)  # a taken port fails here, before any start-up work
    if settings.public_url is None:
        shown_host = "localhost" if host in {"0.0.0.0", "::"} else host  # noqa: S104
        settings = dataclasses.replace(settings, public_url=f"http://{shown_host}:{port}")
    app = create_app(settings)
    app.on_startup.append(log_startup_summary)

    def ready(_aiohttp_banner: str) -> None:
        log.info("ready: listening on http://%s:%s", host, port)
        warm_imports()

    with sock, database_errors(settings):  # closed also when start-up fails before serving
        web.run_app(app, sock=sock, **RUNNER_OPTIONS, print=ready, shutdown_timeout=10.0)
    return 0


async def _run(settings: Settings, args: argparse.Namespace) -> Any:
    from provider_gateway.failures import database_errors
    from provider_gateway.gateway import open_gateway

    command = (args.command, getattr(args, "action", None))
    if args.command == "migrate":
        from provider_gateway.storage.database import migrate

        with database_errors(settings):
            async with open_gateway(settings, run_migrations=False) as gateway:
                revision = await migrate(gateway.engine, gateway.key_ring)
        return {"migrated": True, "revision": revision}
    if command in READ_ONLY:
        from provider_gateway.commands import require_existing_database

        require_existing_database(settings)
    if args.command == "rotate-encryption-key":
        handler = _rotate
    else:
        module, function = HANDLERS[command].split(":")
        handler = getattr(importlib.import_module(f"provider_gateway.commands.{module}"), function)
    with database_errors(settings):
        async with open_gateway(settings, run_migrations=settings.auto_migrate) as gateway:
            return await handler(gateway, args)


async def _rotate(gateway: Gateway, args: argparse.Namespace) -> Any:
    from provider_gateway.commands import CLI_ACTOR
    from provider_gateway.progress import ProgressLine
    from provider_gateway.storage.rotation import rotate_encryption_key

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
