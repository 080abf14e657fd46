"""``devpi warmup``: the only module that talks to devpi-client's hub; wires the pipeline."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import Any

from devpi.main import set_devpi_auth_header  # type: ignore[import-untyped]

from . import lock, pyproject, report
from .access import IndexAccess, preflight
from .cache import Cache
from .errors import InputError
from .fetch import FileState
from .gateway import UNKNOWN_PACKAGE
from .lock import Lock, is_lock_file
from .matrix import Target, build_matrix
from .pipeline import Options, TargetResult, run
from .sources import Inputs


def main(hub: Any, args: argparse.Namespace) -> int:
    """Run the command; the return value is the exit code (0 ok, 1 incomplete, 2 bad input, 130 Ctrl-C)."""
    try:
        return _main(hub, args)
    except KeyboardInterrupt:
        hub.error("devpi warmup: interrupted; files already fetched are kept, nothing partial was written")
        return 130


def _main(hub: Any, args: argparse.Namespace) -> int:
    try:
        targets, inputs, pinned = plan(args)
        access = _access(hub)
        preflight(access)
    except InputError as exc:
        hub.error(f"devpi warmup: {exc}")
        return 2
    except SystemExit as exc:  # devpi-client already said why (e.g. no 'devpi use' state)
        return 2 if exc.code else 0
    for note in inputs.notes:
        hub.warn(note)
    if pinned is not None and not args.quiet:
        hub.info(f"using the lock {pinned.path}: {len(pinned.packages)} releases, no resolution")
    if not args.quiet:
        hub.info(
            f"warming {access.simple_url} for {len(targets)} target(s):", ", ".join(t.name for t in targets)
        )
    if args.dryrun:
        _show_dry_run(hub, targets, inputs, pinned, args)
        return 0

    cache, cache_problem = Cache.open(_cache_dir())
    if cache_problem:
        hub.warn(f"devpi warmup: {cache_problem}")
    live = sys.stdout.isatty() and not args.quiet and not os.environ.get("CI")
    console = Console(hub, len(targets), live=live, quiet=args.quiet)
    options = Options(
        dest=Path(args.dest).expanduser() if args.dest else None,
        check=args.check,
        jobs=args.jobs,
        cache=cache,
        refuse_builds=args.refuse_builds,
    )
    try:
        outcome = run(targets, inputs, access, options, console, pinned)
    finally:
        console.close()
    for note in outcome.notes if not args.quiet else []:
        hub.warn(f"note: {note}")
    for problem in outcome.problems:
        hub.error(f"devpi: {problem}")
    if outcome.external:
        hub.warn(
            f"{len(outcome.external)} file(s) are served from outside devpi (mirror_use_external_urls?);"
            " devpi does not cache those"
        )
    hub.line("")
    hub.line(report.summary(outcome))
    if args.report:
        report.write_json(Path(args.report), report.as_json(outcome, access.simple_url, args.check))
    unknown = [r for r in outcome.results if (r.resolution.error or "").startswith(UNKNOWN_PACKAGE)]
    if unknown:
        hub.error(f"devpi warmup: {unknown[0].resolution.error} (target {unknown[0].target.name})")
        return 2
    return 0 if all(result.ok for result in outcome.results) else 1


class Console:
    """Target lines as targets finish; on a terminal also a live status line."""

    def __init__(self, hub: Any, targets: int, *, live: bool, quiet: bool) -> None:
        self.hub, self.targets, self.live, self.quiet = hub, targets, live, quiet
        self.lock = threading.Lock()
        self.resolved_targets = self.fetched_files = self.fetched_bytes = 0

    def resolved(self, result: TargetResult) -> None:
        with self.lock:
            self.resolved_targets += 1
            self._status()

    def fetched(self, state: FileState) -> None:
        with self.lock:
            if state.fetched:
                self.fetched_files += 1
                self.fetched_bytes += state.size or 0
            self._status()

    def finished(self, result: TargetResult) -> None:
        with self.lock:
            self._clear()
            if not (self.quiet and result.ok):
                self.hub.line(report.target_line(result), red=not result.ok, green=result.ok)
            self._status()

    def close(self) -> None:
        with self.lock:
            self._clear()

    def _status(self) -> None:
        if self.live:
            sys.stdout.write(
                f"\r\x1b[Kresolved {self.resolved_targets}/{self.targets} targets,"
                f" fetched {self.fetched_files} files ({report.human_bytes(self.fetched_bytes)})"
            )
            sys.stdout.flush()

    def _clear(self) -> None:
        if self.live:
            sys.stdout.write("\r\x1b[K")
            sys.stdout.flush()


def plan(args: argparse.Namespace) -> tuple[list[Target], Inputs, Lock | None]:
    """The matrix, the inputs and the lock, from the command line and ``--matrix``; the command line wins."""
    inputs = Inputs()
    pythons, platforms = args.python, args.platform
    locks = [Path(name) for name in args.lock] + [Path(n) for n in args.requirement if is_lock_file(Path(n))]
    if args.matrix:
        table = pyproject.load(args.matrix)
        pythons, platforms = pythons or table.pythons, platforms or table.platforms
        if not (args.pkgspecs or args.requirement or args.lock):
            inputs.extend(table.inputs)
            locks += table.locks
        else:  # the table's selection policy still holds
            inputs.formats += table.inputs.formats
            inputs.prefer_newest = table.inputs.prefer_newest
    inputs.add_packages(args.pkgspecs, "command line")
    for name in args.requirement:
        if not is_lock_file(Path(name)):
            inputs.read(Path(name))
    for name in args.constraint:
        inputs.read(Path(name), constraint=True)
    inputs.pre = inputs.pre or args.pre
    for option, value in args.formats:
        inputs.add_format(option, value, "command line")
    if args.prefer_newest:
        inputs.prefer_newest = True
    elif args.prefer_binary:
        inputs.prefer_newest = False
    if len(locks) > 1 or (locks and (inputs.requirements or inputs.constraints)):
        raise InputError("a lock file is complete on its own: give one lock and no other requirements")
    pinned = lock.load(locks[0]) if locks else lock.from_pinned_requirements(inputs)
    if not inputs.requirements and pinned is None:
        raise InputError(
            "nothing to warm: name packages, -r FILE, --lock FILE, or --matrix with requirements"
        )
    if args.dest and Path(args.dest).exists() and not Path(args.dest).is_dir():
        raise InputError(f"--dest {args.dest} is not a directory")
    if args.jobs < 1:
        raise InputError("--jobs must be at least 1")
    return build_matrix(pythons, platforms), inputs, pinned


def _access(hub: Any) -> IndexAccess:
    """The index and credentials of the ``devpi use`` state (``--index`` and DEVPI_INDEX honoured)."""
    current = hub.current
    if not current.index:
        hub.fatal_code("not connected to an index, see 'devpi use'", 2)
    simple_url = current.simpleindex
    headers: dict[str, str] = {}
    login = current.get_auth()
    set_devpi_auth_header(headers, login)
    basic_auth = current.get_basic_auth(simple_url)
    secrets = [pair[1] for pair in (login, basic_auth) if pair] + list(headers.values())
    return IndexAccess(
        root_url=current.root_url.url,
        index_url=current.index_url.url,
        simple_url=simple_url,
        headers=headers,
        basic_auth=basic_auth,
        client_cert=current.get_client_cert(simple_url),
        secrets=tuple(secret for secret in secrets if len(secret) > 3),
    )


def _show_dry_run(
    hub: Any, targets: list[Target], inputs: Inputs, pinned: Lock | None, args: argparse.Namespace
) -> None:
    if pinned is not None:
        hub.line(f"locked: {len(pinned.packages)} releases from {pinned.path} (no resolution)")
        for target in targets:
            hub.line(f"{target.name}: the locked files its tags accept, best first: {target.tags[0]}, ...")
    else:
        hub.line("requirements:", ", ".join(str(line.requirement) for line in inputs.requirements))
        if inputs.constraints:
            hub.line("constraints:", ", ".join(str(line.requirement) for line in inputs.constraints))
        for target in targets:
            hub.line(f"{target.name}: pip install --dry-run {' '.join(target.pip_options)}")
    action = "check what devpi stores" if args.check else "fetch every chosen file through devpi"
    hub.line(f"then {action}" + (f" and keep the files in {args.dest}" if args.dest else ""))


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "devpi-client-warmup"
