"""Moved to `io.registry`; kept so that older imports keep working."""

from {{ cookiecutter.package_name }}.io.registry import *  # noqa: F403
from {{ cookiecutter.package_name }}.io.registry import (  # noqa: F401
    RegisteredVersion,
    Registry,
    directory_digest,
    session,
    source_revision,
)
