"""Every file the project reads, as typed and validated settings: the only place files are parsed."""

from {{ cookiecutter.package_name }}.config.project import (
    DEFAULT_CONFIG_FILE,
    ENVIRONMENT_NAME,
    DataConfig,
    GovernanceConfig,
    MlflowConfig,
    ModelConfig,
    ModelFamily,
    ProjectConfig,
    load_config,
)

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ENVIRONMENT_NAME",
    "DataConfig",
    "GovernanceConfig",
    "MlflowConfig",
    "ModelConfig",
    "ModelFamily",
    "ProjectConfig",
    "load_config",
]
