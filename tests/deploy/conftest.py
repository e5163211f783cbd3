"""A real PostgreSQL for the deployment tests, and Dagster instances built from deploy/dagster.yaml.

The server is a throwaway cluster (`initdb` + `pg_ctl` from Debian's `postgresql` package) on a
free loopback port; it asks for a password (scram-sha-256), so the Dagster config's credentials
really travel through the environment. PostgreSQL refuses to run as root: when the tests run as
root, the cluster runs as the `postgres` system user the Debian package creates, in a directory
that user owns. Without the binaries the tests fail, unless BUDGET_PIPELINE_ALLOW_NO_POSTGRES=1
lets them skip.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"

SKIP_ENV = "BUDGET_PIPELINE_ALLOW_NO_POSTGRES"  # =1: skip when the binaries are absent

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them "
    "(Debian/Ubuntu: apt-get install -y postgresql; .ci/run does) or set "
    f"{SKIP_ENV}=1 to skip these tests."
)


def find_bindir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, else Debian's /usr/lib/postgresql/<major>/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    candidates = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for bindir in reversed(candidates):
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    bindir: Path
    root: Path
    port: int
    user: str = "dagster"
    password: str = ""
    database: str = "dagster"

    @property
    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self._as_root else list(args)

    def env(self) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads."""
        return {
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": self.database,
        }

    def connect(self, database: str | None = None):
        return psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.database,
        )

    def start(self) -> None:
        data = self.root / "data"
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self._as_root:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "tests run as root, and PostgreSQL refuses root: it needs the `postgres` "
                    "system user, which Debian's postgresql package creates"
                ) from None
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run(
            self._cmd(
                str(self.bindir / "initdb"), "-D", str(data), "-U", self.user,
                f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=trust",
                "-E", "UTF8", "--no-sync",
            ),
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            # a throwaway cluster: durability costs time and proves nothing here
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            self._cmd(
                str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.root / "log"),
                "-w", "-t", "30", "-o", options, "start",
            ),
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        con = self.connect("postgres")
        try:
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            con.close()

    def stop(self) -> None:
        subprocess.run(
            self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop"),
            capture_output=True,
        )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "log"
        return path.read_text() if path.exists() else ""


def start_server(bindir: Path) -> PostgresServer:
    """Start a fresh cluster; its directory is owned by whoever runs the server."""
    # /tmp itself, not pytest's tmp_path: pytest's directories are 0700 and owned by the test
    # user, which the `postgres` user could not enter.
    root = Path(tempfile.mkdtemp(prefix="budget_pipeline_pg_"))
    server = PostgresServer(bindir, root, _free_port(), password=secrets.token_hex(16))
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        log = server.log()
        server.stop()
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{log}") from exc
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def pg_server():
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get(SKIP_ENV) == "1":
            pytest.skip(INSTALL_HINT)
        pytest.fail(INSTALL_HINT)
    server = start_server(bindir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg(pg_server):
    """A fresh database on the session's server for each test, so counts are exact."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    con = pg_server.connect("postgres")
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        con.close()
    return dataclasses.replace(pg_server, database=name)


@pytest.fixture
def deploy_home(tmp_path, pg, monkeypatch) -> Path:
    """A DAGSTER_HOME holding deploy/dagster.yaml verbatim, its variables pointing at ``pg``."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    for key, value in pg.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture
def deploy_instance(deploy_home):
    instance = dg.DagsterInstance.from_config(str(deploy_home))
    try:
        yield instance
    finally:
        instance.dispose()
