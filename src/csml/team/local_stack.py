"""The team stack without Docker, for tests and laptops: a PostgreSQL cluster (databases for MLflow and
Optuna) and an MLflow tracking server on it, on 127.0.0.1.

    python -m csml.team.local_stack up --dir /tmp/csml-stack     # prints the URLs and the env to export
    python -m csml.team.local_stack down --dir /tmp/csml-stack

The password comes from the environment variable ``CSML_PG_PASSWORD`` (generated and written to
``<dir>/env`` when unset). PostgreSQL refuses to run as root: as root the cluster runs as the ``postgres``
user. deploy/compose.yaml is the same stack for a team, with Docker.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PASSWORD_ENV = "CSML_PG_PASSWORD"
USER = "csml"
DATABASES = ("mlflow", "optuna")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bin(name: str) -> str:
    """Path of a PostgreSQL program (``$PG_BIN``, PATH, or Debian's /usr/lib/postgresql/<v>/bin)."""
    candidates = [Path(os.environ["PG_BIN"]) / name] if "PG_BIN" in os.environ else []
    found = shutil.which(name)
    candidates += [Path(found)] if found else []
    candidates += sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    for path in candidates:
        if path.is_file():
            return str(path)
    raise FileNotFoundError(f"PostgreSQL program {name!r} not found: install postgresql or set PG_BIN")


class LocalPostgres:
    """A throw-away PostgreSQL cluster in ``root`` listening on 127.0.0.1:``port`` with password auth.

    Args:
        root: Folder for the cluster (created; as root it is handed to the ``postgres`` user).
        password: Password of the ``csml`` superuser.
        port: TCP port (a free one by default).
    """

    def __init__(self, root: Path, password: str, port: int | None = None) -> None:
        self.root = Path(root)
        self.data = self.root / "pgdata"
        self.password = password
        self.port = port or free_port()
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self.run_as, *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self) -> LocalPostgres:
        """initdb (first time only), start the server and create the ``mlflow`` and ``optuna`` databases."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            shutil.chown(self.root, "postgres", "postgres")
        if not (self.data / "PG_VERSION").is_file():
            pwfile = self.root / "pwfile"
            pwfile.write_text(self.password)
            if self.run_as:
                shutil.chown(pwfile, "postgres", "postgres")
            pwfile.chmod(0o600)
            try:
                self._run(
                    pg_bin("initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    USER,
                    f"--pwfile={pwfile}",
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                )
            finally:
                pwfile.unlink()
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "postgres.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        for name in DATABASES:
            self.create_database(name)
        return self

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres", driver=""), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')

    def url(self, database: str, driver: str = "+psycopg", with_password: bool = True) -> str:
        """``postgresql+psycopg://csml:<password>@127.0.0.1:<port>/<database>`` (SQLAlchemy URL)."""
        auth = f"{USER}:{self.password}" if with_password else USER
        scheme = f"postgresql{driver}" if driver else "postgresql"
        return f"{scheme}://{auth}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").is_file():
            self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


class LocalMlflowServer:
    """``mlflow server`` with a PostgreSQL backend store and an artifact folder, in its own process group."""

    def __init__(self, backend_uri: str, artifacts: Path, log_file: Path, port: int | None = None) -> None:
        self.backend_uri, self.artifacts, self.log_file = backend_uri, Path(artifacts), Path(log_file)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> LocalMlflowServer:
        import httpx

        self.artifacts.mkdir(parents=True, exist_ok=True)
        mlflow = str(Path(sys.executable).with_name("mlflow"))
        # The store URI (it holds the password) goes through the environment, not the visible command line.
        env = {
            **os.environ,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_BACKEND_STORE_URI": self.backend_uri,
        }
        command = [
            mlflow,
            "server",
            "--artifacts-destination",
            str(self.artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({self.process.returncode}); see {self.log_file}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        self.stop()
        raise TimeoutError(f"mlflow server not healthy after {timeout:.0f} s; see {self.log_file}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/csml-team-stack"))
    parser.add_argument("--pg-port", type=int, default=55432)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    args = parser.parse_args(argv)
    env_file = args.dir / "env"
    if args.action == "down":
        pid_file = args.dir / "mlflow.pid"
        if pid_file.is_file():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid_file.read_text()), signal.SIGTERM)
            pid_file.unlink()
        LocalPostgres(args.dir / "postgres", password="", port=args.pg_port).stop()
        print(f"stopped the stack in {args.dir}")
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    password = os.environ.get(PASSWORD_ENV) or secrets.token_urlsafe(18)
    pg = LocalPostgres(args.dir / "postgres", password=password, port=args.pg_port).start()
    server = LocalMlflowServer(
        pg.url("mlflow"), args.dir / "mlartifacts", args.dir / "mlflow.log", port=args.mlflow_port
    ).start()
    (args.dir / "mlflow.pid").write_text(str(server.process.pid))
    env_file.write_text(f"export {PASSWORD_ENV}={password}\nexport MLFLOW_TRACKING_URI={server.url}\n")
    env_file.chmod(0o600)
    print(f"PostgreSQL on 127.0.0.1:{pg.port} (databases {', '.join(DATABASES)}, user {USER})")
    print(f"MLflow server on {server.url} (backend store: PostgreSQL; artifacts: {args.dir / 'mlartifacts'})")
    print(f"source {env_file}, then:")
    print("  csml sweep experiment=intent_banking77 hparams_search=optuna tracking=server \\")
    print(f"    hparams_search.storage.url=postgresql+psycopg://{USER}@127.0.0.1:{pg.port}/optuna \\")
    print(f"    hparams_search.storage.password_env={PASSWORD_ENV}")


if __name__ == "__main__":
    main()
