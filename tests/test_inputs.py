"""Bad input ends with one clear line and exit code 2, never a traceback (run as a user would)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.devpi import DevpiScene, clean_env, executable, run


def warmup(clientdir: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run([executable("devpi"), "--clientdir", str(clientdir), "warmup", *args], check=False, cwd=cwd)


def assert_bad_input(proc: subprocess.CompletedProcess[str], message: str) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if message in line]
    assert len(errors) == 1, output


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({}, ["-r", "missing.txt"], "requirements file not found: missing.txt"),
        ({"req.txt": "six\nnot a requirement!\n"}, ["-r", "req.txt"], "req.txt:2: invalid requirement 'not a requirement!'"),
        ({}, ["six", "--platform", "solaris_sparc"], "unknown platform 'solaris_sparc'"),
        ({}, ["six", "--python", "2.7"], "unknown Python version '2.7'"),
        ({}, ["--matrix", "pyproject"], "--matrix: pyproject.toml not found"),
        ({"pyproject.toml": "[tool.devpi-warmup\n"}, ["--matrix", "pyproject"], "is not valid TOML"),
        ({"pyproject.toml": "[project]\nname = 'x'\n"}, ["--matrix", "pyproject"], "has no [tool.devpi-warmup] table"),
        ({"pyproject.toml": "[tool.devpi-warmup]\nplatform = 'win_amd64'\n"}, ["--matrix", "pyproject"],
         "[tool.devpi-warmup] platform must be a list of strings"),
        ({}, [], "nothing to warm"),
        ({}, ["six", "--jobs", "0"], "--jobs and --download-jobs must be at least 1"),
        ({}, ["six", "--download-jobs", "0"], "--jobs and --download-jobs must be at least 1"),
        ({}, ["six", "--report", "missing/report.json"], "--report missing/report.json: the folder missing does not exist"),
        ({"wheelhouse": "a file"}, ["six", "--dest", "wheelhouse"], "--dest wheelhouse is not a directory"),
        ({"pins": "a file"}, ["six", "--pin-dir", "pins"], "--pin-dir pins is not a directory"),
        ({}, ["six-1.17.0-py2.py3-none-any.whl"], "'six-1.17.0-py2.py3-none-any.whl' is a file name"),
        ({}, ["six", "--only-binary", "a b"], "command line: --only-binary 'a b': expected :all:, :none: or a"),
        ({"pyproject.toml": "[tool.devpi-warmup]\npackages = ['six']\nprefer-newest = 'yes'\n"},
         ["--matrix", "pyproject"], "[tool.devpi-warmup] prefer-newest must be true or false"),
    ],
)  # fmt: skip
def test_bad_input(tmp_path: Path, files: dict[str, str], args: list[str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert_bad_input(warmup(tmp_path / "client", *args, cwd=tmp_path), message)


def test_index_that_does_not_exist(devpi: DevpiScene) -> None:
    proc = devpi.warmup("six", "--index", "alice/nope")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "alice/nope" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_unreachable_server(devpi: DevpiScene) -> None:
    devpi.server.stop()
    proc = devpi.warmup("six")
    assert_bad_input(proc, f"cannot reach devpi at {devpi.server.url}/: Connection refused")
    assert "Max retries" not in proc.stdout + proc.stderr  # urllib3's retry text is not the cause


def test_unknown_package_names_package_and_target(devpi: DevpiScene) -> None:
    proc = devpi.warmup("pure-a", "no-such-package", "--python", "3.12", "--platform", "win_amd64")
    assert_bad_input(
        proc, "unknown package 'no-such-package': the index has no such project (target 3.12-win_amd64)"
    )


def test_no_devpi_use_state(tmp_path: Path) -> None:
    proc = run(
        [executable("devpi"), "--clientdir", str(tmp_path), "warmup", "six"], check=False, env=clean_env()
    )
    assert_bad_input(proc, "not connected to an index, see 'devpi use'")


def test_missing_client_certificate(devpi: DevpiScene, tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("not really a certificate")
    devpi.client.use(devpi.index_url, "--client-cert", str(cert))
    cert.unlink()
    assert_bad_input(devpi.warmup("six"), f"the client certificate {cert} of 'devpi use' does not exist")


def test_misspelled_package_in_a_requirements_file_names_file_and_line(
    devpi: DevpiScene, tmp_path: Path
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pure-a\npure-bb>=1\n")
    proc = devpi.warmup("-r", str(requirements), "--python", "3.12", "--platform", "win_amd64")
    assert_bad_input(
        proc,
        f"{requirements}:2: unknown package 'pure-bb': the index has no such project (target 3.12-win_amd64);"
        " did you mean 'pure-b'?",
    )


def test_urls_in_messages_never_show_their_credentials(tmp_path: Path) -> None:
    """pip expands ${VAR} in requirement files; a message quoting such a line hides the user-info
    of every URL in it, as pip does."""
    token = "ghp_s3cr3tT0ken"
    for line, shown in [
        ("private @ git+https://${GH_TOKEN}@github.com/acme/private.git", "git+https://****@github.com/acme"),
        (
            "-e git+https://bot:${GH_TOKEN}@github.com/acme/private.git",
            "git+https://bot:****@github.com/acme",
        ),
    ]:
        (tmp_path / "req.txt").write_text(line + "\n")
        proc = run(
            [executable("devpi"), "--clientdir", str(tmp_path / "client"), "warmup", "-r", "req.txt"],
            check=False, cwd=tmp_path, env=clean_env(GH_TOKEN=token),
        )  # fmt: skip
        assert_bad_input(proc, shown)
        assert token not in proc.stdout + proc.stderr
