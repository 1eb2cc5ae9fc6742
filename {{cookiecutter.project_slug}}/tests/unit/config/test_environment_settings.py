"""environments/<env>.yaml as a typed model: defaults, limits, and errors that name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.config.environment import (
    EnvironmentSettings,
    environment_name_problem,
    load_environment,
)
from {{ cookiecutter.package_name }}.config.schemas import SCHEMAS_DIR, stale_schemas
from {{ cookiecutter.package_name }}.errors import ConfigError

pytestmark = pytest.mark.unit

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def write_settings(root: Path, text: str, name: str = "staging") -> None:
    (root / "environments").mkdir(exist_ok=True)
    (root / "environments" / f"{name}.yaml").write_text(text, encoding="utf-8")


def test_every_generated_environment_file_loads_and_says_what_the_model_defaults_to() -> None:
    files = sorted((PROJECT_ROOT / "environments").glob("*.yaml"))
    assert files, "the project has one settings file per environment"
    for path in files:
        settings = load_environment(PROJECT_ROOT, path.stem)
        # The generated file spells every default out, so a reader sees what applies; it names the
        # environment's own flag file.
        assert settings == EnvironmentSettings(flags=Path(f"flags/{path.stem}.flagd.json")), path.name
        assert (PROJECT_ROOT / settings.flags).is_file(), path.name
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert set(document) == set(EnvironmentSettings.model_fields), path.name


def test_generated_environment_files_point_editors_at_the_published_schema() -> None:
    for path in (PROJECT_ROOT / "environments").glob("*.yaml"):
        first_line = path.read_text(encoding="utf-8").splitlines()[0]
        assert first_line == f"# yaml-language-server: $schema=../{SCHEMAS_DIR}/environment.schema.json"
        assert (PROJECT_ROOT / SCHEMAS_DIR / "environment.schema.json").is_file()


def test_published_schemas_equal_the_models() -> None:
    assert stale_schemas(PROJECT_ROOT) == []


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("rollout:\n  strategy: blue-green\n", "rollout.strategy", "'direct', 'canary', 'shadow' or 'ab'"),
        ("rollout:\n  challenger_weight: 140\n", "rollout.challenger_weight", "less than or equal to 100"),
        ("rollout:\n  steps: [50, 10]\n", "rollout.steps", "strictly increase"),
        ("rollout:\n  steps: [10, 150]\n", "rollout.steps", "150 is not a percentage"),
        ("serving:\n  workers: 0\n", "serving.workers", "greater than or equal to 1"),
        ("autoscaling:\n  min_replicas: 4\n  max_replicas: 2\n", "autoscaling", "below min_replicas"),
        ("resources:\n  cpu: lots\n", "resources.cpu", "should match pattern"),
        ("replicas: 2\n", "replicas", "unknown key"),
    ],
)
def test_invalid_settings_are_refused_at_load_naming_file_and_key(
    tmp_path: Path, text: str, key: str, expected: str
) -> None:
    write_settings(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_environment(tmp_path, "staging")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'environments' / 'staging.yaml'}: {key}: "), message
    assert expected in message


def test_missing_settings_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"environments/qa\.yaml: file not found"):
        load_environment(tmp_path, "qa")


def test_partial_settings_keep_the_other_defaults(tmp_path: Path) -> None:
    write_settings(tmp_path, "rollout:\n  strategy: canary\n  challenger_weight: 10\n")
    settings = load_environment(tmp_path, "staging")
    assert (settings.rollout.strategy, settings.rollout.challenger_weight) == ("canary", 10)
    assert settings.serving == EnvironmentSettings().serving


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("staging", None),
        ("prod-eu-1", None),
        ("Prod", "not a valid environment name"),
        ("-prod", "not a valid environment name"),
        ("prod-", "not a valid environment name"),
        ("a" * 31, "not a valid environment name"),
        ("v2", "collides with an MLflow alias"),
        ("latest", "collides with an MLflow alias"),
        ("eu-challenger", "collides with an MLflow alias"),
    ],
)
def test_environment_name_rule(name: str, problem: str | None) -> None:
    found = environment_name_problem(name)
    assert (found is None) if problem is None else (problem in found)


def test_the_installed_thresholds_point_editors_at_their_published_schema() -> None:
    first_line = (PROJECT_ROOT / "policies" / "thresholds.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first_line == f"# yaml-language-server: $schema=../{SCHEMAS_DIR}/thresholds.schema.json"
    assert (PROJECT_ROOT / SCHEMAS_DIR / "thresholds.schema.json").is_file()
