"""The Kubernetes manifests of one environment, as rendered into `manifests/` on its branch `env/<name>`.

`deploy/base/` holds the environment-independent structure (security context, probes, volumes, the
resources' kinds and links). Rendering fills in what belongs to one environment and one release:
namespace, image digest, replicas and resources, autoscaling bounds, the release and the flags. The
result is fully resolved (Argo CD applies it as it is) and byte-stable for the same input, so a
promotion pull request's diff is exactly what changes in the cluster.

Every value that also appears in release.yaml is taken from the release itself (versions, weights,
flags, image): the rollout ConfigMap carries release.yaml verbatim and the pod serves from it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from {{ cookiecutter.package_name }}.config.environment import FEEDBACK_DATABASE_URL_ENV, EnvironmentSettings
from {{ cookiecutter.package_name }}.contracts.release import Release
from {{ cookiecutter.package_name }}.errors import ProjectError

MANIFESTS_DIR = "manifests"
BASE_DIR = Path("deploy") / "base"
KUSTOMIZATION = "kustomization.yaml"
APP = "serving"
IMAGE_PLACEHOLDER = "serving-image"
ENVIRONMENT_PLACEHOLDER = "ENVIRONMENT"
PROJECT_ROOT_IN_IMAGE = Path("/app")
IMAGE_BY_DIGEST = re.compile(r"^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$")
DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
ANNOTATION_PREFIX = "mlops"


class ManifestError(ProjectError):
    """The environment's manifests cannot be rendered from what was given."""


def kubernetes_name(project_name: str) -> str:
    """The project's name as Kubernetes names it (a DNS label: lowercase letters, digits, '-')."""
    return re.sub(r"[^a-z0-9-]", "-", project_name.lower()).strip("-")


def namespace_of(project_name: str, environment: str) -> str:
    """The namespace an environment runs in: `<project>-<environment>`."""
    namespace = f"{kubernetes_name(project_name)}-{environment}"
    if not DNS_LABEL.match(namespace):
        raise ManifestError(
            f"namespace {namespace!r} (project {project_name!r}, environment {environment!r}) is not a "
            "Kubernetes name: at most 63 lowercase letters, digits and '-', starting with a letter"
        )
    return namespace


def secret_name(project_name: str, environment: str) -> str:
    """The Secret the operator creates in the namespace: tokens and store URLs (never in git)."""
    return f"{kubernetes_name(project_name)}-{environment}-tokens"


def read_base(root: Path) -> dict[str, str]:
    """The text of every file of `deploy/base/` under the project root, by file name."""
    directory = root / BASE_DIR
    if not (directory / KUSTOMIZATION).is_file():
        raise ManifestError(f"{directory / KUSTOMIZATION}: no Kustomize base to render manifests from")
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(directory.glob("*.yaml"))}


def image_reference(release: Release, image: str | None) -> str:
    """`repository@sha256:<digest>`: given, or from release.yaml's image; a tag alone is refused."""
    if release.image is not None:
        from_release = release.image.reference
        if image is not None and image != from_release:
            raise ManifestError(f"image {image!r} is not the release's image {from_release!r}")
        image = from_release
    if image is None:
        raise ManifestError(
            f"no image digest for {release.environment}: build the image (image workflow) and record "
            "its digest in the release before rendering manifests"
        )
    if not IMAGE_BY_DIGEST.match(image):
        raise ManifestError(f"image {image!r} is not pinned by digest (expected repository@sha256:<64 hex>)")
    return image


def render_manifests(
    project_name: str,
    environment: str,
    settings: EnvironmentSettings,
    release: Release,
    image: str | None,
    flags_text: str | None,
    *,
    base: Mapping[str, str],
) -> dict[str, str]:
    """Every file of `manifests/` on env/<environment>, by path relative to the branch root.

    `base` is `read_base(root)`; `flags_text` is the environment's flag file (settings.flags), which
    the pod reads from a ConfigMap and whose digest release.yaml records. Raises ManifestError when
    the image has no digest or the flags are not the release's.
    """
    if release.environment != environment:
        raise ManifestError(f"release is for {release.environment!r}, not {environment!r}")
    check_flags(environment, settings, release, flags_text)
    namespace = namespace_of(project_name, environment)
    reference = image_reference(release, image)
    release_text = release.to_yaml()
    settings_text = settings_yaml(settings)
    files = base_documents(base)
    if flags_text is None or settings.flags is None:
        files.pop("configmap-flags.yaml", None)
    config_digest = hashlib.sha256(
        "\0".join([release_text, settings_text, flags_text or ""]).encode("utf-8")
    ).hexdigest()
    labels = {
        "app.kubernetes.io/part-of": kubernetes_name(project_name),
        "app.kubernetes.io/instance": namespace,
        f"{ANNOTATION_PREFIX}/environment": environment,
    }
    for document in files.values():
        document["metadata"]["namespace"] = namespace
        document["metadata"].setdefault("labels", {}).update(labels)
        kind = document["kind"]
        if kind == "Deployment":
            fill_deployment(document, environment, settings, release, reference, config_digest, labels)
            mount_flags(document, settings)
            add_secret_variables(document, settings, secret_name(project_name, environment))
        elif kind == "HorizontalPodAutoscaler":
            document["spec"]["minReplicas"] = settings.autoscaling.min_replicas
            document["spec"]["maxReplicas"] = settings.autoscaling.max_replicas
            [metric] = document["spec"]["metrics"]
            metric["resource"]["target"]["averageUtilization"] = settings.autoscaling.target_cpu_percent
        elif kind == "ConfigMap" and document["metadata"]["name"] == f"{APP}-rollout":
            document["data"] = {"environment.yaml": settings_text, "release.yaml": release_text}
        elif kind == "ConfigMap" and document["metadata"]["name"] == f"{APP}-flags":
            document["data"] = {flags_key(settings): flags_text}
    rendered = {f"{MANIFESTS_DIR}/{name}": dump(document) for name, document in sorted(files.items())}
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(files),
    }
    header = (
        f"# Desired state of {environment} in Kubernetes: rendered by promotion from deploy/base/ and\n"
        f"# environments/{environment}.yaml, never edited by hand.\n"
    )
    rendered[f"{MANIFESTS_DIR}/{KUSTOMIZATION}"] = header + dump(kustomization)
    return rendered


def base_documents(base: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The base's resources by file name, in the order its kustomization lists them."""
    if KUSTOMIZATION not in base:
        raise ManifestError(f"the base has no {KUSTOMIZATION}")
    listed = yaml.safe_load(base[KUSTOMIZATION]).get("resources", [])
    missing = [name for name in listed if name not in base]
    if missing:
        raise ManifestError(f"the base's {KUSTOMIZATION} lists missing files: {', '.join(missing)}")
    return {name: yaml.safe_load(base[name]) for name in listed}


def settings_yaml(settings: EnvironmentSettings) -> str:
    """The environment's settings as the pod reads them (environments/<env>.yaml), keys sorted."""
    return yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=True)


def flags_key(settings: EnvironmentSettings) -> str:
    return Path(str(settings.flags)).name


def fill_deployment(
    document: dict[str, Any],
    environment: str,
    settings: EnvironmentSettings,
    release: Release,
    image: str,
    config_digest: str,
    labels: dict[str, str],
) -> None:
    spec = document["spec"]
    spec["replicas"] = settings.autoscaling.min_replicas
    template = spec["template"]
    template["metadata"].setdefault("labels", {}).update(labels)
    template["metadata"]["annotations"] = {
        # A changed release, setting or flag restarts the pods: subPath mounts never refresh.
        f"{ANNOTATION_PREFIX}/config-sha256": config_digest,
        f"{ANNOTATION_PREFIX}/champion": str(release.version),
        f"{ANNOTATION_PREFIX}/challenger": "" if release.challenger is None else str(release.challenger),
        f"{ANNOTATION_PREFIX}/strategy": release.strategy,
        f"{ANNOTATION_PREFIX}/challenger-weight": str(release.challenger_weight),
    }
    for each in template["spec"]["containers"]:  # the service and its log shipper: one image
        each["image"] = image
        each["args"] = [environment if arg == ENVIRONMENT_PLACEHOLDER else arg for arg in each["args"]]
        for mount in each.get("volumeMounts", []):
            mount["mountPath"] = mount["mountPath"].replace(ENVIRONMENT_PLACEHOLDER, environment)
    container = serving_container(template["spec"])
    container["resources"] = {
        "requests": {"cpu": settings.resources.cpu, "memory": settings.resources.memory},
        "limits": {
            "cpu": cpu_limit(settings.resources.cpu, settings.serving.workers),
            "memory": settings.resources.memory,
        },
    }


def cpu_limit(request: str, workers: int) -> str:
    """A core per worker process (each uses about one at most), or the request if larger."""
    millicores = int(request[:-1]) if request.endswith("m") else round(float(request) * 1000)
    return request if millicores > workers * 1000 else str(workers)


def mount_flags(document: dict[str, Any], settings: EnvironmentSettings) -> None:
    """Mount the flags ConfigMap where the settings say the flag file is, inside the image's project."""
    if settings.flags is None:
        return
    pod = document["spec"]["template"]["spec"]
    container = serving_container(pod)
    path = settings.flags if settings.flags.is_absolute() else PROJECT_ROOT_IN_IMAGE / settings.flags
    container["volumeMounts"].append(
        {"name": "flags", "mountPath": str(path), "subPath": flags_key(settings), "readOnly": True}
    )
    pod["volumes"].append({"name": "flags", "configMap": {"name": f"{APP}-flags"}})


SHIPPER_SECRET_KEYS = {"MLFLOW_TRACKING_URI": "mlflow-tracking-uri"}


def secret_keys(settings: EnvironmentSettings) -> dict[str, str]:
    """Environment variable -> key of the environment's Secret, for what the settings make the pod read.

    The variable names come from the settings (serving.auth, serving.prediction_log), so the
    manifests and the service agree on them; the store URLs replace the file's own values.
    """
    serving = settings.serving
    keys = {
        "MLFLOW_TRACKING_URI": "mlflow-tracking-uri",
        FEEDBACK_DATABASE_URL_ENV: "feedback-database-url",
        serving.auth.feedback_token_env: "feedback-token",
    }
    if serving.auth.protect_predictions:
        keys[serving.auth.prediction_token_env] = "prediction-token"
    if serving.prediction_log.personal_data == "hash":
        keys[serving.prediction_log.hash_key_env] = "log-hash-key"
    return keys


def add_secret_variables(document: dict[str, Any], settings: EnvironmentSettings, name: str) -> None:
    """Each variable from the Secret; a missing Secret or key keeps the pod from starting (fail closed)."""
    pod = document["spec"]["template"]["spec"]
    for container in pod["containers"]:
        # The service reads every key; the log shipper only reaches the tracking server.
        wanted = secret_keys(settings) if container is serving_container(pod) else SHIPPER_SECRET_KEYS
        container.setdefault("env", []).extend(
            {"name": variable, "valueFrom": {"secretKeyRef": {"name": name, "key": key, "optional": False}}}
            for variable, key in sorted(wanted.items())
        )


def serving_container(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod's service container (the other one ships its log)."""
    [container] = [each for each in pod["containers"] if each["name"] == APP]
    return container


def check_flags(
    environment: str, settings: EnvironmentSettings, release: Release, flags_text: str | None
) -> None:
    """The flags the pod gets are the file release.yaml records, byte for byte."""
    if (flags_text is None) != (release.flags is None) or (flags_text is None) != (settings.flags is None):
        raise ManifestError(
            f"flags of {environment}: the flag file's text, release.yaml's flags and "
            f"environments/{environment}.yaml's flags must be given together or not at all"
        )
    if flags_text is not None and release.flags is not None:
        digest = "sha256:" + hashlib.sha256(flags_text.encode("utf-8")).hexdigest()
        if digest != release.flags.digest:
            raise ManifestError(
                f"flags of {environment}: the text given has digest {digest}, release.yaml records "
                f"{release.flags.digest}"
            )


class _Dumper(yaml.SafeDumper):
    """Block scalars for multi-line text (release.yaml, flags), so a diff shows the changed line."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_text)


def dump(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096)
