"""The README's scripts on a machine with only a distribution's Python (issue 18)."""

from __future__ import annotations

import os
import subprocess
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = Path("/usr/bin/python3")


def _externally_managed(python: Path) -> bool:
    if not python.is_file():
        return False
    stdlib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return (Path(stdlib) / "EXTERNALLY-MANAGED").is_file()


@pytest.mark.network
@pytest.mark.skipif(
    not _externally_managed(SYSTEM_PYTHON),
    reason="needs a PEP 668 system Python at /usr/bin/python3 (Debian/Ubuntu)",
)
def test_bootstrap_installs_uv_privately_on_an_externally_managed_python(
    tmp_path: Path,
) -> None:
    """No uv on PATH and a Python that refuses `pip install`: uv goes into a private venv."""
    before = sorted(Path(sysconfig.get_paths()["purelib"]).iterdir())
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
    }
    for key in (
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "PIP_FIND_LINKS",
        "PIP_CONFIG_FILE",
    ):
        if key in os.environ:
            env[key] = os.environ[key]
    script = 'source scripts/_bootstrap.sh && echo "UV=$UV" && $UV --version'
    out = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "externally-managed-environment" not in out.stderr
    private = tmp_path / "home" / ".cache" / "crucible" / "bootstrap"
    assert f"UV={private}" in out.stdout, out.stdout
    assert "uv " in out.stdout
    # The system Python's own site-packages did not change.
    system_purelib = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert not (Path(system_purelib) / "uv").exists()
    assert sorted(Path(sysconfig.get_paths()["purelib"]).iterdir()) == before
    # A second run finds the private uv without installing again.
    again = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 0
    assert "installing" not in again.stderr


class _FakeIndex:
    """A local server answering the index's JSON API (`/pypi/<name>/json`) from a dict."""

    def __init__(self, projects: dict[str, dict[str, object]]) -> None:
        import http.server
        import json
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.removeprefix("/pypi/").removesuffix("/json")
                if name not in projects:
                    self.send_error(404)
                    return
                body = json.dumps({"info": projects[name]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                """Keep the test output quiet: no access log on stderr."""

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _check_names(index: _FakeIndex) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "check-names"), "--index-url", index.url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_check_names_passes_when_names_are_free_or_ours() -> None:
    import tomllib

    urls = tomllib.loads((ROOT / "packages/crucible-core/pyproject.toml").read_text())[
        "project"
    ]["urls"]
    index = _FakeIndex({"crucible-core": {"version": "0.1.0", "project_urls": urls}})
    try:
        out = _check_names(index)
    finally:
        index.close()
    assert out.returncode == 0, out.stderr
    assert "ok  crucible-core" in out.stdout
    assert "ok  crucible-bench" in out.stdout


def test_check_names_fails_on_a_name_held_by_someone_else() -> None:
    """PyPI's `crucible-bench` 1.6.0 is an unrelated project: publishing must stop."""
    index = _FakeIndex(
        {
            "crucible-bench": {
                "version": "1.6.0",
                "project_urls": {"Home": "https://example.org/x"},
            }
        }
    )
    try:
        out = _check_names(index)
    finally:
        index.close()
    assert out.returncode == 1
    assert "CONFLICT  crucible-bench" in out.stderr
    assert "1.6.0" in out.stderr


def test_changelog_fragments_are_well_named_and_build() -> None:
    """Every fragment is `<issue>.<type>.md` with a known type, and towncrier renders them."""
    import re
    import shutil
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["towncrier"]
    types = {t["directory"] for t in config["type"]}
    fragments = [p for p in (ROOT / "changelog.d").iterdir() if p.name != ".gitkeep"]
    for fragment in fragments:
        match = re.fullmatch(r"(\d+|\+[\w-]+)\.([a-z]+)(?:\.\d+)?\.md", fragment.name)
        assert match, f"{fragment.name}: name it <issue>.<type>.md"
        assert match.group(2) in types, (
            f"{fragment.name}: type must be one of {sorted(types)}"
        )
        assert fragment.read_text().strip(), f"{fragment.name} is empty"
    towncrier = shutil.which("towncrier")
    assert towncrier, "towncrier is in the lint dependency group"
    out = subprocess.run(
        [towncrier, "build", "--draft", "--version", "9.9.9"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "## 9.9.9" in out.stdout
    for fragment in fragments:
        first_words = " ".join(fragment.read_text().split()[:4])
        assert first_words in " ".join(out.stdout.split()), fragment.name
