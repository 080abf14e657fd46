"""``devpi warmup``: the only module that talks to devpi-client's hub; wires the pipeline."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import platformdirs
from devpi.main import set_devpi_auth_header  # type: ignore[import-untyped]
from packaging.utils import canonicalize_name

from . import report
from .console import Console
from .errors import InputError
from .index.access import IndexAccess, close_match, preflight, redact_userinfo
from .index.cache import Cache
from .inputs import lock, pyproject
from .inputs.lock import Lock, is_lock_file
from .inputs.requirements import Inputs
from .matrix import Target, build_matrix
from .pipeline import Options, run
from .problems import ExitCode, exit_code


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: pip stopped, the run's folder removed."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(hub: Any, args: argparse.Namespace) -> int:
    """Run the command; the return value is its ``ExitCode``."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(hub, args)
    except KeyboardInterrupt as exc:
        how, code = (
            ("terminated", ExitCode.TERMINATED)
            if isinstance(exc, Terminated)
            else ("interrupted", ExitCode.INTERRUPTED)
        )
        _say(hub.error, f"devpi warmup: {how}; files already fetched are kept, nothing partial was written")
        return code
    except BrokenPipeError:  # stdout closed early (| head): the report, if any, is written
        return ExitCode.INCOMPLETE
    finally:
        signal.signal(signal.SIGTERM, previous)


def _say(write: Callable[..., object], *text: str) -> None:
    """Print through the hub, every URL's user-info hidden; a closed stdout sends the rest of
    the output nowhere."""
    try:
        write(*(redact_userinfo(part) for part in text))
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _main(hub: Any, args: argparse.Namespace) -> int:
    try:
        targets, inputs, pinned = plan(args)
        access = _access(hub)
        preflight(access)
    except InputError as exc:
        _say(hub.error, f"devpi warmup: {exc}")
        return ExitCode.BAD_INPUT
    except SystemExit as exc:  # devpi-client already said why (e.g. no 'devpi use' state)
        return ExitCode.BAD_INPUT if exc.code else ExitCode.OK
    for note in inputs.notes:
        _say(hub.warn, note)
    if pinned is not None and not args.quiet:
        _say(hub.info, f"using the lock {pinned.path}: {len(pinned.packages)} releases, no resolution")
    if not args.quiet:
        doing = "checking (nothing is fetched into devpi)" if args.check else "warming"
        names = ", ".join(t.name for t in targets)
        _say(hub.info, f"{doing} {access.simple_url} for {len(targets)} target(s):", names)
    if args.dryrun:
        _show_dry_run(hub, targets, inputs, pinned, args)
        return ExitCode.OK

    cache, cache_problem = Cache.open(_cache_dir())
    if cache_problem:
        _say(hub.warn, f"devpi warmup: {cache_problem}")
    live = sys.stdout.isatty() and not args.quiet and not os.environ.get("CI")
    console = Console(
        lambda text, ok: _say(lambda line: hub.line(line, red=not ok, green=ok), text),
        len(targets),
        live=live,
        quiet=args.quiet,
    )
    options = Options(
        dest=Path(args.dest).expanduser() if args.dest else None,
        check=args.check,
        jobs=args.jobs,
        downloads=args.download_jobs,
        cache=cache,
        refuse_builds=args.refuse_builds,
    )
    try:
        outcome = run(targets, inputs, access, options, console, pinned)
    finally:
        console.close()
    if args.report:
        report.write_json(Path(args.report), report.as_json(outcome, access.simple_url, args.check))
    if args.pin_dir and not args.check:
        pins = report.write_pins(Path(args.pin_dir).expanduser(), outcome)
        _say(hub.info, f"wrote {len(pins)} hash-pinned requirements file(s) to {args.pin_dir}")
    for note in outcome.notes if not args.quiet else []:
        _say(hub.warn, f"note: {note}")
    for problem in outcome.problems:
        _say(hub.error, f"devpi: {problem}")
    if outcome.external:
        _say(
            hub.warn,
            f"{len(outcome.external)} file(s) are served from outside devpi (mirror_use_external_urls?);"
            " devpi does not cache those",
        )
    _say(hub.line, "")
    _say(hub.line, report.summary(outcome))
    found = [problem for result in outcome.results for problem in result.problems]
    unknown = next((r for r in outcome.results if r.resolution.unknown_project), None)
    if unknown is not None:  # bad input: said once, with where it was asked for
        project = unknown.resolution.unknown_project or ""
        origins = [
            line.origin
            for line in inputs.requirements + inputs.constraints
            if canonicalize_name(line.requirement.name) == canonicalize_name(project)
        ]
        where = f"{origins[0]}: " if origins and origins[0] != "command line" else ""
        match = close_match(access, project)
        hint = f"; did you mean {match!r}?" if match else ""
        _say(
            hub.error, f"devpi warmup: {where}{unknown.resolution.error} (target {unknown.target.name}){hint}"
        )
    return exit_code(found)


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
    if args.dest:
        _check_writable("--dest", Path(args.dest).expanduser(), folder=True)
    if args.report:
        _check_writable("--report", Path(args.report).expanduser(), folder=False)
    if args.pin_dir:
        _check_writable("--pin-dir", Path(args.pin_dir).expanduser(), folder=True)
    try:
        with tempfile.TemporaryDirectory(prefix="devpi-warmup-"):
            pass
    except OSError as exc:
        raise InputError(
            f"no writable temporary directory ({tempfile.gettempdir()}: {exc.strerror}); set TMPDIR"
        ) from None
    if args.jobs < 1 or args.download_jobs < 1:
        raise InputError("--jobs and --download-jobs must be at least 1")
    return build_matrix(pythons, platforms), inputs, pinned


def _check_writable(option: str, path: Path, *, folder: bool) -> None:
    """``path`` (a folder, or a file to write) can be written, or will be once created."""
    if folder and path.exists() and not path.is_dir():
        raise InputError(f"{option} {path} is not a directory")
    if not folder and path.is_dir():
        raise InputError(f"{option} {path} is a directory, not a file")
    existing = path if folder and path.exists() else path.parent
    if not folder and not existing.is_dir():
        raise InputError(f"{option} {path}: the folder {existing} does not exist")
    while not existing.exists():
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"{option} {path}: not writable")


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
        client_cert=_client_cert(current.get_client_cert(simple_url)),
        secrets=tuple(secret for secret in secrets if len(secret) > 3),
    )


def _client_cert(cert: str | tuple[str, str] | None) -> str | tuple[str, str] | None:
    """The client certificate of the ``devpi use`` state, checked to exist."""
    for path in [cert] if isinstance(cert, str) else list(cert or ()):
        if not Path(path).is_file():
            raise InputError(f"the client certificate {path} of 'devpi use' does not exist")
    return cert


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
            options = [*inputs.pip_options(), *target.pip_options]
            hub.line(f"{target.name}: pip install --dry-run {' '.join(options)}")
        patches = sorted({t.python.full_version for t in targets if t.python.micro is None})
        if patches:
            hub.line(
                f"note: markers and Requires-Python see python_full_version {', '.join(patches)}: a bare"
                " 3.X is its newest patch release; give --python 3.X.Y for machines kept at an older one"
            )
    linux = sorted({t.platform.tag for t in targets if t.platform.tag.startswith("manylinux")})
    if linux:
        _say(
            hub.line,
            f"note: a platform tag is a floor: {linux[0]} is every machine of that glibc or newer, served"
            " the wheels such a machine accepts; newer machines prefer newer wheels (manylinux_2_28),"
            " so list each floor of your fleet (--platform linux-mixed = manylinux2014 + manylinux_2_28)",
        )
    action = "check what devpi stores" if args.check else "fetch every chosen file through devpi"
    hub.line(f"then {action}" + (f" and keep the files in {args.dest}" if args.dest else ""))


def _cache_dir() -> Path:
    """The user's cache folder for this tool (``$XDG_CACHE_HOME/devpi-client-warmup`` on Linux)."""
    return Path(platformdirs.user_cache_dir("devpi-client-warmup", appauthor=False))
