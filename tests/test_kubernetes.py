"""The Kubernetes and Argo CD resources of generated projects, validated offline as strictly as we can.

No API server runs here. Built-in kinds are validated by kubernetes-validate (strict: unknown and
misspelled keys fail) for a pinned Kubernetes version; custom resources (Argo CD, the Prometheus
Operator's ServiceMonitor) by the openAPIV3Schema of their CRDs, vendored in tests/data/crds. A kind
that neither knows fails. Then the rules no schema checks: the restricted Pod Security Standard,
images by digest, one source of truth with release.yaml, and agreement with `kubectl kustomize`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from conftest import TEMPLATE_ROOT, tool_environment

KUBERNETES_VERSION = "1.32"  # the kubectl of these machines; kubernetes-validate ships 1.25 to 1.37
CRDS = TEMPLATE_ROOT / "tests" / "data" / "crds"
IMAGE = "ghcr.io/example-org/served@sha256:" + "d" * 64
OPTION_SETS = [
    {"environments": "staging,production", "init_git": False},
    {
        "environments": "dev,qa,prod",
        "project_name": "Fraud Scorer",
        "python_version": "3.13",
        "init_git": False,
    },
]
# A small cluster: two nodes of 2 CPU and 8 GiB (the general-purpose size of every cloud), less what
# the kubelet, the system pods and a monitoring agent reserve.
NODE_ALLOCATABLE_MILLICORES = 1700
NODE_ALLOCATABLE_MEBIBYTES = 6 * 1024
NODES = 2

RENDER = r"""
import hashlib, json, sys
from pathlib import Path
from {package}.config import load_config
from {package}.contracts.release import FlagsReference, ImageReference, ModelReference, Release
from {package}.delivery.manifests import read_base, render_manifests

config = load_config("project.yaml")
out = {{}}
for index, environment in enumerate(config.environments):
    settings = config.environment_settings(environment)
    flags = (config.root / settings.flags).read_text(encoding="utf-8") if settings.flags else None
    digest = lambda text: "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    model = dict(name=config.mlflow.registered_model, artifact_digest="sha256:" + "a" * 64,
                 source_sha="b" * 40, data_digest="c" * 64)
    challenger = ModelReference(version=index + 3, **model) if index == 1 else None
    release = Release.create(
        environment=environment, version=index + 2, promoted_from="main", policy_pack=config.policy_pack,
        strategy="canary" if challenger else "direct", challenger=challenger,
        challenger_weight=10 if challenger else 0,
        image=ImageReference(repository="{repository}", digest="{digest}"),
        flags=None if flags is None else FlagsReference(file="flags.flagd.json", digest=digest(flags)),
        model=model["name"], artifact_digest=model["artifact_digest"], source_sha=model["source_sha"],
        data_digest=model["data_digest"],
    )
    render = lambda: render_manifests(config.name, environment, settings, release, None, flags,
                                      base=read_base(config.root))
    first, second = render(), render()
    out[environment] = {{
        "files": first, "stable": first == second, "release": release.to_yaml(), "flags": flags,
        "settings": settings.model_dump(mode="json"),
    }}
json.dump(out, sys.stdout)
"""


def kubectl(*arguments: str) -> str:
    result = subprocess.run(["kubectl", *arguments], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def documents(text: str) -> list[dict]:
    return [document for document in yaml.safe_load_all(text) if document]


@pytest.fixture(scope="module", params=OPTION_SETS, ids=lambda options: options["environments"])
def project(request, cookies_session) -> Path:
    result = cookies_session.bake(extra_context=request.param)
    assert result.exit_code == 0, result.exception
    return result.project_path


@pytest.fixture(scope="module")
def rendered(project: Path) -> dict:
    """What promotion would put in manifests/ on every environment branch, by environment."""
    package = project.name.replace("-", "_")
    repository, digest = IMAGE.split("@")
    script = RENDER.format(package=package, repository=repository, digest=digest)
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=project,
        capture_output=True,
        text=True,
        env=tool_environment(PYTHONPATH=str(project / "src")),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def environment_names(project: Path) -> list[str]:
    return yaml.safe_load((project / "project.yaml").read_text())["environments"]


def resources(files: dict[str, str]) -> list[dict]:
    return [
        doc
        for path, text in sorted(files.items())
        if not path.endswith("kustomization.yaml")
        for doc in documents(text)
    ]


def crd_schema(document: dict) -> dict | None:
    group, _, version = document["apiVersion"].rpartition("/")
    path = CRDS / f"{group}_{version}_{document['kind']}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def validation_problems(document: dict) -> list[str]:
    """Schema errors of one resource; a kind with no schema at all is itself a problem."""
    schema = crd_schema(document)
    if schema is not None:
        validator = jsonschema.Draft7Validator(schema)
        return [
            f"{'/'.join(map(str, error.path))}: {error.message}" for error in validator.iter_errors(document)
        ]
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{document['apiVersion']} {document['kind']}: no schema to validate it against"]
    except kubernetes_validate.ValidationError as error:
        return [f"{'/'.join(map(str, error.path))}: {error.message}"]
    return []


def application_set_applications(application_set: dict) -> list[dict]:
    """The Applications Argo CD generates from the list generator (goTemplate, then templatePatch)."""
    [generator] = application_set["spec"]["generators"]
    patch = application_set["spec"]["templatePatch"]
    assert "{{ toJson .automated }}" in patch, "the patch this simulation knows"
    applications = []
    for element in generator["list"]["elements"]:
        text = yaml.safe_dump(application_set["spec"]["template"])
        application = yaml.safe_load(text.replace("{{ .environment }}", element["environment"]))
        merge(
            application,
            yaml.safe_load(patch.replace("{{ toJson .automated }}", json.dumps(element["automated"]))),
        )
        applications.append({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **application})
    return applications


def merge(target: dict, patch: dict) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = value


# --- every resource validates --------------------------------------------------------------------


def test_every_rendered_manifest_validates_strictly(rendered: dict) -> None:
    for environment, output in rendered.items():
        kinds = set()
        for document in resources(output["files"]):
            kinds.add(document["kind"])
            assert validation_problems(document) == [], f"{environment} {document['kind']}"
        assert kinds == {
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "ServiceMonitor",
            "ConfigMap",
        }


def test_argo_cd_resources_validate_against_their_crds(project: Path) -> None:
    found = {}
    for path in sorted((project / "deploy" / "argocd").glob("*.yaml")):
        for document in documents(path.read_text()):
            assert crd_schema(document) is not None, f"{path.name}: no CRD schema for {document['kind']}"
            assert validation_problems(document) == [], path.name
            found[document["kind"]] = document
    assert set(found) == {"AppProject", "ApplicationSet"}
    for application in application_set_applications(found["ApplicationSet"]):
        assert validation_problems(application) == [], application["metadata"]["name"]


def test_a_kind_without_schema_and_a_misspelled_key_fail_validation() -> None:
    unknown = {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert validation_problems(unknown) == ["example.org/v1 Widget: no schema to validate it against"]
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"prots": []}}
    assert validation_problems(service) != []
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "m"},
        "spec": {"endpoints": [{"interval": 30}], "selector": {}},
    }
    assert validation_problems(monitor) != []


# --- Argo CD: one application per environment branch, the last one synced by hand ------------------


def test_applications_sync_every_environment_branch_automatically_but_the_last(
    project: Path, rendered: dict
) -> None:
    application_set = documents((project / "deploy" / "argocd" / "applicationset.yaml").read_text())[0]
    applications = application_set_applications(application_set)
    names = environment_names(project)
    assert [app["spec"]["source"]["targetRevision"] for app in applications] == [f"env/{n}" for n in names]
    assert all(app["spec"]["source"]["path"] == "manifests" for app in applications)
    for application, name in zip(applications, names, strict=True):
        namespace = {doc["metadata"]["namespace"] for doc in resources(rendered[name]["files"])}
        assert {application["spec"]["destination"]["namespace"]} == namespace
        automated = application["spec"]["syncPolicy"]["automated"]
        if name == names[-1]:
            assert automated == {"enabled": False}, "the last environment is synced by hand"
        else:
            assert automated == {"enabled": True, "prune": True, "selfHeal": True}


def test_the_project_allows_only_this_repository_and_the_environments_namespaces(
    project: Path, rendered: dict
) -> None:
    [app_project] = documents((project / "deploy" / "argocd" / "appproject.yaml").read_text())
    application_set = documents((project / "deploy" / "argocd" / "applicationset.yaml").read_text())[0]
    repository = application_set["spec"]["template"]["spec"]["source"]["repoURL"]
    assert app_project["spec"]["sourceRepos"] == [repository]
    # github_owner and project_slug of the answers (both option sets keep the default owner)
    assert repository == f"https://github.com/example-org/{project.name}.git"
    namespaces = sorted(
        {doc["metadata"]["namespace"] for output in rendered.values() for doc in resources(output["files"])}
    )
    assert sorted(d["namespace"] for d in app_project["spec"]["destinations"]) == namespaces
    allowed = {(rule["group"], rule["kind"]) for rule in app_project["spec"]["namespaceResourceWhitelist"]}
    for output in rendered.values():
        for document in resources(output["files"]):
            group = document["apiVersion"].rpartition("/")[0]
            assert (group, document["kind"]) in allowed, document["kind"]


# --- the restricted Pod Security Standard and images by digest -------------------------------------


def pod_specs(docs: list[dict]):
    for document in docs:
        if document["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            yield document["spec"]["template"]["spec"]


def restricted_problems(pod: dict) -> list[str]:
    """The restricted profile (https://kubernetes.io/docs/concepts/security/pod-security-standards/)."""
    problems = []
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken is not false")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"{field} is set")
    pod_context = pod.get("securityContext", {})
    for container in pod.get("initContainers", []) + pod["containers"]:
        context = container.get("securityContext", {})
        name = container["name"]
        if not (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")):
            problems.append(f"{name}: runAsNonRoot is not true")
        user = context.get("runAsUser", pod_context.get("runAsUser"))
        if user is None or user == 0:
            problems.append(f"{name}: runAsUser is {user!r}")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        if context.get("capabilities", {}).get("drop") != ["ALL"] or context["capabilities"].get("add"):
            problems.append(f"{name}: capabilities are not exactly drop [ALL]")
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {})).get("type")
        if seccomp not in {"RuntimeDefault", "Localhost"}:
            problems.append(f"{name}: seccompProfile is {seccomp!r}")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: readOnlyRootFilesystem is not true")
    for volume in pod.get("volumes", []):
        if "hostPath" in volume:
            problems.append(f"volume {volume['name']} is a hostPath")
    return problems


def test_pods_meet_the_restricted_pod_security_standard(rendered: dict) -> None:
    for environment, output in rendered.items():
        pods = list(pod_specs(resources(output["files"])))
        assert pods, environment
        for pod in pods:
            assert restricted_problems(pod) == [], environment


def test_the_restricted_check_catches_each_relaxation(rendered: dict) -> None:
    pod = next(pod_specs(resources(next(iter(rendered.values()))["files"])))
    relaxations = [
        ("automountServiceAccountToken", lambda p: p.pop("automountServiceAccountToken")),
        (
            "runAsNonRoot",
            lambda p: [
                p["securityContext"].pop("runAsNonRoot"),
                p["containers"][0]["securityContext"].pop("runAsNonRoot"),
            ],
        ),
        (
            "allowPrivilegeEscalation",
            lambda p: p["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True),
        ),
        (
            "capabilities",
            lambda p: p["containers"][0]["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
        ),
        (
            "seccompProfile",
            lambda p: [
                p["securityContext"].pop("seccompProfile"),
                p["containers"][0]["securityContext"].pop("seccompProfile"),
            ],
        ),
        (
            "readOnlyRootFilesystem",
            lambda p: p["containers"][0]["securityContext"].pop("readOnlyRootFilesystem"),
        ),
    ]
    for expected, relax in relaxations:
        relaxed = copy.deepcopy(pod)
        relax(relaxed)
        assert any(expected in problem for problem in restricted_problems(relaxed)), expected


def test_every_image_is_pinned_by_digest(rendered: dict) -> None:
    for output in rendered.values():
        for pod in pod_specs(resources(output["files"])):
            for container in pod.get("initContainers", []) + pod["containers"]:
                _, separator, digest = container["image"].partition("@")
                assert separator and len(digest) == 71 and digest.startswith("sha256:"), container["image"]


def test_only_emptydir_mounts_are_writable_and_they_hold_the_log_and_tmp(rendered: dict) -> None:
    for output in rendered.values():
        [pod] = pod_specs(resources(output["files"]))
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        assert sorted(container["name"] for container in pod["containers"]) == ["log-shipper", "serving"]
        for container in pod["containers"]:
            writable = {}
            for mount in container["volumeMounts"]:
                if not mount.get("readOnly"):
                    assert "emptyDir" in volumes[mount["name"]], mount
                    writable[mount["mountPath"]] = mount["name"]
            # Both write the log directory: the service its chunks, the shipper its ledger.
            log_directory = Path("/app") / output["settings"]["serving"]["prediction_log"]["directory"]
            assert any(log_directory.is_relative_to(path) for path in writable), log_directory
            assert "/tmp" in writable


def test_probes_and_the_service_monitor_use_the_service_endpoints(rendered: dict) -> None:
    for output in rendered.values():
        docs = resources(output["files"])
        [pod] = pod_specs(docs)
        [container] = [each for each in pod["containers"] if each["name"] == "serving"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        [monitor] = [doc for doc in docs if doc["kind"] == "ServiceMonitor"]
        assert [endpoint["path"] for endpoint in monitor["spec"]["endpoints"]] == ["/metrics"]
        [service] = [doc for doc in docs if doc["kind"] == "Service"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        assert service["spec"]["selector"].items() <= pod_labels(docs).items()


def pod_labels(docs: list[dict]) -> dict:
    [deployment] = [doc for doc in docs if doc["kind"] == "Deployment"]
    return deployment["spec"]["template"]["metadata"]["labels"]


# --- one source of truth: the environment file and release.yaml ------------------------------------


def test_scale_and_resources_come_from_the_environment_file(project: Path, rendered: dict) -> None:
    for environment, output in rendered.items():
        settings = yaml.safe_load((project / "environments" / f"{environment}.yaml").read_text())
        docs = resources(output["files"])
        [hpa] = [doc for doc in docs if doc["kind"] == "HorizontalPodAutoscaler"]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
            settings["autoscaling"]["min_replicas"],
            settings["autoscaling"]["max_replicas"],
        )
        [metric] = hpa["spec"]["metrics"]
        assert (
            metric["resource"]["target"]["averageUtilization"]
            == settings["autoscaling"]["target_cpu_percent"]
        )
        [pod] = pod_specs(docs)
        requests = pod["containers"][0]["resources"]["requests"]
        assert requests == {"cpu": settings["resources"]["cpu"], "memory": settings["resources"]["memory"]}


def test_versions_weights_flags_and_image_are_the_release_s(rendered: dict) -> None:
    for environment, output in rendered.items():
        release = yaml.safe_load(output["release"])
        docs = resources(output["files"])
        [deployment] = [doc for doc in docs if doc["kind"] == "Deployment"]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["mlops/champion"] == str(release["model"]["version"])
        assert annotations["mlops/challenger"] == str(release["rollout"]["challenger"] or "")
        assert annotations["mlops/challenger-weight"] == str(release["rollout"]["challenger_weight"])
        assert annotations["mlops/strategy"] == release["rollout"]["strategy"]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == f"{release['image']['repository']}@{release['image']['digest']}"
        maps = {doc["metadata"]["name"]: doc["data"] for doc in docs if doc["kind"] == "ConfigMap"}
        assert maps["serving-rollout"]["release.yaml"] == output["release"]
        [flags] = maps["serving-flags"].values()
        assert "sha256:" + hashlib.sha256(flags.encode()).hexdigest() == release["flags"]["digest"]
        settings = yaml.safe_load(maps["serving-rollout"]["environment.yaml"])
        assert settings == output["settings"]
        # The pod serves the mounted release and settings, and restarts when any of them changes.
        assert container["args"][:4] == ["--env", environment, "--release", "/etc/mlops/release/release.yaml"]
        text = "\0".join([output["release"], maps["serving-rollout"]["environment.yaml"], flags])
        assert annotations["mlops/config-sha256"] == hashlib.sha256(text.encode()).hexdigest()


def test_tokens_and_store_urls_come_from_the_environment_s_secret(project: Path, rendered: dict) -> None:
    slug = project.name
    for environment, output in rendered.items():
        [pod] = pod_specs(resources(output["files"]))
        variables = {variable["name"]: variable for variable in pod["containers"][0]["env"]}
        auth = output["settings"]["serving"]["auth"]
        for name in ["MLFLOW_TRACKING_URI", "MLOPS_FEEDBACK_DATABASE_URL", auth["feedback_token_env"]]:
            reference = variables[name]["valueFrom"]["secretKeyRef"]
            assert reference["name"] == f"{slug}-{environment}-tokens" and reference["optional"] is False
        assert all("value" not in v for n, v in variables.items() if n != "HOME"), "a secret value in git"


def test_rendering_is_byte_stable(rendered: dict) -> None:
    assert all(output["stable"] for output in rendered.values())


def test_the_defaults_fit_a_two_node_cluster_running_every_environment_at_full_scale(rendered: dict) -> None:
    millicores = mebibytes = 0
    for output in rendered.values():
        [pod] = pod_specs(resources(output["files"]))
        replicas = output["settings"]["autoscaling"]["max_replicas"]
        for container in pod["containers"]:  # the service and its log shipper
            requests = container["resources"]["requests"]
            cpu, memory = requests["cpu"], requests["memory"]
            millicores += replicas * (int(cpu[:-1]) if cpu.endswith("m") else int(float(cpu) * 1000))
            mebibytes += replicas * (int(memory[:-2]) * 1024 if memory.endswith("Gi") else int(memory[:-2]))
    if len(rendered) == 2:  # staging and production, the default
        assert millicores <= NODES * NODE_ALLOCATABLE_MILLICORES
        assert mebibytes <= NODES * NODE_ALLOCATABLE_MEBIBYTES


# --- kubectl kustomize agrees ---------------------------------------------------------------------


def test_kubectl_kustomize_renders_the_base_and_every_environment_branch(
    project: Path, rendered: dict, tmp_path: Path
) -> None:
    base = documents(kubectl("kustomize", str(project / "deploy" / "base")))
    assert {doc["kind"] for doc in base} >= {"Deployment", "HorizontalPodAutoscaler", "ServiceMonitor"}
    for environment, output in rendered.items():
        branch = tmp_path / environment
        for path, text in output["files"].items():
            (branch / path).parent.mkdir(parents=True, exist_ok=True)
            (branch / path).write_text(text)
        built = documents(kubectl("kustomize", str(branch / "manifests")))
        assert sorted(map(canonical, built)) == sorted(map(canonical, resources(output["files"])))


def canonical(document: dict) -> str:
    return json.dumps(document, sort_keys=True)


def overlay(project: Path, environment: str, output: dict) -> dict:
    """A Kustomize overlay of deploy/base written from the environment file and the release alone."""
    settings = output["settings"]
    release = yaml.safe_load(output["release"])
    namespace = f"{project.name}-{environment}"
    secret = f"{namespace}-tokens"
    auth = settings["serving"]["auth"]
    variables = {
        "MLFLOW_TRACKING_URI": "mlflow-tracking-uri",
        "MLOPS_FEEDBACK_DATABASE_URL": "feedback-database-url",
        auth["feedback_token_env"]: "feedback-token",
    }
    if auth["protect_predictions"]:
        variables[auth["prediction_token_env"]] = "prediction-token"
    if settings["serving"]["prediction_log"]["personal_data"] == "hash":
        variables[settings["serving"]["prediction_log"]["hash_key_env"]] = "log-hash-key"
    container, shipper = "/spec/template/spec/containers/0", "/spec/template/spec/containers/1"
    cpu = settings["resources"]["cpu"]
    workers = settings["serving"]["workers"]
    cpu_limit = (
        cpu if (int(cpu[:-1]) if cpu.endswith("m") else float(cpu) * 1000) > workers * 1000 else str(workers)
    )
    deployment_patch = [
        {"op": "replace", "path": f"{container}/args/1", "value": environment},
        {
            "op": "replace",
            "path": f"{container}/volumeMounts/1/mountPath",
            "value": f"/app/environments/{environment}.yaml",
        },
        {
            "op": "replace",
            "path": f"{container}/resources",
            "value": {
                "requests": {"cpu": cpu, "memory": settings["resources"]["memory"]},
                "limits": {"cpu": cpu_limit, "memory": settings["resources"]["memory"]},
            },
        },
        {
            "op": "add",
            "path": "/spec/template/metadata/annotations",
            "value": {
                "mlops/champion": str(release["model"]["version"]),
                "mlops/challenger": str(release["rollout"]["challenger"] or ""),
                "mlops/strategy": release["rollout"]["strategy"],
                "mlops/challenger-weight": str(release["rollout"]["challenger_weight"]),
            },
        },
        *[
            {
                "op": "add",
                "path": f"{container}/env/-",
                "value": {
                    "name": name,
                    "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": False}},
                },
            }
            for name, key in sorted(variables.items())
        ],
        # The log shipper: the environment's name and settings file, and the tracking server's URL.
        {"op": "replace", "path": f"{shipper}/args/1", "value": environment},
        {
            "op": "replace",
            "path": f"{shipper}/volumeMounts/0/mountPath",
            "value": f"/app/environments/{environment}.yaml",
        },
        {
            "op": "add",
            "path": f"{shipper}/env/-",
            "value": {
                "name": "MLFLOW_TRACKING_URI",
                "valueFrom": {
                    "secretKeyRef": {"name": secret, "key": "mlflow-tracking-uri", "optional": False}
                },
            },
        },
    ]
    resources_listed = ["../../base"]
    if settings["flags"]:
        flag_path = Path("/app") / settings["flags"]
        deployment_patch += [
            {
                "op": "add",
                "path": f"{container}/volumeMounts/-",
                "value": {
                    "name": "flags",
                    "mountPath": str(flag_path),
                    "subPath": flag_path.name,
                    "readOnly": True,
                },
            },
            {
                "op": "add",
                "path": "/spec/template/spec/volumes/-",
                "value": {"name": "flags", "configMap": {"name": "serving-flags"}},
            },
        ]
    hpa_patch = [
        {"op": "replace", "path": "/spec/minReplicas", "value": settings["autoscaling"]["min_replicas"]},
        {"op": "replace", "path": "/spec/maxReplicas", "value": settings["autoscaling"]["max_replicas"]},
        {
            "op": "replace",
            "path": "/spec/metrics/0/resource/target/averageUtilization",
            "value": settings["autoscaling"]["target_cpu_percent"],
        },
    ]
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources_listed,
        "namespace": namespace,
        "labels": [
            {
                "pairs": {
                    "app.kubernetes.io/part-of": project.name,
                    "app.kubernetes.io/instance": namespace,
                    "mlops/environment": environment,
                },
                "includeSelectors": False,
                "includeTemplates": True,
            }
        ],
        "images": [
            {
                "name": "serving-image",
                "newName": release["image"]["repository"],
                "digest": release["image"]["digest"],
            }
        ],
        "replicas": [{"name": "serving", "count": settings["autoscaling"]["min_replicas"]}],
        "patches": [
            {"target": {"kind": "Deployment", "name": "serving"}, "patch": json.dumps(deployment_patch)},
            {
                "target": {"kind": "HorizontalPodAutoscaler", "name": "serving"},
                "patch": json.dumps(hpa_patch),
            },
        ],
    }


def without_generated_data(document: dict) -> dict:
    """The document less what the overlay does not recompute: ConfigMap data (checked above), its digest."""
    document = copy.deepcopy(document)
    if document["kind"] == "ConfigMap":
        document.pop("data", None)
    if document["kind"] == "Deployment":
        document["spec"]["template"]["metadata"].get("annotations", {}).pop("mlops/config-sha256", None)
    return document


def test_python_rendering_agrees_with_kustomize_applying_an_overlay_to_the_base(
    project: Path, rendered: dict
) -> None:
    overlays = project / "deploy" / "overlays"
    try:
        for environment, output in rendered.items():
            directory = overlays / environment
            directory.mkdir(parents=True)
            (directory / "kustomization.yaml").write_text(
                yaml.safe_dump(overlay(project, environment, output))
            )
            built = documents(kubectl("kustomize", str(directory)))
            if not output["flags"]:
                built = [doc for doc in built if doc["metadata"]["name"] != "serving-flags"]
            expected = resources(output["files"])
            assert sorted(canonical(without_generated_data(doc)) for doc in built) == sorted(
                canonical(without_generated_data(doc)) for doc in expected
            ), environment
    finally:
        shutil.rmtree(overlays, ignore_errors=True)
