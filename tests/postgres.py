"""A throwaway PostgreSQL server for the tests that must also hold on PostgreSQL.

SQLite serialises writers, so races that PostgreSQL lets through (two workers fulfilling
one order, two deliveries of one event) are only really tested there. The server runs
from the machine's own PostgreSQL binaries in a temporary folder, on a Unix socket only.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _as_server_user(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; run it as the packaged "postgres" user instead.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@contextlib.contextmanager
def throwaway_server() -> Iterator[str]:
    """Start PostgreSQL in a temporary folder; yields a URL for its "postgres" database.

    Raises FileNotFoundError when the server binaries (initdb, pg_ctl) are not installed.
    Also used by the benchmarks (bench/).
    """
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    root = Path(tempfile.mkdtemp(prefix="storefront-pg-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run(
        _as_server_user([initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses='' -k {sockets} -c fsync=off -c max_connections=50"
    subprocess.run(
        _as_server_user(
            [pg_ctl, "-D", str(data), "-o", options, "-w", "-l", str(root / "log"), "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@/postgres?host={sockets}"
    finally:
        subprocess.run(
            _as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server for the session; yields a URL for its "postgres" database.

    ``TEST_POSTGRES_URL`` points the tests at a server of your own instead.
    """
    own = os.environ.get("TEST_POSTGRES_URL")
    if own:
        yield own
        return
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_server())
        except FileNotFoundError as err:
            pytest.skip(str(err))
        yield url


# Databases made by this process get its id in their names, so workers sharing one server
# (``TEST_POSTGRES_URL``) never meet.
_names = itertools.count()


def _engine(url: str):
    return create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )


def create_database(server_url: str, template: str = "template0") -> str:
    """A new database on the server, a copy of ``template`` (empty by default); returns
    its URL. Copying a small database's files takes a few milliseconds, where creating and
    seeding the shop's tables took a few hundred."""
    name = f"storefront_{os.getpid()}_{next(_names)}"
    # FILE_COPY: the template's files are copied, not replayed through the WAL.
    _on_server(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, url: str) -> None:
    """Drop a database made by ``create_database`` (closing whatever is still connected)."""
    _on_server(server_url, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def _on_server(server_url: str, statement: str) -> None:
    """Run one statement (outside a transaction, as CREATE/DROP DATABASE need) on the server."""
    engine = _engine(server_url)
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_seeded(postgres_server: str) -> Iterator[str]:
    """The name of a database with the shop's tables and seed data, made once per test
    process for ``seeded_postgres_url`` to copy."""
    from storefront import create_app
    from storefront.extensions import db
    from tests.conftest import TEST_CONFIG, _create_and_seed

    url = create_database(postgres_server)
    app = create_app(dict(TEST_CONFIG, DATABASE_URL=url))
    with app.app_context():
        _create_and_seed()
        db.session.remove()
        db.engine.dispose()
    yield make_url(url).database
    drop_database(postgres_server, url)


@pytest.fixture
def seeded_postgres_url(postgres_server: str, postgres_seeded: str) -> Iterator[str]:
    """A database of its own for the test, created and seeded as ``make_app`` leaves one."""
    url = create_database(postgres_server, template=postgres_seeded)
    yield url
    drop_database(postgres_server, url)


@pytest.fixture
def empty_postgres_url(postgres_server: str) -> Iterator[str]:
    """An empty database of its own for the test (for migrations)."""
    url = create_database(postgres_server)
    yield url
    drop_database(postgres_server, url)
