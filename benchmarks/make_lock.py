"""Make the lock of bench.py's lock scenario: ``benchmarks/pylock.toml`` and ``pylock-requirements.txt``.

Usage (from the repository root; psutil installed, the ``bench`` extra; needs PyPI, takes a few
minutes)::

    PYENV_VERSION=3.11.7:3.9.18:3.10.13:3.12.1:3.13.0 .tox/py311/bin/python benchmarks/make_lock.py [--no-fill]

1. Fills bench.py's file cache (``$DEVPI_WARMUP_BENCH_CACHE/files``, default
   ``~/.cache/devpi-warmup-bench/files``) with what
   ``devpi warmup -r benchmarks/lock-requirements.txt`` picks for bench.py's 9 targets from the
   real PyPI, through a throwaway devpi-server (``--no-fill`` skips this).
2. Serves that cache as a local simple index and locks ``lock-requirements.txt`` with ``uv``
   (from PyPI, into a temporary venv) against it alone: ``uv lock`` of a tiny uv project with
   ``requires-python = ">=3.10"``, a universal resolution, so every locked file is one the cache
   holds.  (No ``tool.uv.environments``: uv folds them into every package's marker, and the seed
   loop's pip would evaluate ``python_full_version >= '3.12' or < '3.11'`` on its own Python 3.11.)
   Then it checks that each of the 9 targets finds a file of every locked release that applies.
3. Exports the lock as PEP 751 ``pylock.toml`` and as hash-pinned requirements
   (``uv export --format requirements.txt``: ``name==version ; marker --hash=...``), with the
   local index's file URLs replaced by the files' PyPI URLs (``files.pythonhosted.org`` names a
   file by its BLAKE2b-256 digest, computed here), so both files are deterministic.

bench.py reads both files and, when its cache lacks files of the lock, fetches them with
``devpi warmup --lock benchmarks/pylock.toml --dest <cache>`` from PyPI.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import sys
import tempfile
from pathlib import Path

from packaging.utils import parse_sdist_filename, parse_wheel_filename

sys.path.insert(0, str(Path(__file__).resolve().parent))

from warmbench.commands import warmup_argv, warmup_env
from warmbench.corpus import FILES, LOCK, LOCK_REQUIREMENTS, PINNED, lock_packages, quarantine_unsupported
from warmbench.log import log_tail, say
from warmbench.matrix import BENCH
from warmbench.measure import measure
from warmbench.servers import pypi_client, serve_files
from warmbench.support import clean_env, run

from devpi_client_warmup.index.listing import Listed

PYPI_FILES = "https://files.pythonhosted.org/packages"


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a requirements file, following ``-r``."""
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            lines += requirement_lines(path.parent / line[3:].strip())
        elif line.startswith("-"):
            raise SystemExit(f"{path}: option lines are not supported here: {line}")
        else:
            lines.append(line)
    return lines


def uv_project(where: Path) -> Path:
    dependencies = "".join(f"  {_toml_string(line)},\n" for line in requirement_lines(LOCK_REQUIREMENTS))
    where.mkdir(parents=True)
    (where / "pyproject.toml").write_text(
        "[project]\n"
        'name = "devpi-warmup-bench-lock"\n'
        'version = "0"\n'
        f'requires-python = ">={BENCH.pythons[0]}"\n'
        f"dependencies = [\n{dependencies}]\n\n"
        "[tool.uv]\n"
        "package = false\n",
        encoding="utf-8",
    )
    return where


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def make_uv(where: Path) -> Path:
    """uv from PyPI in a venv of its own (the machine's pip configuration left out)."""
    run([sys.executable, "-m", "venv", str(where)], env=clean_env(), timeout=300)
    run([str(where / "bin" / "pip"), "install", "uv"], env=clean_env(), timeout=600)
    uv = where / "bin" / "uv"
    say(f"uv: {run([str(uv), '--version'], env=clean_env()).stdout.strip()}")
    return uv


def uv_env(cache: Path) -> dict[str, str]:
    return clean_env(UV_CACHE_DIR=str(cache), UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never")


def fill(workdir: Path) -> None:
    """What ``devpi warmup -r lock-requirements.txt`` picks for the matrix, from PyPI, into FILES."""
    log = workdir / "fill.log"
    say(
        f"filling {FILES} for {LOCK_REQUIREMENTS.name} from PyPI through a throwaway devpi-server (log: {log})"
    )
    server, client, _ = pypi_client(workdir)
    try:
        argv = warmup_argv(client.clientdir, ["-r", str(LOCK_REQUIREMENTS)], BENCH, "--dest", str(FILES))
        result = measure(argv, warmup_env(workdir / "fill-xdg-cache"), log)
    finally:
        server.stop()
    quarantine_unsupported()
    say(f"  devpi warmup --dest: exit {result.returncode} in {result.seconds:.1f} s")
    if result.returncode:
        raise SystemExit(f"filling the file cache failed:\n{log_tail(log)}")


def pypi_url(path: Path) -> str:
    digest = hashlib.blake2b(path.read_bytes(), digest_size=32).hexdigest()
    return f"{PYPI_FILES}/{digest[:2]}/{digest[2:4]}/{digest[4:]}/{path.name}"


def to_pypi(text: str, simple_url: str) -> str:
    """Replace the local index's URLs by PyPI's."""
    base = simple_url[: -len("simple/")]
    missing = []

    def file_url(match: re.Match[str]) -> str:
        path = FILES / match.group(1)
        if not path.is_file():
            missing.append(path.name)
            return match.group(0)
        return pypi_url(path)

    text = re.sub(re.escape(base) + r"files/([^\"'\s#]+)", file_url, text)
    text = text.replace(simple_url, "https://pypi.org/simple")
    if missing or base in text:
        raise SystemExit(f"cannot map to PyPI: {missing or base}")
    return text


def lock(workdir: Path) -> None:
    upstream = serve_files(FILES)
    # uv reads a wheel's METADATA and drops the connection (no range requests here): quiet the tracebacks
    upstream._server.handle_error = lambda *_: None  # type: ignore[union-attr,method-assign]
    try:
        uv, env = make_uv(workdir / "uv-venv"), uv_env(workdir / "uv-cache")
        project = uv_project(workdir / "project")
        index = ["--default-index", upstream.url]
        say(f"uv lock against {upstream.url} (the file cache only)")
        run([str(uv), "lock", *index], env=env, cwd=project, timeout=600)
        common = ["--frozen", "--no-emit-project", "--no-header", "--quiet"]
        run(
            [str(uv), "export", *common, "--format", "pylock.toml", "-o", "pylock.toml"], env=env, cwd=project
        )
        run(
            [str(uv), "export", *common, "--format", "requirements.txt", "-o", "pinned.txt"],
            env=env,
            cwd=project,
        )
        for source, target in (("pylock.toml", LOCK), ("pinned.txt", PINNED)):
            text = (project / source).read_text(encoding="utf-8")
            target.write_text(to_pypi(text, upstream.url), encoding="utf-8")
        shutil.copyfile(project / "uv.lock", workdir / "uv.lock")
    finally:
        upstream.stop()
    packages = lock_packages()
    say(
        f"wrote {LOCK} ({len(packages)} packages, {len({n for n, _ in packages})} distinct names) and {PINNED}"
    )


class CachePages:
    """The file cache as the project pages of an index (for devpi_client_warmup.resolve.locked.select)."""

    def __init__(self) -> None:
        self.files: dict[str, list[Listed]] = {}
        for path in FILES.iterdir():
            name = path.name
            project = (
                parse_wheel_filename(name)[0] if name.endswith(".whl") else parse_sdist_filename(name)[0]
            )
            sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
            self.files.setdefault(project, []).append(Listed(f"file://{path}", sha256))

    def project_files(self, project: str) -> list[Listed] | None:
        return self.files.get(project)


def check() -> None:
    """Every target of the matrix finds a file of each locked release that applies to it, in FILES."""
    from devpi_client_warmup.inputs.lock import load
    from devpi_client_warmup.matrix import build_matrix
    from devpi_client_warmup.resolve.locked import select

    pylock, pages, failed = load(LOCK), CachePages(), []
    for target in build_matrix([",".join(BENCH.pythons)], BENCH.platforms):
        resolution = select(target, pylock, pages)
        say(
            f"  {target.name}: {len(resolution.picks)} locked files"
            + (f"; {resolution.error}" if resolution.error else "")
        )
        failed += [target.name] if resolution.error else []
    if failed:
        raise SystemExit(f"the lock does not fit {', '.join(failed)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="make benchmarks/pylock.toml for bench.py's lock scenario")
    parser.add_argument("--no-fill", action="store_true", help="lock what the file cache holds now")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="devpi-warmup-make-lock-"))
    say(f"working directory {workdir}")
    try:
        if not args.no_fill:
            fill(workdir)
        lock(workdir)
        check()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
