"""The Kubernetes manifests promotion writes to manifests/ on an environment branch.

The template's own tests validate them against the Kubernetes and CRD schemas and against
`kubectl kustomize`; these pin what the project relies on: one source of truth with release.yaml,
byte-stable output, and refusals with a message that names the problem.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.config.environment import (
    FEEDBACK_DATABASE_URL_ENV,
    Autoscaling,
    EnvironmentSettings,
    Resources,
)
from {{ cookiecutter.package_name }}.contracts.release import FlagsReference, ImageReference, ModelReference, Release
from {{ cookiecutter.package_name }}.delivery.manifests import (
    ManifestError,
    namespace_of,
    read_base,
    render_manifests,
)

pytestmark = pytest.mark.unit

PROJECT_ROOT = Path(__file__).resolve().parents[3]
BASE = read_base(PROJECT_ROOT)
REPOSITORY = "ghcr.io/example-org/income-classifier"
DIGEST = "sha256:" + "d" * 64
FLAGS = (
    '{"flags": {"new-threshold": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}}}\n'
)
SETTINGS = EnvironmentSettings(
    flags=Path("flags/staging.flagd.json"),
    autoscaling=Autoscaling(min_replicas=2, max_replicas=5, target_cpu_percent=60),
    resources=Resources(cpu="750m", memory="768Mi"),
)


def model(version: int) -> ModelReference:
    return ModelReference(
        name="income-classifier",
        version=version,
        artifact_digest="sha256:" + "a" * 64,
        source_sha="b" * 40,
        data_digest="c" * 64,
    )


def release(*, image: bool = True, flags: str | None = FLAGS, **changes) -> Release:
    facts = dict(
        environment="staging",
        model="income-classifier",
        version=3,
        artifact_digest="sha256:" + "a" * 64,
        source_sha="b" * 40,
        data_digest="c" * 64,
        promoted_from="main",
        policy_pack="standard",
        strategy="canary",
        challenger=model(4),
        challenger_weight=25,
        image=ImageReference(repository=REPOSITORY, digest=DIGEST) if image else None,
        flags=None
        if flags is None
        else FlagsReference(
            file="flags.flagd.json", digest="sha256:" + hashlib.sha256(flags.encode()).hexdigest()
        ),
    )
    return Release.create(**{**facts, **changes})


def render(the_release: Release | None = None, settings: EnvironmentSettings = SETTINGS, **arguments):
    options = {"image": None, "flags_text": FLAGS, **arguments}
    return render_manifests(
        "income-classifier", "staging", settings, the_release or release(), base=BASE, **options
    )


def by_kind(files: dict[str, str]) -> dict[str, dict]:
    found = {}
    for text in files.values():
        document = yaml.safe_load(text)
        if document["kind"] != "Kustomization":
            found.setdefault(document["kind"], []).append(document)
    return found


def deployment(files: dict[str, str]) -> dict:
    [document] = by_kind(files)["Deployment"]
    return document


def test_rendering_is_byte_stable_and_under_manifests() -> None:
    first, second = render(), render()
    assert first == second
    assert all(path.startswith("manifests/") for path in first)
    listed = yaml.safe_load(first["manifests/kustomization.yaml"])["resources"]
    assert sorted(f"manifests/{name}" for name in listed) == sorted(
        set(first) - {"manifests/kustomization.yaml"}
    )


def test_the_pod_serves_the_release_it_carries() -> None:
    files = render()
    maps = {document["metadata"]["name"]: document["data"] for document in by_kind(files)["ConfigMap"]}
    assert maps["serving-rollout"]["release.yaml"] == release().to_yaml()
    pod = deployment(files)["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["image"] == f"{REPOSITORY}@{DIGEST}"
    assert container["args"][:4] == ["--env", "staging", "--release", "/etc/mlops/release/release.yaml"]
    assert pod["metadata"]["annotations"]["mlops/champion"] == "3"
    assert pod["metadata"]["annotations"]["mlops/challenger"] == "4"
    assert pod["metadata"]["annotations"]["mlops/challenger-weight"] == "25"


def test_a_changed_weight_changes_the_pod_template_so_pods_restart() -> None:
    before = deployment(render())["spec"]["template"]["metadata"]["annotations"]
    after = deployment(render(release(challenger_weight=50)))["spec"]["template"]["metadata"]["annotations"]
    assert before["mlops/config-sha256"] != after["mlops/config-sha256"]


def test_the_flags_config_map_is_the_file_release_yaml_records() -> None:
    files = render()
    [flags] = [m for m in by_kind(files)["ConfigMap"] if m["metadata"]["name"] == "serving-flags"]
    assert flags["data"] == {"staging.flagd.json": FLAGS}
    mounts = deployment(files)["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {
        "name": "flags",
        "mountPath": "/app/flags/staging.flagd.json",
        "subPath": "staging.flagd.json",
        "readOnly": True,
    } in mounts
    with pytest.raises(ManifestError, match=r"release\.yaml records"):
        render(flags_text=FLAGS.replace("true", "false"))


def test_scale_comes_from_the_environment_settings() -> None:
    files = render()
    [hpa] = by_kind(files)["HorizontalPodAutoscaler"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    container = deployment(files)["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "750m", "memory": "768Mi"}
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "768Mi"}


def test_secrets_are_referenced_never_written() -> None:
    container = deployment(render())["spec"]["template"]["spec"]["containers"][0]
    references = {
        variable["name"]: variable["valueFrom"]["secretKeyRef"]
        for variable in container["env"]
        if "valueFrom" in variable
    }
    assert set(references) >= {"MLFLOW_TRACKING_URI", FEEDBACK_DATABASE_URL_ENV, "MLOPS_FEEDBACK_TOKEN"}
    assert {reference["name"] for reference in references.values()} == {"income-classifier-staging-tokens"}
    assert all(reference["optional"] is False for reference in references.values())


def test_every_resource_is_in_the_environment_namespace() -> None:
    for documents in by_kind(render()).values():
        for document in documents:
            assert document["metadata"]["namespace"] == "income-classifier-staging"


def test_a_release_without_an_image_digest_is_refused() -> None:
    with pytest.raises(ManifestError, match="no image digest for staging"):
        render(release(image=False))
    with pytest.raises(ManifestError, match="not pinned by digest"):
        render(release(image=False), image=f"{REPOSITORY}:latest")
    with pytest.raises(ManifestError, match="is not the release's image"):
        render(image=f"{REPOSITORY}@sha256:" + "e" * 64)
    assert deployment(render(release(image=False), image=f"{REPOSITORY}@{DIGEST}"))


def test_flags_go_with_a_release_that_records_them() -> None:
    with pytest.raises(ManifestError, match="given together"):
        render(release(flags=None))
    plain = EnvironmentSettings()
    files = render(release(flags=None), settings=plain, flags_text=None)
    assert "manifests/configmap-flags.yaml" not in files


def test_a_namespace_kubernetes_cannot_name_is_refused() -> None:
    with pytest.raises(ManifestError, match="is not a Kubernetes name"):
        namespace_of("x" * 40, "production-eu-west-and-beyond")
    assert namespace_of("Income_Classifier.v2", "staging") == "income-classifier-v2-staging"
