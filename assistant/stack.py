"""Start, health-check and stop the assistant's processes: NLU service, action server, Rasa server.

Each service logs to ``var/logs/<name>.log``; a service that does not become healthy in time
stops the whole start with the tail of its log. Stopping sends SIGTERM to each process group,
then SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from assistant.rasa_files import latest_rasa_model, write_endpoints
from assistant.settings import Settings
from assistant.tasks.wiring import uses_celery


class StackError(RuntimeError):
    pass


@dataclass
class ServiceSpec:
    name: str
    argv: list[str]
    host: str
    port: int
    health_path: str
    env: dict[str, str] = field(default_factory=dict)
    ready_file: Path | None = None   # services without a port (workers) signal readiness with a file

    @property
    def health_url(self) -> str:
        if self.ready_file is not None:
            return str(self.ready_file)
        if not self.port:
            return "(process alive)"
        return f"http://{self.host}:{self.port}{self.health_path}"

    def healthy(self, client: httpx.Client) -> bool:
        if self.ready_file is not None:
            return self.ready_file.is_file()
        if not self.port:       # a client of someone else's server (Slack Socket Mode): running is all it shows
            return True
        try:
            return client.get(self.health_url).status_code == 200
        except httpx.HTTPError:
            return False


def rasa_env() -> dict[str, str]:
    return {"RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2", "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "PYTHONWARNINGS": "ignore"}


def preflight(settings: Settings, need_rasa: bool = True) -> list[str]:
    """Everything that must exist before starting; each problem says how to fix it."""
    problems = []
    if not (settings.nlu_model_dir / "meta.json").is_file():
        problems.append(f"NLU model not trained ({settings.nlu_model_dir}): run `scripts/setup.sh` "
                        "or `.venv/bin/assistant train-nlu`")
    from assistant.knowledge.retrieval import index_dir

    if not (index_dir(settings) / "manifest.json").is_file():
        problems.append(f"knowledge base not ingested ({index_dir(settings)} missing): run `.venv/bin/assistant ingest`")
    if need_rasa:
        if not settings.rasa_bin().is_file():
            problems.append(f"Rasa is not installed at {settings.rasa_venv}: run `scripts/setup.sh`")
        if latest_rasa_model(settings) is None:
            problems.append(f"Rasa model not trained ({settings.rasa_model_dir}): run "
                            "`.venv/bin/assistant train-dialogue`")
    return problems


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def service_specs(settings: Settings, include_rasa: bool = True, include_web: bool = False) -> list[ServiceSpec]:
    py = sys.executable
    env = {"PYTHONUNBUFFERED": "1"}
    specs = [
        ServiceSpec("nlu", [py, "-m", "assistant", "serve-nlu"], settings.nlu_host, settings.nlu_port, "/health", env),
        ServiceSpec("actions", [py, "-m", "assistant", "serve-actions"], settings.action_host, settings.action_port,
                    "/health", env),
    ]
    if uses_celery(settings):
        specs.append(worker_spec(settings))
    if include_rasa:
        specs.append(ServiceSpec(
            "rasa",
            [str(settings.rasa_bin()), "run", "--enable-api", "--model", str(latest_rasa_model(settings)),
             "--endpoints", str(write_endpoints(settings)), "--credentials", str(settings.root_dir / "credentials.yml"),
             "--interface", settings.rasa_host, "--port", str(settings.rasa_port), "--cors", "*"]
            + (["--auth-token", settings.rasa_api_token] if settings.rasa_api_token else []),
            settings.rasa_host, settings.rasa_port, "/status", rasa_env(),
        ))
    channels = settings.enabled_channels() if include_rasa else []
    if channels and (settings.slack_signing_secret or set(channels) - {"slack"}):
        specs.append(ServiceSpec("channels", [py, "-m", "assistant", "serve-channels"], settings.channels_host,
                                 settings.channels_port, "/health", env))
    if "slack" in channels and settings.slack_app_token:
        specs.append(ServiceSpec("slack", [py, "-m", "assistant", "serve-slack-socket"], "", 0, "", env))
    if include_web:
        specs.append(ServiceSpec("web", [py, "-m", "assistant", "serve-web"], settings.web_host, settings.web_port,
                                 "/health", env))
    return specs


def worker_spec(settings: Settings, name: str = "answers") -> ServiceSpec:
    """A Celery worker for answer jobs; ready once its pool has loaded the generator."""
    from assistant.tasks.celery_app import ready_file

    flag = ready_file(settings, name)
    return ServiceSpec(f"worker-{name}" if name != "answers" else "worker",
                       [sys.executable, "-m", "assistant", "serve-worker", "--name", name],
                       "", 0, "", {"PYTHONUNBUFFERED": "1"}, ready_file=flag)


@dataclass
class Running:
    spec: ServiceSpec
    process: subprocess.Popen
    log_path: Path
    ready_s: float = 0.0


class Stack:
    def __init__(self, settings: Settings, specs: list[ServiceSpec]):
        self.settings = settings
        self.specs = specs
        self.running: list[Running] = []

    def _tail(self, path: Path, lines: int = 25) -> str:
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_tails(self, lines: int = 15) -> str:
        """The last lines of every running service's log (for an error message)."""
        return "\n".join(f"--- {r.log_path}\n{self._tail(r.log_path, lines)}" for r in self.running)

    def _wait_healthy(self, r: Running, deadline: float) -> None:
        started = time.monotonic()
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if r.process.poll() is not None:
                    raise StackError(f"{r.spec.name} exited with code {r.process.returncode} while starting. "
                                     f"Last lines of {r.log_path}:\n{self._tail(r.log_path)}")
                if r.spec.healthy(client):
                    r.ready_s = time.monotonic() - started
                    return
                time.sleep(0.3)
        raise StackError(f"{r.spec.name} was not healthy at {r.spec.health_url} after "
                         f"{self.settings.startup_timeout_s:.0f} s. Last lines of {r.log_path}:\n{self._tail(r.log_path)}")

    def start(self, echo=print) -> None:
        self.settings.log_dir.mkdir(parents=True, exist_ok=True)
        busy = [f"{s.name} port {s.port}" for s in self.specs if s.port and port_in_use(s.host, s.port)]
        if busy:
            raise StackError(f"ports already in use: {', '.join(busy)}. Stop what runs there "
                             "(another `assistant up`?) or set ASSISTANT_*_PORT")
        env_base = {**os.environ, **{f"ASSISTANT_{k.upper()}": str(v) for k, v in self._settings_env().items()}}
        try:
            for spec in self.specs:
                if spec.ready_file is not None:  # a file left by a process that died is no sign of life
                    spec.ready_file.unlink(missing_ok=True)
                log_path = self.settings.log_dir / f"{spec.name}.log"
                log = log_path.open("w")
                proc = subprocess.Popen(spec.argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.settings.root_dir,
                                        env={**env_base, **spec.env}, start_new_session=True)
                log.close()
                running = Running(spec, proc, log_path)
                self.running.append(running)
                self._wait_healthy(running, time.monotonic() + self.settings.startup_timeout_s)
                echo(f"  {spec.name:8s} ready in {running.ready_s:5.1f} s  {spec.health_url}  (log: {log_path})")
        except BaseException:
            self.stop()
            raise

    def _settings_env(self) -> dict:
        """Pass explicitly-set settings on to child processes."""
        return {k: v for k, v in self.settings.model_dump(exclude_unset=True).items() if v is not None}

    def stop(self, grace_s: float = 10.0) -> None:
        for r in reversed(self.running):
            if r.process.poll() is None:
                try:
                    os.killpg(r.process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace_s
        for r in reversed(self.running):
            try:
                r.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(r.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                r.process.wait(timeout=5)
        self.running.clear()

    def __enter__(self) -> "Stack":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
