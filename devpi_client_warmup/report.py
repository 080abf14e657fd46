"""What the user reads: a line per target, the summary table, and the JSON report."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from . import __version__
from .index.cache import write_atomically
from .pipeline import Outcome, TargetResult
from .problems import ProblemKind, Status
from .resolve.resolution import ResolvedBy, Role


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def target_line(result: TargetResult) -> str:
    """One line for a target as soon as it is done (and a line for each warning)."""
    older = [f"  older: {older}" for older in result.resolution.older]
    warnings = [f"  warning: {warning}" for warning in result.resolution.warnings]
    return "\n".join([_status_line(result), *older, *warnings])


def _status_line(result: TargetResult) -> str:
    name = result.target.name
    count = f"{len(result.files)} files, {human_bytes(result.bytes)}"
    if result.status is Status.FAILED:
        return f"{name}: FAILED: {result.problems[0].message}"
    if result.status is Status.MISSING:
        return f"{name}: missing {len(result.missing)} of {len(result.files)} file(s): {', '.join(result.missing)}"
    if result.status is Status.INCOMPLETE:
        return f"{name}: INCOMPLETE ({count}): {'; '.join(p.message for p in result.problems)}"
    if result.status is Status.COMPLETE:
        return f"{name}: complete ({count}, all stored by devpi)"
    how = []
    if result.resolution.resolved_by is ResolvedBy.MEMO:
        how.append("pip's earlier answer reused: the index pages are unchanged")
    if result.files and all(f.cached_before for f in result.files):
        how.append("everything was stored already")
    return f"{name}: ok ({count})" + (f"; {', '.join(how)}" if how else "")


def summary(outcome: Outcome) -> str:
    """The table printed at the end of a run."""
    rows = [("target", "files", "bytes", "status")]
    for result in outcome.results:
        rows.append(
            (result.target.name, str(len(result.files)), human_bytes(result.bytes), result.status.value)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    fetched = [f for f in outcome.files if f.fetched]
    if outcome.results and all(result.checked for result in outcome.results):
        stored = sum(1 for f in outcome.files if f.cached_before)
        lines.append(
            f"checked {len(outcome.files)} unique files: devpi stores {stored}, lacks"
            f" {len(outcome.files) - stored}; nothing was fetched into devpi ({outcome.seconds:.1f} s)"
        )
    else:
        lines.append(
            f"{len(outcome.files)} unique files, {len(fetched)} fetched"
            f" ({human_bytes(sum(f.size or 0 for f in fetched))}) in {outcome.seconds:.1f} s"
        )
    if outcome.extra:
        lines.append(
            f"devpi now also stores {len(outcome.extra)} file(s) no target needs (read while resolving):"
            f" {', '.join(f.filename for f in outcome.extra)}"
        )
    return "\n".join(lines)


def as_json(outcome: Outcome, index: str, check: bool) -> dict[str, Any]:
    """The JSON report (schema in README.rst)."""
    return {
        "tool": {"name": "devpi-client-warmup", "version": __version__},
        "index": index,
        "check": check,
        "targets": [
            {
                "name": result.target.name,
                "python": str(result.target.python),
                "platform": result.target.platform.tag,
                "status": result.status.value,
                "resolved_by": result.resolution.resolved_by.value,
                "seconds": round(result.resolution.seconds, 3),
                "files": [
                    {
                        "name": state.filename,
                        "project": pick.name,
                        "version": pick.version,
                        "role": pick.role.value,
                        "sha256": state.sha256,
                        "size": state.size,
                        "url": state.url,
                        "cached_before": state.cached_before,
                        "fetched": state.fetched,
                    }
                    for pick, state in result.picks
                ],
                "missing": result.missing,
                "problems": [p.message for p in result.problems if p.kind is not ProblemKind.MISSING],
                "warnings": result.resolution.warnings,
                "older": [vars(older) for older in result.resolution.older],
            }
            for result in outcome.results
        ],
        "notes": outcome.notes,
        "extra_files": [
            {"name": f.filename, "url": f.url, "sha256": f.sha256, "size": f.size} for f in outcome.extra
        ],
        "problems": [
            f"{p.target}: {p.message}"
            for r in outcome.results
            for p in r.problems
            if p.kind is not ProblemKind.MISSING
        ]
        + outcome.problems,
        "timings": {"total_seconds": round(outcome.seconds, 3)},
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write the report whole or not at all (a crash leaves no half-written report)."""
    chunks = json.JSONEncoder(indent=2).iterencode(data)  # streamed: a big report is not held twice
    write_atomically(path, itertools.chain((chunk.encode("utf-8") for chunk in chunks), [b"\n"]))


def write_pins(folder: Path, outcome: Outcome) -> list[Path]:
    """``folder/<target>.txt`` for each target that is ok: every release it installs, pinned
    with the sha256 of the warmed file (``pip install --require-hashes -r``); the files written."""
    written = []
    for result in outcome.results:
        if result.status is not Status.OK:
            continue
        lines = [
            f"{pick.name}=={pick.version} --hash=sha256:{state.sha256}"
            for pick, state in result.picks
            if pick.role is Role.INSTALL and state.sha256
        ]
        path = folder / f"{result.target.name}.txt"
        header = f"# devpi warmup: what {result.target.name} installs, as warmed; pip install --require-hashes -r {path.name}\n"
        write_atomically(path, [header.encode(), *(line.encode() + b"\n" for line in sorted(lines))])
        written.append(path)
    return written
