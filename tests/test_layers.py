"""The package's layers: web/ (HTTP plumbing) sits below the providers and app.py on top."""

from __future__ import annotations

import ast
from pathlib import Path

import provider_gateway

PACKAGE = Path(provider_gateway.__file__).parent
ABOVE_WEB = (
    "provider_gateway.app",
    "provider_gateway.cli",
    "provider_gateway.demo",
    "provider_gateway.slack",
    "provider_gateway.ms_teams",
    "provider_gateway.channel_data",
    "provider_gateway.users",
    "provider_gateway.audit_events",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_web_imports_no_provider_and_not_the_composition_root() -> None:
    offending = {
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in (PACKAGE / "web").glob("*.py")
        for name in _imports(path)
        if name.startswith(ABOVE_WEB)
    }
    assert not offending


def test_nothing_below_the_composition_root_imports_it() -> None:
    offending = {
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "app.py" and "demo" not in path.parts and path.name != "cli.py"
        for name in _imports(path)
        if name == "provider_gateway.app"
    }
    assert not offending
