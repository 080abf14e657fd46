"""Run pip for one target: ``python -m devpi_client_warmup.resolve._pip install ...``.

pip evaluates environment markers against the machine it runs on, even with ``--platform``
and ``--python-version`` (pip#11664). Here pip's vendored ``packaging`` gets the target's
marker environment (from ``DEVPI_WARMUP_MARKERS``) before pip starts, so every requirement
line and every ``Requires-Dist`` is evaluated for the target. pip's refusal to consider
sdists with target options is lifted: pip on the target would pick the same sdist and
build it there. The gateway offers PEP 658 metadata for every file; where it cannot read an
sdist's metadata without building it, it answers 404, and pip here falls back to preparing
that sdist (building its metadata) instead of giving up. pip's User-Agent skips its probes
of this machine (``rustc``, ``lsb_release``). Build subprocesses pip starts run unpatched,
for this machine.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def main() -> int:
    environment = json.loads(os.environ.pop("DEVPI_WARMUP_MARKERS"))

    from pip._vendor.packaging import markers

    markers.default_environment = lambda: dict(environment)  # type: ignore[assignment,return-value]
    probe = f'platform_machine == "{environment["platform_machine"]}" and python_full_version == "{environment["python_full_version"]}"'
    if not markers.Marker(probe).evaluate():  # a pip whose markers no longer ask default_environment
        import pip

        print(
            f"ERROR: unsupported pip {pip.__version__}: it does not evaluate markers for the target",
            file=sys.stderr,
        )
        return 3

    from pip._internal.cli import cmdoptions
    from pip._internal.cli.main import main as pip_main

    cmdoptions.check_dist_restriction = lambda options, check_target=False: None
    _plain_user_agent()
    _build_where_metadata_is_missing()
    return pip_main(sys.argv[1:])


def _plain_user_agent() -> None:
    """pip's User-Agent without its probes of this machine: they run ``rustc --version``,
    ``lsb_release`` and ``uname`` (about 0.1 s a run). Only the gateway reads it, and ignores it."""
    import pip
    from pip._internal.network import session

    session.user_agent = lambda: f"pip/{pip.__version__}"  # type: ignore[assignment]


def _build_where_metadata_is_missing() -> None:
    from pip._internal.exceptions import NetworkConnectionError
    from pip._internal.operations.prepare import RequirementPreparer

    fetch = RequirementPreparer._fetch_metadata_using_link_data_attr

    def fetch_or_build(self: RequirementPreparer, req: Any) -> Any:
        try:
            return fetch(self, req)
        except NetworkConnectionError:
            if req.link.is_wheel:
                raise
            return None  # pip prepares the sdist, which builds its metadata

    RequirementPreparer._fetch_metadata_using_link_data_attr = fetch_or_build  # type: ignore[method-assign]


if __name__ == "__main__":
    sys.exit(main())
