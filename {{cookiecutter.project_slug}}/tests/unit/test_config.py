from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.config import ProjectConfig, load_config
from {{ cookiecutter.package_name }}.errors import ConfigError

pytestmark = pytest.mark.unit


def write_config(directory: Path, document: dict) -> Path:
    path = directory / "project.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture
def document(project_config: ProjectConfig) -> dict:
    return project_config.model_dump(mode="json", exclude={"root"})


def test_project_file_declares_existing_data_and_environments(project_config: ProjectConfig) -> None:
    assert project_config.data_path.is_file()
    assert project_config.environments, "at least one environment is required"
    assert project_config.data.target not in project_config.data.features


def test_missing_key_is_named(document: dict, tmp_path: Path) -> None:
    del document["data"]["target"]
    with pytest.raises(ConfigError, match=r"data\.target: required key is missing"):
        load_config(write_config(tmp_path, document))


def test_misspelled_key_is_named(document: dict, tmp_path: Path) -> None:
    document["data"]["tagret"] = "income"
    with pytest.raises(ConfigError, match=r"data\.tagret: unknown key"):
        load_config(write_config(tmp_path, document))


def test_unknown_model_family_is_named(document: dict, tmp_path: Path) -> None:
    document["model"]["family"] = "xgboost"
    with pytest.raises(ConfigError, match=r"model\.family: .*hist_gradient_boosting"):
        load_config(write_config(tmp_path, document))


def test_test_size_outside_unit_interval_is_rejected(document: dict, tmp_path: Path) -> None:
    document["model"]["test_size"] = 1.5
    with pytest.raises(ConfigError, match=r"model\.test_size"):
        load_config(write_config(tmp_path, document))


@pytest.mark.parametrize(
    ("environments", "message"),
    [
        (["staging", "staging"], "listed more than once"),
        (["env/x"], "not a valid environment name"),
        ([], ""),
    ],
)
def test_bad_environment_lists_are_rejected(
    document: dict, tmp_path: Path, environments: list[str], message: str
) -> None:
    document["environments"] = environments
    with pytest.raises(ConfigError, match=rf"environments: .*{message}"):
        load_config(write_config(tmp_path, document))


def test_column_with_two_roles_is_rejected(document: dict, tmp_path: Path) -> None:
    document["data"]["ignore_columns"].append(document["data"]["numeric_features"][0])
    with pytest.raises(
        ConfigError,
        match=r"column '\w+' is listed in both data\.numeric_features|listed in both numeric_features",
    ):
        load_config(write_config(tmp_path, document))


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "project.yaml"
    path.write_text("name: demo\ndata: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+"):
        load_config(path)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "absent.yaml")


def test_relative_sqlite_store_lives_in_the_project(document: dict, tmp_path: Path) -> None:
    document["mlflow"]["tracking_uri"] = "sqlite:///store/mlflow.db"
    config = load_config(write_config(tmp_path, document))
    assert config.tracking_uri == f"sqlite:///{tmp_path.resolve() / 'store' / 'mlflow.db'}"


def test_environment_variable_overrides_tracking_uri(
    document: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    config = load_config(write_config(tmp_path, document))
    assert config.tracking_uri == "http://127.0.0.1:5000"


def test_feature_lists_may_be_omitted_to_infer_them(document: dict, tmp_path: Path) -> None:
    del document["data"]["numeric_features"]
    del document["data"]["categorical_features"]
    data = load_config(write_config(tmp_path, document)).data
    assert data.infers_features
    assert data.numeric_features == [] and data.categorical_features == []


def test_declared_feature_lists_are_not_inferred(project_config: ProjectConfig) -> None:
    assert not project_config.data.infers_features


def test_delimiter_defaults_to_a_comma(project_config: ProjectConfig) -> None:
    assert project_config.data.delimiter == ","


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_single_character_delimiter_is_accepted(document: dict, tmp_path: Path, delimiter: str) -> None:
    document["data"]["delimiter"] = delimiter
    assert load_config(write_config(tmp_path, document)).data.delimiter == delimiter


@pytest.mark.parametrize("delimiter", ["", ";;", '"', "\n"])
def test_unusable_delimiter_is_rejected(document: dict, tmp_path: Path, delimiter: str) -> None:
    document["data"]["delimiter"] = delimiter
    with pytest.raises(ConfigError, match=r"data\.delimiter: expected one character"):
        load_config(write_config(tmp_path, document))


def test_column_listed_twice_in_one_role_is_rejected(document: dict, tmp_path: Path) -> None:
    column = document["data"]["numeric_features"][0]
    document["data"]["numeric_features"].append(column)
    with pytest.raises(ConfigError, match=rf"column '{column}' is listed twice in numeric_features"):
        load_config(write_config(tmp_path, document))


def test_sensitive_feature_name_may_contain_a_slash(document: dict, tmp_path: Path) -> None:
    document["data"]["categorical_features"].append("race/ethnicity")
    document["data"]["sensitive_features"] = ["race/ethnicity"]
    assert load_config(write_config(tmp_path, document)).data.sensitive_features == ["race/ethnicity"]
