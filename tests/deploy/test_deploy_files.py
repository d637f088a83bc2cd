"""The deployment files validate offline: the Dockerfile with hadolint, compose.yaml against the
Compose specification's JSON schema, the Kubernetes manifests against the API schemas of a
released Kubernetes version (strict: unknown fields are errors). No image is built or pulled."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MANIFESTS = sorted(p for p in (ROOT / "deploy" / "k8s").glob("*.yaml") if p.stem != "kustomization")


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is not installed: run `make install` (it is a dev dependency)")
        return found
    return str(path)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_dockerfile_passes_hadolint() -> None:
    result = _run(_tool("hadolint"), "--failure-threshold", "info", str(ROOT / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "\nUSER 10001" in text
    assert "\nHEALTHCHECK " in text
    assert text.count("\nFROM ") >= 2, "multi-stage build"


def test_compose_file_matches_the_compose_specification() -> None:
    result = _run(
        _tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        str(ROOT / "compose.yaml"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_two_api_nodes_two_workers_and_a_one_shot_migration() -> None:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert set(services) >= {"api", "worker", "postgres", "redis", "migrate"}
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["migrate"]["command"] == ["migrate"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


@pytest.mark.parametrize("manifest", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_kubernetes_manifest_validates_strictly(manifest: Path) -> None:
    result = _run(_tool("kubernetes-validate"), "--strict", "-k", "1.30", str(manifest))
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_deployment_has_every_part_a_production_install_needs() -> None:
    kinds: dict[str, list[Any]] = {}
    for manifest in MANIFESTS:
        for doc in yaml.safe_load_all(manifest.read_text()):
            kinds.setdefault(doc["kind"], []).append(doc)
    assert {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler"} <= set(kinds)
    assert {"PodDisruptionBudget", "Secret", "ConfigMap", "Job"} <= set(kinds)
    api = next(d for d in kinds["Deployment"] if d["metadata"]["name"] == "lorebase-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/v1/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/v1/health/ready"
    kustomization = yaml.safe_load((ROOT / "deploy" / "k8s" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS)
