"""A throwaway PostgreSQL server (Debian's ``postgresql``) on loopback, and its fixtures.

``postgres_server`` (one per test session) runs ``initdb`` and ``postgres`` in
a temporary directory, as ``nobody`` when the tests run as root (PostgreSQL
refuses root), with trust authentication on 127.0.0.1 only. ``postgres_url``
gives each test a fresh, empty database as an SQLAlchemy URL
(``postgresql+psycopg://``). When the server binaries are missing the fixtures
fail in CI (``CI`` set) and skip elsewhere, with the install advice.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Self

import pytest

from .loopback import LoopbackServer

__all__ = [
    "PostgresServer",
    "PostgresUnavailableError",
    "find_postgres_bin",
    "postgres_server",
    "postgres_url",
]

INSTALL_ADVICE = "install Debian's PostgreSQL server: apt-get install -y postgresql"
_UNPRIVILEGED_USER = "nobody"


class PostgresUnavailableError(RuntimeError):
    """The PostgreSQL server binaries are missing or the server did not start."""


def find_postgres_bin() -> Path:
    """The directory holding ``initdb`` and ``postgres`` (the newest Debian version)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).parent)
    for directory in reversed(candidates):
        if (directory / "initdb").exists() and (directory / "postgres").exists():
            return directory
    raise PostgresUnavailableError(
        f"PostgreSQL's initdb and postgres were not found; {INSTALL_ADVICE}"
    )


class PostgresServer(LoopbackServer):
    """One ``postgres`` process with its own data directory; ``stop()`` removes both.

    :attr:`url` is the SQLAlchemy URL of its ``postgres`` database.
    """

    scheme = "postgresql+psycopg"

    def __init__(self, bin_dir: Path | None = None) -> None:
        super().__init__()
        self.bin_dir = bin_dir or find_postgres_bin()
        self.reserve_port()
        self._start_timeout = 60.0
        self.workdir = Path(tempfile.mkdtemp(prefix="lsst-spawner-pg-"))
        self.data_dir = self.workdir / "data"
        self._process: subprocess.Popen[bytes] | None = None
        self._names = count(1)

    def _owner(self) -> tuple[int | None, int | None]:
        """The uid and gid to run PostgreSQL as: ``nobody`` when running as root."""
        if os.geteuid() != 0:
            return None, None
        user = pwd.getpwnam(_UNPRIVILEGED_USER)
        os.chown(self.workdir, user.pw_uid, user.pw_gid)
        return user.pw_uid, user.pw_gid

    def start(self, timeout: float = 60.0) -> Self:
        self._start_timeout = timeout
        return super().start()

    def _serve(self) -> None:
        timeout = self._start_timeout
        uid, gid = self._owner()
        groups: list[int] | None = [] if uid is not None else None
        log = self.workdir / "postgres.log"
        initdb: list[str | Path] = [
            self.bin_dir / "initdb",
            "-D",
            self.data_dir,
            "-A",
            "trust",
            "-U",
            "postgres",
        ]
        subprocess.run(
            [*initdb, "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            cwd=self.workdir,
            user=uid,
            group=gid,
            extra_groups=groups,
        )
        options: list[str | Path] = [
            "-k",
            self.workdir,
            "-p",
            str(self.port),
            "-h",
            self.host,
            "-F",
        ]
        with open(log, "wb") as out:
            if uid is not None and gid is not None:
                os.chown(log, uid, gid)
            self._process = subprocess.Popen(
                [self.bin_dir / "postgres", "-D", self.data_dir, *options],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                user=uid,
                group=gid,
                extra_groups=groups,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise PostgresUnavailableError(f"postgres exited: {log.read_text()[-2000:]}")
            try:
                self._connect("postgres").close()
                return
            except Exception:
                if time.monotonic() > deadline:
                    self._close()
                    raise PostgresUnavailableError("postgres did not accept connections") from None
                time.sleep(0.2)

    def _connect(self, database: str):
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user="postgres",
            dbname=database,
            autocommit=True,
            connect_timeout=5,
        )

    def create_database(self) -> str:
        """Create a new empty database; returns its SQLAlchemy URL."""
        name = f"test_{next(self._names)}"
        with self._connect("postgres") as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this server."""
        return f"{self.scheme}://postgres@{self.host_port}/{database}"

    def _close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()  # smart shutdown
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        shutil.rmtree(self.workdir, ignore_errors=True)


def _unavailable(error: Exception) -> None:
    message = f"PostgreSQL is needed for this test: {error}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session."""
    try:
        server = PostgresServer()
        server.start()
    except (PostgresUnavailableError, subprocess.CalledProcessError, KeyError) as error:
        _unavailable(error)
        raise  # unreachable: pytest.fail/skip raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty PostgreSQL database for one test, as an SQLAlchemy URL."""
    return postgres_server.create_database()
