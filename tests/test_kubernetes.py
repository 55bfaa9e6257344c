"""deploy/kubernetes: both kustomize overlays render, every object is valid for a pinned
Kubernetes version, and each overlay wires what it promises (probes, Secrets, non-root)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes_validate import utils as kubernetes

from tests.kustomize import OVERLAYS, gateway_container, one, render

# The Kubernetes version the manifests are validated against (strict: unknown fields fail).
KUBERNETES_VERSION = "1.32.0"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_is_valid_for_the_pinned_kubernetes(overlay: str) -> None:
    objects = render(overlay)
    assert objects
    for document in objects:
        kubernetes.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validation_catches_a_misspelled_field() -> None:
    deployment = copy.deepcopy(one(render("standalone"), "Deployment"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes.ValidationError):
        kubernetes.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_gets_its_settings_and_secrets_from_objects_that_exist(
    overlay: str,
) -> None:
    objects = render(overlay)
    container = gateway_container(objects)
    assert container["args"][:3] == ["serve", "--host", "0.0.0.0"]
    sources = container["envFrom"]
    one(objects, "ConfigMap", sources[0]["configMapRef"]["name"])
    secret = one(objects, "Secret", sources[1]["secretRef"]["name"])
    assert {"GATEWAY_DATABASE_URL", "GATEWAY_ENCRYPTION_KEYS"} <= set(secret["stringData"])
    volumes = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    channels = next(v for v in volumes if v["name"] == "channels")
    one(objects, "Secret", channels["secret"]["secretName"])
    assert "env" not in container  # nothing inline: every value comes from those objects


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_a_non_root_read_only_container(overlay: str) -> None:
    objects = render(overlay)
    container = gateway_container(objects)
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 10001  # numeric, so the kubelet can check it
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["limits"]["memory"]


def test_both_overlays_run_the_same_gateway_container() -> None:
    sidecar, standalone = (gateway_container(render(overlay)) for overlay in OVERLAYS)
    assert sidecar == standalone


def test_standalone_is_replicas_behind_a_service_with_a_budget_and_an_autoscaler() -> None:
    objects = render("standalone")
    deployment = one(objects, "Deployment", "provider-gateway")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] >= 2
    service = one(objects, "Service", "provider-gateway")
    assert _selects(service["spec"]["selector"], labels)
    port_names = {port["name"] for port in gateway_container(objects)["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names
    budget = one(objects, "PodDisruptionBudget")
    assert _selects(budget["spec"]["selector"]["matchLabels"], labels)
    autoscaler = one(objects, "HorizontalPodAutoscaler")
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "provider-gateway")
    assert autoscaler["spec"]["minReplicas"] >= 2


def test_sidecar_runs_next_to_the_app_which_reaches_it_on_localhost() -> None:
    objects = render("sidecar")
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    app = next(c for c in containers if c["name"] != "provider-gateway")
    assert {"name": "KNOCK_BASE_URL", "value": "http://127.0.0.1:8080"} in app["env"]
    assert gateway_container(objects)["ports"][0]["containerPort"] == 8080
    assert [o["kind"] for o in objects if o["kind"] in {"Service", "HorizontalPodAutoscaler"}] == []


def _selects(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())
