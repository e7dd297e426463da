"""Download dataset files from a Hugging Face Hub endpoint into the checksummed cache.

The protocol is the Hub's own:

- `GET {endpoint}/api/datasets/{repo}/revision/{revision}?blobs=true` resolves a branch, tag or
  commit to a commit (`sha`) and lists the files (`siblings`), with the SHA-256 of LFS files;
- `GET {endpoint}/datasets/{repo}/resolve/{commit}/{path}` sends the bytes, with `X-Repo-Commit`,
  `ETag` and `Content-Length`; a `Range: bytes=N-` request resumes a partial download (206).

Downloads go to `<file>.incomplete` beside the cached file, are verified, then renamed into place,
so a cached file is always complete. Transient failures (connection errors, 5xx, 429, a body
broken off mid-way) are retried with backoff, resuming where the partial file ends.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

import attrs

from crucible_core._optional import import_optional
from crucible_core.events import DATASET_DOWNLOAD_STOP, emit
from crucible_core.retry import retry_context
from crucible_datasets._cache import (
    CachedFile,
    CacheEntry,
    file_path,
    is_verified,
    read_entry,
    read_ref,
    sha256_file,
    write_entry,
    write_ref,
)
from crucible_datasets.exceptions import (
    ChecksumError,
    DatasetNotFoundError,
    DownloadError,
    OfflineError,
)

if TYPE_CHECKING:
    import aiohttp

__all__ = ("FetchPlan", "Fetched", "endpoint", "fetch", "is_offline")

_DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "true", "yes", "on"}
_CHUNK = 1 << 16
_PROGRESS_MIN_BYTES = 8 << 20


def endpoint() -> str:
    """The hub endpoint: `HF_ENDPOINT`, else the public Hugging Face Hub."""
    return (os.environ.get("HF_ENDPOINT") or _DEFAULT_ENDPOINT).rstrip("/")


def is_offline(*, offline: bool | None = None) -> bool:
    """`offline` if given, else whether `CRUCIBLE_OFFLINE` or `HF_HUB_OFFLINE` is set true."""
    if offline is not None:
        return offline
    return any(
        os.environ.get(var, "").strip().lower() in _TRUE
        for var in ("CRUCIBLE_OFFLINE", "HF_HUB_OFFLINE")
    )


def _token() -> str | None:
    return (
        os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None
    )


def _is_commit(revision: str) -> bool:
    return len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)


@attrs.define(frozen=True, kw_only=True)
class FetchPlan:
    """What to fetch: which files of which repository, recorded under which cache entry."""

    dataset: str
    subset: str | None
    split: str
    repo: str
    revision: str
    paths: tuple[str, ...]
    root: Path
    key: str


@attrs.define(frozen=True, kw_only=True)
class Fetched:
    """The result of a fetch: the commit and the local path and SHA-256 of every file."""

    commit: str
    files: tuple[tuple[str, Path, str], ...]
    downloaded_bytes: int
    from_cache: bool


def _cached_files(plan: FetchPlan, entry: CacheEntry) -> Fetched | None:
    """The entry's files if every one is present and hashes to its recorded SHA-256."""
    recorded = {f.path: f for f in entry.files}
    out = []
    for path in plan.paths:
        info = recorded.get(path)
        local = file_path(plan.root, plan.repo, entry.commit, path)
        if info is None or not is_verified(plan.root, local, info.sha256):
            return None
        out.append((path, local, info.sha256))
    return Fetched(
        commit=entry.commit, files=tuple(out), downloaded_bytes=0, from_cache=True
    )


def _offline(plan: FetchPlan) -> Fetched:
    entry = read_entry(plan.root, plan.dataset, plan.key)
    if entry is None:
        commit = read_ref(plan.root, plan.repo, plan.revision)
        raise OfflineError(
            f"offline mode is on and {plan.dataset!r} (split {plan.split!r}"
            + (f", subset {plan.subset!r}" if plan.subset else "")
            + f", revision {plan.revision!r}) is not in the cache at {str(plan.root)!r}"
            + (f" (revision last seen at commit {commit[:12]})" if commit else "")
            + ". Load it once online (unset `CRUCIBLE_OFFLINE`/`HF_HUB_OFFLINE`, or pass "
            f"offline=False) to download {plan.repo}:{', '.join(plan.paths)}",
            dataset=plan.dataset,
            split=plan.split,
            subset=plan.subset,
            cache_dir=str(plan.root),
        )
    cached = _cached_files(plan, entry)
    if cached is None:
        raise ChecksumError(
            f"the cached files of {plan.dataset!r} (split {plan.split!r}) at "
            f"{str(plan.root)!r} are missing or do not match their recorded SHA-256, and "
            "offline mode is on, so they cannot be downloaded again. Go online to repair "
            "the cache, or run `crucible_datasets.invalidate_cache(...)`",
            path=str(plan.root),
            expected=[f.sha256 for f in entry.files],
            actual=None,
        )
    return cached


def from_cache(plan: FetchPlan, *, offline: bool) -> Fetched | None:
    """`plan`'s files when the cache can serve them without the hub, else `None`.

    Offline, that is always the answer (or an `OfflineError`/`ChecksumError`); online, only a
    pinned commit is served without asking the hub, since a branch may have moved.
    """
    if offline:
        return _offline(plan)
    if not _is_commit(plan.revision):
        return None
    entry = read_entry(plan.root, plan.dataset, plan.key)
    if entry is not None and entry.commit == plan.revision:
        return _cached_files(plan, entry)  # a pinned commit never changes
    return None


async def fetch(plan: FetchPlan) -> Fetched:
    """Ask the hub what `plan`'s revision is now and download what the cache lacks of it.

    Online only: callers first try `from_cache`, which serves offline and pinned loads.
    """
    entry = read_entry(plan.root, plan.dataset, plan.key)
    aiohttp = import_optional("aiohttp", extra="hub", distribution="crucible-datasets")
    headers = {"User-Agent": "crucible-datasets"}
    if token := _token():
        headers["Authorization"] = f"Bearer {token}"
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        commit, siblings = await _resolve(session, plan)
        return await _download_all(session, plan, entry, commit, siblings)


def _transient(error: BaseException) -> bool:
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is not None and isinstance(error, aiohttp.ClientError):
        return True
    if isinstance(error, TimeoutError):  # asyncio.TimeoutError too, since 3.11
        return True
    return isinstance(error, DownloadError) and bool(error.context.get("transient"))


def _status_error(url: str, status: int, what: str) -> DownloadError:
    if status in (401, 403):
        return DownloadError(
            f"the hub refused {what} ({status}) at {url}; the dataset may be gated or "
            "private: accept its terms on the hub and set `HF_TOKEN` to an access token",
            url=url,
            status=status,
            transient=False,
        )
    return DownloadError(
        f"the hub answered {status} for {what} at {url}",
        url=url,
        status=status,
        transient=status >= 500 or status == 429,
    )


def _retries() -> Any:
    return retry_context(
        on=_transient, attempts=6, timeout=120, wait_initial=0.2, wait_max=5
    )


async def _resolve(
    session: aiohttp.ClientSession, plan: FetchPlan
) -> tuple[str, dict[str, dict[str, Any]]]:
    url = f"{endpoint()}/api/datasets/{plan.repo}/revision/{quote(plan.revision, safe='')}"
    try:
        async for attempt in _retries():
            with attempt:
                async with session.get(url, params={"blobs": "true"}) as resp:
                    if resp.status == 404:
                        raise DatasetNotFoundError(
                            f"the hub at {endpoint()} has no dataset repository {plan.repo!r} "
                            f"at revision {plan.revision!r}; check the revision (a branch, "
                            "tag or 40-hex commit) and `HF_ENDPOINT`",
                            dataset=plan.dataset,
                            repo=plan.repo,
                            revision=plan.revision,
                        )
                    if resp.status != 200:
                        raise _status_error(url, resp.status, "the revision lookup")
                    info = await resp.json()
    except DownloadError:
        raise
    except Exception as err:
        if _transient(err):
            raise DownloadError(
                f"cannot reach the hub at {endpoint()} ({type(err).__name__}: {err}); "
                "check the network and `HF_ENDPOINT`, or set `CRUCIBLE_OFFLINE=1` to use "
                "the cache only",
                url=url,
                status=None,
            ) from err
        raise
    commit = info.get("sha") if isinstance(info, dict) else None
    if not isinstance(commit, str) or not commit:
        raise DownloadError(
            f"the hub's answer for {url} has no commit `sha`; is `HF_ENDPOINT` a hub?",
            url=url,
            status=200,
        )
    if not _is_commit(commit):
        raise DownloadError(
            f"the hub at {endpoint()} answered {plan.revision!r} of {plan.repo} with commit "
            f"{commit!r:.80}, which is not 40 hex characters; refusing it, nothing was written "
            "(is `HF_ENDPOINT` a hub you trust?)",
            url=url,
            status=200,
        )
    siblings = {
        s["rfilename"]: s
        for s in info.get("siblings") or []
        if isinstance(s, dict) and "rfilename" in s
    }
    return commit, siblings


def _expected(sibling: dict[str, Any]) -> tuple[str | None, int | None]:
    lfs = sibling.get("lfs")
    sha = None
    size = sibling.get("size")
    if isinstance(lfs, dict):
        sha = lfs.get("sha256") or lfs.get("oid")
        size = lfs.get("size", size)
    if isinstance(sha, str) and sha.startswith("sha256:"):
        sha = sha[7:]
    return (sha if isinstance(sha, str) and len(sha) == 64 else None), (
        int(size) if isinstance(size, int) else None
    )


def _missing(
    plan: FetchPlan, path: str, siblings: dict[str, Any], commit: str
) -> Exception:
    present = sorted(siblings)
    return DatasetNotFoundError(
        f"{plan.repo} at commit {commit[:12]} has no file {path!r} for {plan.dataset!r} "
        f"(split {plan.split!r}"
        + (f", subset {plan.subset!r}" if plan.subset else "")
        + f"); the repository holds {present[:12]}"
        + (" …" if len(present) > 12 else ""),
        dataset=plan.dataset,
        split=plan.split,
        subset=plan.subset,
        available=present,
    )


async def _download_all(
    session: aiohttp.ClientSession,
    plan: FetchPlan,
    entry: CacheEntry | None,
    commit: str,
    siblings: dict[str, dict[str, Any]],
) -> Fetched:
    recorded = (
        {f.path: f for f in entry.files} if entry and entry.commit == commit else {}
    )
    files: list[tuple[str, Path, str]] = []
    cached_files: list[CachedFile] = []
    downloaded = 0
    for path in plan.paths:
        if siblings and path not in siblings:
            raise _missing(plan, path, siblings, commit)
        expected_sha, expected_size = _expected(siblings.get(path, {}))
        known = expected_sha or (recorded[path].sha256 if path in recorded else None)
        local = file_path(plan.root, plan.repo, commit, path)
        if known is not None and is_verified(plan.root, local, known):
            sha = known
        else:
            local.unlink(missing_ok=True)
            started = time.perf_counter()
            nbytes, sha = await _download(
                session, plan, commit, path, local, expected_sha, expected_size
            )
            downloaded += nbytes
            emit(
                DATASET_DOWNLOAD_STOP,
                {"duration": time.perf_counter() - started, "bytes": float(nbytes)},
                {
                    "dataset": plan.dataset,
                    "repo": plan.repo,
                    "path": path,
                    "commit": commit,
                },
            )
        files.append((path, local, sha))
        cached_files.append(
            CachedFile(path=path, sha256=sha, size=local.stat().st_size)
        )
    write_ref(plan.root, plan.repo, plan.revision, commit)
    write_entry(
        plan.root,
        CacheEntry(
            dataset=plan.dataset,
            subset=plan.subset,
            split=plan.split,
            repo=plan.repo,
            revision=plan.revision,
            commit=commit,
            files=tuple(cached_files),
            downloaded_at=(
                dt.datetime.now(dt.UTC)
                if downloaded or entry is None
                else entry.downloaded_at
            ),
        ),
    )
    return Fetched(
        commit=commit,
        files=tuple(files),
        downloaded_bytes=downloaded,
        from_cache=not downloaded,
    )


class _Partial:
    """The `.incomplete` file of a download (sync file I/O, kept out of the coroutine bodies)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def open(self, *, append: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("ab" if append else "wb")

    def write(self, chunk: bytes) -> None:
        assert self._fh is not None
        self._fh.write(chunk)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class _Progress:
    """A one-line progress bar on stderr for long downloads in a terminal."""

    def __init__(self, label: str, total: int | None, start: int) -> None:
        self.label = label
        self.total = total
        self.done = start
        self.enabled = (
            total is not None and total >= _PROGRESS_MIN_BYTES and sys.stderr.isatty()
        )
        self._last = 0.0

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._last >= 0.2:
            self._last = now
            assert self.total is not None
            pct = 100 * self.done / self.total
            bar = "#" * int(pct / 5)
            sys.stderr.write(
                f"\r{self.label} [{bar:<20}] {pct:5.1f}% "
                f"{self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB"
            )
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


async def _download(
    session: aiohttp.ClientSession,
    plan: FetchPlan,
    commit: str,
    path: str,
    dest: Path,
    expected_sha: str | None,
    expected_size: int | None,
) -> tuple[int, str]:
    """Download one file to `dest`, resuming a partial one; return (bytes received, sha256)."""
    url = f"{endpoint()}/datasets/{plan.repo}/resolve/{commit}/{quote(path)}"
    partial = _Partial(dest.with_name(dest.name + ".incomplete"))
    received = 0
    for whole in range(2):  # a checksum mismatch gets one fresh download, then fails
        try:
            async for attempt in _retries():
                with attempt:
                    received += await _get(session, url, partial, expected_size, plan)
        except DownloadError:
            raise
        except Exception as err:
            if _transient(err):
                raise DownloadError(
                    f"downloading {url} failed after retries ({type(err).__name__}: {err}); "
                    "run the load again to resume from the partial file",
                    url=url,
                    status=None,
                ) from err
            raise
        actual = sha256_file(partial.path)
        if expected_sha is None or actual == expected_sha:
            partial.path.replace(dest)
            return received, actual
        partial.discard()
        if whole == 1:
            raise ChecksumError(
                f"{url} sent bytes with SHA-256 {actual[:16]}…, but the hub lists "
                f"{expected_sha[:16]}… for {path!r}; the download was corrupted in transit "
                "or the mirror is inconsistent. Try again later or set another `HF_ENDPOINT`",
                path=path,
                expected=expected_sha,
                actual=actual,
            )
    raise AssertionError("unreachable")  # pragma: no cover


async def _get(
    session: aiohttp.ClientSession,
    url: str,
    partial: _Partial,
    expected_size: int | None,
    plan: FetchPlan,
) -> int:
    offset = partial.size()
    if expected_size is not None and offset > expected_size:
        partial.discard()
        offset = 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    async with session.get(url, headers=headers) as resp:
        if (
            resp.status == 416
        ):  # the partial file is already whole (or longer): start over
            partial.discard()
            raise DownloadError(
                f"range not satisfiable at {url}", url=url, status=416, transient=True
            )
        if resp.status == 404:
            raise DatasetNotFoundError(
                f"{url} does not exist on the hub; the file layout of {plan.repo!r} may have "
                "changed: pin an older `revision=`",
                dataset=plan.dataset,
                split=plan.split,
                subset=plan.subset,
                available=[],
            )
        if resp.status not in (200, 206):
            raise _status_error(url, resp.status, "the download")
        append = resp.status == 206 and offset > 0
        if append:
            content_range = resp.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                partial.discard()
                raise DownloadError(
                    f"{url} answered a resume from byte {offset} with Content-Range "
                    f"{content_range!r}; starting over",
                    url=url,
                    status=206,
                    transient=True,
                )
        total = resp.content_length
        total = (offset + total) if (append and total is not None) else total
        progress = _Progress(
            f"{plan.dataset}: {Path(url).name}", total, offset if append else 0
        )
        partial.open(append=append)
        got = 0
        try:
            async for chunk in resp.content.iter_chunked(_CHUNK):
                partial.write(chunk)
                got += len(chunk)
                progress.update(len(chunk))
        finally:
            partial.close()
            progress.close()
        return got
