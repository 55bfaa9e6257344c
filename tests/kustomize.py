"""Rendering deploy/kubernetes with `kubectl kustomize` (no cluster needed), for the tests.

`scripts/ensure-kubectl` (run by scripts/test) installs kubectl when it is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import yaml

KUBERNETES = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
OVERLAYS = ("sidecar", "standalone")


@cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is missing: run scripts/ensure-kubectl"
    result = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(document for document in yaml.safe_load_all(result.stdout) if document)


def one(objects: tuple[dict[str, Any], ...], kind: str, name: str | None = None) -> dict[str, Any]:
    matching = [o for o in objects if o["kind"] == kind and name in {None, o["metadata"]["name"]}]
    assert len(matching) == 1, (kind, name, [o["metadata"]["name"] for o in matching])
    return matching[0]


def gateway_container(objects: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    deployment = one(objects, "Deployment")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "provider-gateway")
