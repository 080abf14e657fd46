"""pip's requirements file grammar and the [tool.devpi-warmup] table (pure parsing)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from devpi_client_warmup.errors import InputError
from devpi_client_warmup.inputs.pyproject import load
from devpi_client_warmup.inputs.requirements import Inputs


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_requirements_file_grammar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANDAS_VERSION", "2.2.3")
    write(tmp_path / "sub" / "more.txt", "colorama ; sys_platform == 'win32'\n-c pins.txt\n")
    write(tmp_path / "sub" / "pins.txt", "idna==3.10\n")
    main = write(
        tmp_path / "requirements.txt",
        """\
        # a comment
        requests[socks] >= 2.31   # trailing comment
        pandas==${PANDAS_VERSION} \\
            --hash=sha256:aaaa \\
            --hash=sha256:bbbb
        --index-url https://example.invalid/simple
        --pre
        -r sub/more.txt
        exceptiongroup; python_version < "3.11"
        """,
    )
    inputs = Inputs()
    inputs.read(main)
    assert [str(line.requirement) for line in inputs.requirements] == [
        "requests[socks]>=2.31",
        "pandas==2.2.3",
        'colorama; sys_platform == "win32"',
        'exceptiongroup; python_version < "3.11"',
    ]
    assert inputs.requirements[1].hashes == ("sha256:aaaa", "sha256:bbbb")
    assert inputs.requirements[1].pip_line() == "pandas==2.2.3 --hash=sha256:aaaa --hash=sha256:bbbb"
    assert inputs.requirements[1].origin == f"{main}:3"
    assert [str(line.requirement) for line in inputs.constraints] == ["idna==3.10"]
    assert inputs.pre is True
    assert inputs.notes == [f"{main}:6: ignored --index-url: warmup always uses the devpi index"]


def test_a_requirements_file_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_bytes("\ufeffsix\npure-a>=2\n".encode())
    inputs = Inputs()
    inputs.read(path)
    assert [str(line.requirement) for line in inputs.requirements] == ["six", "pure-a>=2"]


def test_selection_options_in_requirement_files_and_tables_are_pips(tmp_path: Path) -> None:
    main = write(
        tmp_path / "requirements.txt",
        """\
        --only-binary :all:
        --no-binary=docopt,PyYAML
        --prefer-binary
        six
        """,
    )
    inputs = Inputs()
    inputs.read(main)
    assert inputs.formats == [("--only-binary", ":all:"), ("--no-binary", "docopt,PyYAML")]
    assert inputs.notes == []  # applied, not ignored
    assert inputs.pip_options() == ["--prefer-binary", "--only-binary=:all:", "--no-binary=docopt,PyYAML"]
    write(
        tmp_path / "app" / "pyproject.toml",
        """\
        [tool.devpi-warmup]
        python = ["3.12"]
        packages = ["six"]
        only-binary = [":all:"]
        no-binary = ["docopt"]
        prefer-newest = true
        """,
    )
    table = load(str(tmp_path / "app"))
    assert table.inputs.pip_options() == ["--only-binary=:all:", "--no-binary=docopt"]  # no --prefer-binary


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("--only-binary\n", r"requirements.txt:1: --only-binary needs :all:, :none: or package names"),
        ("--no-binary 'not a name'\n", r"requirements.txt:1: --no-binary 'not a name': expected :all:"),
        ("requests\nthis is not a requirement\n", r"requirements.txt:2: invalid requirement 'this is not"),
        ("-e ./project\n", r"requirements.txt:1: editable requirements cannot be warmed"),
        ("./local/path\n", r"requirements.txt:1: './local/path' is a path or URL"),
        ("pkg @ https://example.invalid/pkg.whl\n", r"requirements.txt:1: .* direct URL reference"),
        ("--frobnicate\n", r"requirements.txt:1: unknown option '--frobnicate'"),
        ("-r missing.txt\n", r"requirements file not found: .*missing.txt"),
        ("-r requirements.txt\n", r"include each other in a loop"),
    ],
)
def test_bad_requirement_files_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "requirements.txt", text)
    with pytest.raises(InputError, match=message):
        Inputs().read(path)


def test_pyproject_table_with_project_dependencies_extras_and_groups(tmp_path: Path) -> None:
    path = write(
        tmp_path / "pyproject.toml",
        """\
        [project]
        name = "app"
        requires-python = ">=3.10"
        dependencies = ["requests"]
        classifiers = [
            "Programming Language :: Python :: 3.9",
            "Programming Language :: Python :: 3.10",
            "Programming Language :: Python :: 3.13",
        ]
        [project.optional-dependencies]
        fast = ["orjson"]
        [dependency-groups]
        Test = ["pytest", {include-group = "lint"}]  # group names are normalised (PEP 735)
        lint = ["ruff"]
        [tool.devpi-warmup]
        platform = ["win_amd64"]
        extras = ["fast"]
        groups = ["test"]
        """,
    )
    table = load(str(path))
    assert table.pythons == ["3.10", "3.13"]  # classifiers within requires-python
    assert table.platforms == ["win_amd64"]
    assert [str(line.requirement) for line in table.inputs.requirements] == [
        "requests", "orjson", "pytest", "ruff",
    ]  # fmt: skip


def test_pyproject_table_requirements_are_relative_to_the_file(tmp_path: Path) -> None:
    write(tmp_path / "deps" / "req.txt", "six\n")
    path = write(
        tmp_path / "pyproject.toml",
        '[tool.devpi-warmup]\npython = ["3.12"]\nrequirements = ["deps/req.txt"]\npackages = ["idna"]\n',
    )
    table = load(str(tmp_path))
    assert [str(line.requirement) for line in table.inputs.requirements] == ["six", "idna"]
    assert table.path == path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, r"--matrix: .*pyproject.toml not found"),
        ("[tool.devpi-warmup\n", r"is not valid TOML"),
        ("[project]\nname = 'x'\n", r"has no \[tool.devpi-warmup\] table"),
        ("[tool.devpi-warmup]\npython = '3.12'\n", r"python must be a list of strings"),
        ("[tool.devpi-warmup]\npythons = ['3.12']\n", r"unknown key 'pythons'"),
        ("[tool.devpi-warmup]\npackages = ['x']\n", r"no 'python' list"),
        (
            "[tool.devpi-warmup]\npython = ['3.12']\nextras = ['nope']\n",
            r"no \[project.optional-dependencies\] extra named 'nope'",
        ),
        (
            (
                "[dependency-groups]\na = [{include-group = 'b'}]\nb = [{include-group = 'A'}]\n"
                "[tool.devpi-warmup]\npython = ['3.12']\ngroups = ['a']\n"
            ),
            r"dependency group 'a': Cyclic dependency group include",
        ),
        (
            "[tool.devpi-warmup]\npython = ['3.12']\ngroups = ['nope']\n",
            r"no \[dependency-groups\] group named 'nope'",
        ),
    ],
)
def test_bad_pyproject_tables(tmp_path: Path, text: str | None, message: str) -> None:
    if text is not None:
        write(tmp_path / "pyproject.toml", text)
    with pytest.raises(InputError, match=message):
        load(str(tmp_path / "pyproject.toml"))
