"""deploy/, the Dockerfile and the README stay true to the code (no Docker engine here, so
the files themselves are checked)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from provider_gateway.cli import build_parser
from provider_gateway.config import load_settings
from tests.kustomize import OVERLAYS, gateway_container, one, render

ROOT = Path(__file__).resolve().parent.parent
SETTING = re.compile(r"\b((?:GATEWAY|SLACK|MS)_[A-Z_]+)\b")


def settings_read_by_the_code() -> set[str]:
    source = (ROOT / "provider_gateway" / "config.py").read_text()
    return set(re.findall(r'reader\.get\(\s*"([A-Z_]+)"', source))


def test_the_code_reads_every_contract_variable() -> None:
    contract = {
        "GATEWAY_DATABASE_URL",
        "GATEWAY_REDIS_URL",
        "GATEWAY_DATA_DIR",
        "GATEWAY_ENCRYPTION_KEYS",
        "GATEWAY_PUBLIC_URL",
        "GATEWAY_ALLOWED_ORIGINS",
        "GATEWAY_CA_BUNDLE",
        "SLACK_API_URL",
        "MS_LOGIN_URL",
        "MS_GRAPH_URL",
        "GATEWAY_CACHE_TTL_SECONDS",
        "GATEWAY_LOG_LEVEL",
        "GATEWAY_LOG_FORMAT",
        "GATEWAY_CHANNELS_FILE",
        "GATEWAY_AUTO_MIGRATE",
    }
    assert contract <= settings_read_by_the_code()


def test_env_example_lists_exactly_the_settings_and_they_parse() -> None:
    lines = (ROOT / "deploy" / "env.example").read_text().splitlines()
    assignments = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert set(assignments) == settings_read_by_the_code()
    load_settings({k: v for k, v in assignments.items() if v and k != "GATEWAY_CA_BUNDLE"})


def test_readme_configuration_table_matches_the_code() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)`", table, re.MULTILINE))
    documented |= set(re.findall(r"^\| `[A-Z_]+` / `([A-Z_]+)`", table, re.MULTILINE))
    assert documented == settings_read_by_the_code()


def test_compose_and_kubernetes_use_only_real_settings() -> None:
    known = settings_read_by_the_code()
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    used = set(compose["services"]["gateway"]["environment"])
    for overlay in OVERLAYS:
        objects = render(overlay)
        for source in gateway_container(objects)["envFrom"]:
            kind, reference = (
                ("ConfigMap", "configMapRef")
                if "configMapRef" in source
                else (
                    "Secret",
                    "secretRef",
                )
            )
            found = one(objects, kind, source[reference]["name"])
            used |= set(found.get("data") or found.get("stringData") or {})
        channels = one(objects, "Secret", "provider-gateway-channels")
        tomllib.loads(channels["stringData"]["channels.toml"])  # the example file is valid TOML
    assert used <= known, used - known


def test_dockerfile_runs_serve_as_non_root_and_copies_what_exists() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), path
    assert 'ENTRYPOINT ["provider-gateway"]' in dockerfile
    command = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert command is not None
    arguments = yaml.safe_load(command.group(1))
    assert arguments[:3] == ["serve", "--host", "0.0.0.0"]
    build_parser().parse_args(arguments)  # the CLI accepts exactly this command
    assert "USER gateway" in dockerfile
    assert "/healthz" in dockerfile.split("HEALTHCHECK", 1)[1]
    assert "VOLUME" in dockerfile
    final_stage = dockerfile.rsplit("FROM ", 1)[1]
    assert "gcc" not in final_stage
    assert "build-essential" not in final_stage


def test_every_file_the_package_reads_is_packaged() -> None:
    """The image installs the package non-editable: a page, spec or migration template
    missing from package-data would only fail there (pip install -e hides it)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["provider_gateway"]
    package = ROOT / "provider_gateway"
    data_files = [
        path.relative_to(package)
        for path in package.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"}
    ]
    assert data_files, "the package has data files (pages, specs)"
    unpackaged = [
        str(path) for path in data_files if not any(path.match(pattern) for pattern in patterns)
    ]
    assert unpackaged == []
