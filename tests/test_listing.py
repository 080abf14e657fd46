"""What the index pages list is kept compact and read back exactly (see index.listing)."""

from __future__ import annotations

from devpi_client_warmup.index.listing import Listed, Listing

FILES = "http://127.0.0.1:3141/root/pypi/+f/"
SDIST = Listed(FILES + "0ab/cdef/foo_bar-1.0.tar.gz", "ab" * 32)
WHEEL = Listed(FILES + "1cd/ef01/foo_bar-1.0-py3-none-any.whl", None, core_metadata=True)
ODD = Listed(FILES + "2ef/0123/foo_bar-2.0rc1.tar.gz", "not-a-sha256")


def test_a_page_is_read_back_as_it_was_listed() -> None:
    listing = Listing()
    listing.learn("Foo.Bar", [SDIST, WHEEL, ODD])

    assert [listing.lookup(f.url) for f in (SDIST, WHEEL, ODD)] == [SDIST, WHEEL, ODD]
    assert listing.lookup(FILES + "0ab/cdef/foo_bar-1.1.tar.gz") is None
    assert listing.lookup(FILES + "0ab/cdef/foo_bar-1.0.tar") is None  # a prefix of a listed URL
    assert listing.versions("foo_bar") == ["1.0", "2.0rc1"]
    assert listing.release_files("FOO-bar", "1.0") == [SDIST.url, WHEEL.url]
    assert listing.release_files("foo-bar", "3.0") == []
    assert listing.versions("unknown") == []


def test_a_second_page_of_a_project_adds_files_and_what_the_first_did_not_say() -> None:
    listing = Listing()
    listing.learn("foo-bar", [SDIST, WHEEL])
    elsewhere = Listed("https://files.example/foo_bar-3.0.tar.gz", "cd" * 32)
    listing.learn(
        "foo-bar",
        [Listed(WHEEL.url, "ef" * 32), Listed(SDIST.url, None, core_metadata=True), elsewhere, elsewhere],
    )

    assert listing.lookup(WHEEL.url) == Listed(WHEEL.url, "ef" * 32, core_metadata=True)
    assert listing.lookup(SDIST.url) == Listed(SDIST.url, SDIST.sha256, core_metadata=True)
    assert listing.lookup(elsewhere.url) == elsewhere
    assert listing.versions("foo-bar") == ["1.0", "3.0"]
    assert listing.release_files("foo-bar", "3.0") == [elsewhere.url]  # listed twice, kept once


def test_a_page_read_again_updates_its_files_in_place() -> None:
    listing = Listing()
    listing.learn("foo-bar", [SDIST, WHEEL])
    assert listing.versions("foo-bar") == ["1.0"]
    listing.learn("foo-bar", [Listed(WHEEL.url, "ef" * 32), SDIST])

    assert listing.lookup(WHEEL.url) == Listed(WHEEL.url, "ef" * 32, core_metadata=True)
    assert listing.lookup(SDIST.url) == SDIST
    assert listing.release_files("foo-bar", "1.0") == [SDIST.url, WHEEL.url]


def test_a_file_listed_on_another_projects_page_is_found() -> None:
    listing = Listing()
    stray = Listed(FILES + "3ab/4567/other-1.0-py3-none-any.whl", "01" * 32)
    unparsable = Listed(FILES + "4cd/89ab/README.txt", "23" * 32)
    listing.learn("foo-bar", [SDIST, stray, unparsable])

    assert listing.lookup(stray.url) == stray
    assert listing.lookup(unparsable.url) == unparsable
    assert listing.versions("other") == []  # releases are the page's own project's
    assert listing.versions("foo-bar") == ["1.0"]


def test_a_url_with_a_line_break_is_left_out_and_the_others_stay_aligned() -> None:
    listing = Listing()
    broken = Listed(FILES + "5ef/cdef/foo_bar-1.1\n.tar.gz", "45" * 32)
    later = Listed(FILES + "6ab/cdef/foo_bar-3.0.tar.gz", "67" * 32)
    listing.learn("foo-bar", [SDIST, broken, later, WHEEL])

    assert [listing.lookup(f.url) for f in (SDIST, later, WHEEL)] == [SDIST, later, WHEEL]
    assert listing.lookup(broken.url) is None
    assert listing.versions("foo-bar") == ["1.0", "3.0"]
