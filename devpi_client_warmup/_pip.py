"""Run pip for one target: ``python -m devpi_client_warmup._pip install ...``.

pip evaluates environment markers against the machine it runs on, even with ``--platform``
and ``--python-version`` (pip#11664). Here pip's vendored ``packaging`` gets the target's
marker environment (from ``DEVPI_WARMUP_MARKERS``) before pip starts, so every requirement
line and every ``Requires-Dist`` is evaluated for the target. pip's refusal to consider
sdists with target options is lifted: pip on the target would pick the same sdist and
build it there. Build subprocesses pip starts run unpatched, for this machine.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    environment = json.loads(os.environ.pop("DEVPI_WARMUP_MARKERS"))

    from pip._vendor.packaging import markers

    markers.default_environment = lambda: dict(environment)  # type: ignore[assignment,return-value]

    from pip._internal.cli import cmdoptions
    from pip._internal.cli.main import main as pip_main

    cmdoptions.check_dist_restriction = lambda options, check_target=False: None
    return pip_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
