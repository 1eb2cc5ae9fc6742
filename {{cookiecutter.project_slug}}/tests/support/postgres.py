"""A real PostgreSQL server for the tests: `initdb` into a temporary directory, `pg_ctl start`, stop after.

The server listens only on a Unix socket inside its own directory (no TCP), under a free port number,
with `trust` authentication for its one superuser: nothing outside the test can reach it. Each test
gets a database of its own (`PostgresServer.create_database`).

Debian keeps the server binaries off PATH (/usr/lib/postgresql/<major>/bin); `PG_BINDIR` names another
directory. Without binaries the tests skip, with the reason, unless `REQUIRE_POSTGRES=1` (CI), which
makes a missing server a failure. PostgreSQL refuses to run as root: under root (a CI container) the
server runs as the `postgres` user the Debian package creates.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER = "mlops"
_database_numbers = itertools.count(1)


def server_binaries() -> Path | None:
    """The directory holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    candidates = [os.environ.get("PG_BINDIR", "")]
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(str(Path(found).parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major_version, reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    return None


def _major_version(path: str) -> int:
    name = Path(path).parent.name
    return int(name) if name.isdigit() else 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class PostgresServer:
    """A running server: its socket directory and port, and how to reach a database in it."""

    directory: Path
    port: int
    run_as: list[str]
    binaries: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.directory}&port={self.port}"

    def create_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"test_{os.getpid()}_{next(_database_numbers)}"
        with psycopg.connect(
            host=str(self.directory), port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            [
                *self.run_as,
                str(self.binaries / "pg_ctl"),
                "stop",
                "-D",
                str(self.directory / "data"),
                "-m",
                "immediate",
                "-w",
            ],
            capture_output=True,
            check=False,
        )


def run_as_arguments() -> tuple[list[str], tuple[int, int] | None]:
    """The command prefix and (uid, gid) to run the server with: ourselves, or `postgres` under root."""
    if os.geteuid() != 0:
        return [], None
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root and there is no 'postgres' user to run PostgreSQL as")
    return ["runuser", "-u", "postgres", "--"], (account.pw_uid, account.pw_gid)


def start_server() -> PostgresServer:
    binaries = server_binaries()
    if binaries is None:
        message = (
            "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's `postgresql` "
            "package or set PG_BINDIR"
        )
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(message + " (REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    run_as, owner = run_as_arguments()
    directory = Path(tempfile.mkdtemp(prefix="pg-"))
    if owner is not None:
        os.chown(directory, *owner)
    port = free_port()
    data = directory / "data"
    steps = [
        [
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ],
        [
            str(binaries / "pg_ctl"),
            "start",
            "-D",
            str(data),
            "-w",
            "-t",
            "60",
            "-l",
            str(directory / "log"),
            "-o",
            f"-p {port} -k {directory} -c listen_addresses='' -c fsync=off",
        ],
    ]
    for command in steps:
        result = subprocess.run([*run_as, *command], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = (directory / "log").read_text() if (directory / "log").exists() else ""
            shutil.rmtree(directory, ignore_errors=True)
            pytest.fail(f"{Path(command[0]).name} failed: {result.stdout}{result.stderr}{log}")
    return PostgresServer(directory, port, run_as, binaries)


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A server for the `with` block, stopped and its directory deleted at its end."""
    server = start_server()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)
