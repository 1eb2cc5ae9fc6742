"""One exception type per failure family; the CLI turns each into a one-line message and an exit code."""


class ProjectError(Exception):
    """An expected failure with a message a user can act on."""


class ConfigError(ProjectError):
    """project.yaml is missing, unreadable or holds an invalid value."""


class DataValidationError(ProjectError):
    """The data file does not match what project.yaml declares."""


class RegistryError(ProjectError):
    """The MLflow tracking server or model registry refused or could not answer a request."""
