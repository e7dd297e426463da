"""Real third-party servers on 127.0.0.1, started once per test session on free ports.

- **LiteLLM proxy** (its own venv): models answering with `mock_response` over the OpenAI
  (`/v1/chat/completions`), Anthropic (`/v1/messages`) and Gemini (`/v1beta/...:generateContent`)
  protocols, behind a master key.
- **nginx** (Debian nginx-light and its echo module) in front of LiteLLM, injecting faults by path
  (see `nginx.conf.template`); its access log, one JSON object per request with the body and
  millisecond times, is how the tests count what reached the server and when.
- **transformers serve** (its own venv, CPU torch) on a tiny GPT-2 trained locally.
- **The official SDKs** (`openai`, `anthropic`, `google-genai`, their own venv): `CRUCIBLE_SDK_PYTHON`.

`scripts/real-servers.sh install` makes the venvs under `CRUCIBLE_REAL_SERVERS_HOME` (default
`~/.cache/crucible-ci/real-servers`). Without them these tests skip, saying so; with
`CRUCIBLE_REQUIRE_REAL_SERVERS=1` (as in CI) they fail instead.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

import pytest

from crucible_core.models import (
    AnthropicModel,
    GeminiModel,
    HTTPModel,
    OpenAIModel,
    Request,
    build_model,
)

HERE = Path(__file__).parent
HOME = Path(
    os.environ.get("CRUCIBLE_REAL_SERVERS_HOME")
    or Path.home() / ".cache" / "crucible-ci" / "real-servers"
)
REQUIRE = os.environ.get("CRUCIBLE_REQUIRE_REAL_SERVERS") == "1"
HOW_TO = (
    "run `scripts/real-servers.sh install` (CI does, and sets CRUCIBLE_REQUIRE_REAL_SERVERS=1 "
    "so that these tests fail rather than skip)"
)
MOCK_TEXT = "Paris is the capital of France."
"""What every LiteLLM mock model answers."""
MODELS = {"openai": "mock-gpt", "anthropic": "claude-mock", "gemini": "gemini-mock"}
"""The LiteLLM model name each protocol is tested with."""
PRICED = {"gpt-4o-mini": 1500, "gpt-4o-mini-2024-07-18": 200}
"""LiteLLM mocks under real models' names, and the output tokens each reports: LiteLLM prices them
from its own cost map (the `x-litellm-response-cost` header nginx logs), crucible from its pricing
table. 1500 is more than the 512 output tokens a guess would reserve, less than `max_tokens`."""
READY_TIMEOUT = 240.0
ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")


def unavailable(message: str) -> NoReturn:
    """Skip, or fail under CRUCIBLE_REQUIRE_REAL_SERVERS=1."""
    if REQUIRE:
        pytest.fail(f"CRUCIBLE_REQUIRE_REAL_SERVERS=1 but {message}", pytrace=False)
    pytest.skip(f"{message}; {HOW_TO}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Process:
    """A server process with its output in a log file; `stop()` ends its whole process group."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        log: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.log_path = log
        self._log: IO[bytes] = log.open("wb")
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=log.parent,
            start_new_session=True,
        )

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def wait_ready(self, url: str, *, headers: dict[str, str] | None = None) -> float:
        """Poll `url` until it answers 2xx; the seconds it took. Fails if the process exits."""
        start = time.monotonic()
        while time.monotonic() - start < READY_TIMEOUT:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"{self.name} exited with {self.proc.returncode} before answering {url}:\n"
                    f"{self.tail()}",
                    pytrace=False,
                )
            try:
                request = urllib.request.Request(url, headers=headers or {})
                with urllib.request.urlopen(request, timeout=5) as response:
                    if 200 <= response.status < 300:
                        return time.monotonic() - start
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.25)
        pytest.fail(
            f"{self.name} did not answer {url} within {READY_TIMEOUT} s:\n{self.tail()}",
            pytrace=False,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


@dataclass
class LiteLLM:
    url: str
    key: str
    process: Process
    mock_text: str = MOCK_TEXT
    """What its mock models answer."""
    priced: dict[str, int] = field(default_factory=lambda: dict(PRICED))
    """Its mocks priced as real models, and the output tokens each reports."""


@dataclass
class Entry:
    """One request as nginx logged it."""

    uri: str
    status: int
    end: float
    """When nginx finished it (Unix seconds, millisecond resolution)."""
    request_time: float
    """nginx's own measure: first byte read to last byte sent, in seconds."""
    body: str
    headers: dict[str, str]
    """The Retry-After sent, and the key headers received (only what the log records)."""
    cost: float | None = None
    """What LiteLLM charged for it (its `x-litellm-response-cost`), when it answered."""

    @property
    def start(self) -> float:
        """When nginx received it."""
        return self.end - self.request_time

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def tag(self) -> str | None:
        """The tag of the request (see `ask`) in the body, if nginx read one."""
        found = _TAG.search(self.body)
        return found.group(1) if found else None


_TAG = re.compile(r"\[([0-9a-f]{12})\]")


def _ask(question: str = "What is the capital of France?") -> tuple[str, Request]:
    tag = secrets.token_hex(6)
    return tag, Request(prompt=f"[{tag}] {question}", max_tokens=32)


Ask = Callable[..., tuple[str, Request]]


@pytest.fixture(scope="session")
def ask() -> Ask:
    """`ask(question=...)`: a tag and a request whose prompt carries it, by which the request is
    found in nginx's log (`Entry.tag`)."""
    return _ask


@dataclass
class Nginx:
    url: str
    access_log: Path
    process: Process

    def mark(self) -> int:
        """A position in the access log; `entries(since=mark)` reads what was logged after it."""
        return self.access_log.stat().st_size if self.access_log.exists() else 0

    def entries(
        self, since: int, prefix: str = "/", *, at_least: int = 0
    ) -> list[Entry]:
        """The requests logged after `since` whose path starts with `prefix`, oldest first.

        nginx writes a line when it has finished with a request, which for one the client gave up on
        can be after the client moved on: wait (up to 10 s) for `at_least` lines.
        """
        deadline = time.monotonic() + 10
        time.sleep(0.05)
        while True:
            found = self._read(since, prefix)
            if len(found) >= at_least or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def _read(self, since: int, prefix: str) -> list[Entry]:
        with self.access_log.open("rb") as f:
            f.seek(since)
            lines = f.read().decode().splitlines()
        found = []
        for line in lines:
            row = json.loads(line)
            if not row["uri"].startswith(prefix):
                continue
            found.append(
                Entry(
                    uri=row["uri"],
                    status=int(row["status"]),
                    end=float(row["msec"]),
                    request_time=float(row["request_time"]),
                    body=row["body"],
                    cost=float(row["cost"]) if row.get("cost") else None,
                    headers={
                        k: row[k]
                        for k in (
                            "retry_after",
                            "retry_after_ms",
                            "authorization",
                            "x_api_key",
                            "x_goog_api_key",
                        )
                        if row.get(k)
                    },
                )
            )
        return sorted(found, key=lambda e: e.start)


@dataclass
class TransformersServe:
    url: str
    model: str
    """The model name the server is pinned to (the model directory)."""
    python: Path
    process: Process
    _oracle: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)

    def generate_locally(self, prompt: str, max_tokens: int) -> dict[str, Any]:
        """Greedy decoding of the same model in-process (`tiny_model.py generate`): text and token counts."""
        key = (prompt, max_tokens)
        if key not in self._oracle:
            out = subprocess.run(
                [
                    str(self.python),
                    str(HERE / "tiny_model.py"),
                    "generate",
                    self.model,
                    prompt,
                    str(max_tokens),
                ],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, **_HF_ENV},
                timeout=240,
            )
            self._oracle[key] = json.loads(out.stdout.strip().splitlines()[-1])
        return self._oracle[key]


_HF_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _litellm_config(key: str) -> str:
    models = "".join(
        f"  - model_name: {name}\n"
        f"    litellm_params:\n"
        f"      model: {provider}/{name}\n"
        f"      api_key: not-used-mock-response\n"
        f"      mock_response: {json.dumps(MOCK_TEXT)}\n"
        for provider, name in MODELS.items()
    )
    for name, output_tokens in PRICED.items():
        answer = {
            "id": f"chatcmpl-{name}",
            "object": "chat.completion",
            "model": name,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": MOCK_TEXT},
                }
            ],
            "usage": {
                "prompt_tokens": 12,
                "completion_tokens": output_tokens,
                "total_tokens": 12 + output_tokens,
            },
        }
        models += (
            f"  - model_name: {name}\n"
            f"    litellm_params:\n"
            f"      model: openai/{name}\n"
            f"      api_key: not-used-mock-response\n"
            f"      mock_response: {json.dumps(answer)}\n"
        )
    return (
        f"model_list:\n{models}"
        f"general_settings:\n  master_key: {key}\n"
        "litellm_settings:\n  telemetry: false\n  drop_params: true\n"
    )


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def _launched(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Start the slow servers (LiteLLM, transformers serve) together, without waiting for them."""
    started: dict[str, Any] = {}
    litellm_bin = HOME / "litellm" / "bin" / "litellm"
    if litellm_bin.exists():
        key = f"sk-crucible-{secrets.token_hex(12)}"
        (run_dir / "litellm.yaml").write_text(_litellm_config(key))
        port = free_port()
        started["litellm"] = (
            Process(
                "LiteLLM proxy",
                [
                    str(litellm_bin),
                    "--config",
                    "litellm.yaml",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--num_workers",
                    "1",
                ],
                log=run_dir / "litellm.log",
                env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"},
            ),
            port,
            key,
        )
    serve_bin = HOME / "transformers" / "bin" / "transformers"
    model_dir = HOME / "tiny-gpt2"
    if serve_bin.exists() and (model_dir / "config.json").exists():
        port = free_port()
        started["transformers"] = (
            Process(
                "transformers serve",
                [
                    str(serve_bin),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--device",
                    "cpu",
                    str(model_dir),
                ],
                log=run_dir / "transformers.log",
                env=_HF_ENV,
            ),
            port,
            str(model_dir),
        )
    yield started
    for process, *_ in started.values():
        process.stop()


@pytest.fixture(scope="session")
def litellm(_launched: dict[str, Any]) -> LiteLLM:
    """The LiteLLM proxy, ready."""
    if "litellm" not in _launched:
        unavailable(f"the LiteLLM venv is missing ({HOME / 'litellm'})")
    process, port, key = _launched["litellm"]
    url = f"http://127.0.0.1:{port}"
    took = process.wait_ready(f"{url}/health/liveliness")
    sys.stderr.write(f"LiteLLM ready in {took:.1f} s\n")
    return LiteLLM(url=url, key=key, process=process)


@pytest.fixture(scope="session")
def nginx(litellm: LiteLLM, run_dir: Path) -> Iterator[Nginx]:
    """nginx in front of LiteLLM, ready, with its fault locations."""
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None or not ECHO_MODULE.exists():
        unavailable("nginx (Debian nginx-light, with its echo module) is not installed")
    port = free_port()
    litellm_port = int(litellm.url.rsplit(":", 1)[1])
    for sub in ("s", "tmp"):
        (run_dir / sub).mkdir(exist_ok=True)
    conf = run_dir / "nginx.conf"
    conf.write_text(
        (HERE / "nginx.conf.template")
        .read_text()
        .format(
            run=run_dir,
            port=port,
            litellm=litellm_port,
            user="user root;" if os.geteuid() == 0 else "",
        )
    )
    process = Process(
        "nginx",
        [binary, "-c", str(conf), "-p", str(run_dir)],
        log=run_dir / "nginx.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_ready(f"{url}/ok/health/liveliness")
        yield Nginx(url=url, access_log=run_dir / "access.log", process=process)
    finally:
        process.stop()


@pytest.fixture(scope="session")
def transformers_serve(_launched: dict[str, Any]) -> TransformersServe:
    """`transformers serve` pinned to the tiny GPT-2, ready."""
    if "transformers" not in _launched:
        unavailable(f"the transformers venv or the tiny model is missing ({HOME})")
    process, port, model = _launched["transformers"]
    url = f"http://127.0.0.1:{port}"
    took = process.wait_ready(f"{url}/health")
    sys.stderr.write(f"transformers serve ready in {took:.1f} s\n")
    return TransformersServe(
        url=url,
        model=model,
        python=HOME / "transformers" / "bin" / "python",
        process=process,
    )


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    """The Python of the official SDKs' venv (`CRUCIBLE_SDK_PYTHON`)."""
    python = Path(
        os.environ.get("CRUCIBLE_SDK_PYTHON") or HOME / "sdk" / "bin" / "python"
    )
    if not python.exists():
        unavailable(f"the official SDKs' venv is missing ({python})")
    return python


ModelFactory = Callable[..., HTTPModel]

_CLASSES: dict[str, type[HTTPModel]] = {
    "openai": OpenAIModel,
    "anthropic": AnthropicModel,
    "gemini": GeminiModel,
}


def wire_defaults(protocol: str, options: dict[str, Any]) -> dict[str, Any]:
    """`stream=False` where the provider takes a `stream` option and the test did not choose.

    LiteLLM's mock models answer a streamed Anthropic request with a plain JSON body and a streamed
    Gemini one by calling Google, so the tests through LiteLLM ask for whole answers; the streaming
    tests use nginx's recorded streams instead.
    """
    accepted = set(inspect.signature(_CLASSES[protocol].__init__).parameters)
    accepted |= set(inspect.signature(HTTPModel.__init__).parameters)
    if "stream" in accepted and "stream" not in options:
        return {**options, "stream": False}
    return options


def model_string(protocol: str, root: str, model: str) -> tuple[str, dict[str, Any]]:
    """The model string of `model` served at `root`, and the options it needs beside it."""
    if protocol == "openai":
        return f"openai-compatible:{root}/v1#{model}", {}
    return f"{protocol}:{model}", {"base_url": root}


@pytest.fixture(scope="session")
def make_model(litellm: LiteLLM) -> ModelFactory:
    """`make_model(protocol, root, **options)`: `build_model` of that protocol's model at `root`.

    `protocol` is `"openai"` (`openai-compatible:{root}/v1#...`), `"anthropic"` or `"gemini"`
    (`base_url=root`); the model is LiteLLM's mock of that protocol and the key LiteLLM's master key.
    """

    def make(protocol: str, root: str, **options: Any) -> HTTPModel:
        options.setdefault("api_key", litellm.key)
        spec, extra = model_string(
            protocol, root, options.pop("model", MODELS[protocol])
        )
        model = build_model(spec, **extra, **wire_defaults(protocol, options))
        assert isinstance(model, _CLASSES[protocol])
        return model

    return make


@pytest.fixture(scope="session")
def make_serve_model(transformers_serve: TransformersServe) -> ModelFactory:
    """`make_serve_model(**options)`: `build_model` of the tiny GPT-2 behind `transformers serve`."""

    def make(**options: Any) -> HTTPModel:
        options.setdefault("timeout", 120)
        spec = (
            f"openai-compatible:{transformers_serve.url}/v1#{transformers_serve.model}"
        )
        return build_model(spec, **wire_defaults("openai", options))  # type: ignore[return-value]

    return make
