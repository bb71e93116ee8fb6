"""Model file locations: reachability checks and the download cache.

Network access happens only in :func:`url_reachable` and :func:`download`, both with TLS
certificate verification on (design §3 fixes the reference's unverified downloads). Tests
replace these two module attributes; the registry always calls them through the module."""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from empanada_rs.registry import paths
from empanada_rs.registry.config import is_url

#: Seconds to wait for a server before giving up.
TIMEOUT_S = 30.0


def _open(url: str, method: str, timeout: float) -> Any:
    request = urllib.request.Request(url, method=method, headers={"User-Agent": "empanada-rs"})
    context = ssl.create_default_context()  # verifies certificates and host names
    return urllib.request.urlopen(request, timeout=timeout, context=context)  # noqa: S310


def url_reachable(url: str, timeout: float = 10.0) -> bool:
    """True when the server answers ``url`` (HEAD, else a GET whose body is not read)."""
    for method in ("HEAD", "GET"):
        try:
            with _open(url, method, timeout):
                return True
        except urllib.error.HTTPError as e:
            if e.code not in (403, 405, 501):  # servers that refuse HEAD but serve GET
                return False
        except (urllib.error.URLError, OSError, ValueError):
            return False
    return False


def reachable(location: str) -> bool:
    """A local model file exists, or a URL answers (through :func:`url_reachable`)."""
    if is_url(location):
        if urlparse(location).scheme == "file":
            return Path(unquote(urlparse(location).path)).is_file()
        return url_reachable(location)
    return Path(location).expanduser().is_file()


def url_basename(url: str) -> str:
    """The file name of a URL's path (``.../MitoNet_v1.pth?download=1`` -> ``MitoNet_v1.pth``)."""
    name = PurePosixPath(unquote(urlparse(url).path)).name
    return name or "model.pth"


def cache_path(url: str) -> Path:
    """Where ``url`` is cached: ``<home>/models/<stem>-<8 hex of the URL's sha256><suffix>``
    (the hash keeps two URLs with the same file name apart)."""
    base = PurePosixPath(url_basename(url))
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return paths.models_dir() / f"{base.stem}-{digest}{base.suffix or '.pth'}"


def download(url: str, dest: Path, *, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` with a byte progress bar on stderr. The data go to a
    temporary file next to ``dest`` that is renamed over it only when complete, so an
    interrupted download never leaves a truncated model behind."""
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, _open(url, "GET", TIMEOUT_S) as resp:
            total = resp.headers.get("Content-Length")
            with tqdm(
                total=int(total) if total and total.isdigit() else None,
                desc=f"Downloading {dest.name}",
                unit="B",
                unit_scale=True,
                disable=not progress,
                file=sys.stderr,
            ) as bar:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def local_file(location: str, *, progress: bool = True) -> Path:
    """A local path for a model location: local paths as they are (they must exist), URLs
    from the cache, downloading them on first use. empanada-napari's own download
    (``~/.empanada/<file name>``) is reused when present instead of downloading again."""
    from empanada_rs.cli import NotFoundError

    if not is_url(location):
        path = Path(location).expanduser()
        if not path.is_file():
            raise NotFoundError(
                f"model: file {path} does not exist; fix the config's model path or "
                "register the model again with --model PATH"
            )
        return path
    cached = cache_path(location)
    if cached.is_file():
        return cached
    theirs = paths.empanada_home() / url_basename(location)
    if urlparse(location).scheme != "file" and theirs.is_file():
        return theirs
    sys.stderr.write(f"empanada-rs: downloading {location} to {cached}\n")
    try:
        return download(location, cached, progress=progress)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise NotFoundError(
            f"model: cannot download {location} ({e}); check the connection or the URL, "
            "or register a local copy with --model PATH"
        ) from e


def copy_atomic(src: Path, dest: Path) -> Path:
    """Copy ``src`` to ``dest`` through a temporary file renamed when complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
