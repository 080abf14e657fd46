"""How to reach the devpi index: URLs, credentials and TLS settings taken from ``devpi use``."""

from __future__ import annotations

import difflib
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import quote, urljoin, urlsplit

import requests
from packaging.utils import canonicalize_name
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .. import __version__
from ..errors import FetchError, InputError

TIMEOUT = 180  # seconds devpi may take to answer (it may be fetching from its upstream)


@dataclass(frozen=True)
class IndexAccess:
    """The index to warm and everything needed to talk to it; never printed with secrets."""

    root_url: str  # server root, ends with "/"
    index_url: str  # the index's URL, without credentials
    simple_url: str  # the index's +simple/ URL, without credentials
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # X-Devpi-Auth
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    client_cert: str | tuple[str, str] | None = None  # a PEM file, or (certificate, key)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    _threads: threading.local = field(default_factory=threading.local, init=False, repr=False, compare=False)

    def http(self) -> requests.Session:
        """This thread's session to devpi (made once per thread: sessions are not thread-safe)."""
        if not hasattr(self._threads, "session"):
            self._threads.session = self.session()
        session: requests.Session = self._threads.session
        return session

    def session(self) -> requests.Session:
        """A requests session that authenticates like devpi-client and retries transient errors."""
        session = requests.Session()
        session.headers.update({"User-Agent": f"devpi-client-warmup/{__version__}", **self.headers})
        session.auth = self.basic_auth
        session.cert = self.client_cert
        retry = Retry(
            total=3,
            backoff_factor=0.25,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=("GET",),
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=16)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.hooks["response"].append(self._stay_on_devpi)
        return session

    def _stay_on_devpi(
        self, response: requests.Response, *args: object, **kwargs: object
    ) -> requests.Response:
        """Refuse a redirect off devpi's origin before it is followed: the credentials (token,
        basic auth, client certificate) would go along, and devpi stores no file it redirects."""
        if response.is_redirect:
            target = urljoin(response.url, response.headers["Location"])
            if _origin(target) != _origin(self.root_url):
                response.close()
                raise FetchError(
                    f"devpi redirects {self.redact(response.url)} to another host, {self.redact(target)}:"
                    " devpi does not store files it redirects (mirror_use_external_urls?), and"
                    " devpi's credentials are not sent there"
                )
        return response

    def redact(self, text: str) -> str:
        """``text`` with every credential (plain or URL-quoted) replaced by ``****``."""
        for secret in self.secrets:
            for form in {secret, quote(secret, safe=""), quote(secret)}:
                text = text.replace(form, "****")
        return redact_userinfo(text)


_USERINFO_RE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s'\"]+)@")


def redact_userinfo(text: str) -> str:
    """``text`` with the user-info of every URL in it hidden as pip hides it: ``user:****@``,
    or ``****@`` for a lone token."""

    def hide(match: re.Match[str]) -> str:
        user, colon, _ = match["userinfo"].partition(":")
        return match["scheme"] + (f"{user}:****@" if colon else "****@")

    return _USERINFO_RE.sub(hide, text)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.rpartition("@")[2].lower()


def preflight(access: IndexAccess) -> None:
    """Fail early, in one line, when the index cannot be used."""
    try:
        response = access.session().get(
            access.index_url, params={"no_projects": ""}, headers={"Accept": "application/json"}, timeout=30
        )
    except requests.RequestException as exc:
        raise InputError(f"cannot reach devpi at {access.root_url}: {_reason(exc)}") from None
    challenge = response.headers.get("WWW-Authenticate", "")
    if response.status_code == 401 and challenge.lower().startswith("basic") and access.basic_auth:
        raise InputError(
            f"{access.root_url} refused the HTTP basic auth user and password of the 'devpi use' URL"
            " (401 Unauthorized)"
        )
    if (
        response.status_code == 401
        and challenge.lower().startswith("basic")
        and 'realm="pypi"' not in challenge
    ):
        raise InputError(
            f"{access.root_url} asks for HTTP basic auth (401 Unauthorized); put it in the URL:"
            " devpi use http(s)://USER:PASSWORD@HOST/USER/INDEX"
        )
    if response.status_code in (401, 403):
        raise InputError(
            f"devpi refused access to {access.index_url} ({response.status_code} {response.reason});"
            " log in with 'devpi login USER'"
        )
    if response.status_code == 404:
        raise InputError(f"index {access.index_url} does not exist (see 'devpi use -l')")
    if response.status_code != 200:
        raise InputError(f"devpi answered {response.status_code} {response.reason} for {access.index_url}")


def _reason(exc: BaseException) -> str:
    """The plain cause of a connection failure ("Connection refused"), not urllib3's retry text."""
    causes = [exc]
    while causes[-1].__cause__ or causes[-1].__context__:
        causes.append(causes[-1].__cause__ or causes[-1].__context__)  # type: ignore[arg-type]
        if len(causes) > 10:
            break
    for cause in reversed(causes):
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        if isinstance(
            cause, (requests.exceptions.ProxyError, requests.exceptions.SSLError, requests.Timeout)
        ):
            return type(cause).__name__.replace("Error", " error").strip().lower()
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^')\]]+)", text) or re.search(
        r"(Connection refused|timed out|Name or service not known)", text
    )
    return found.group(1) if found else text.splitlines()[0][:120]


def server_state(access: IndexAccess) -> str | None:
    """devpi's uuid and serial: the serial grows with every change to what devpi stores."""
    try:
        response = access.session().get(access.root_url + "+api", timeout=30)
    except requests.RequestException:
        return None
    uuid, serial = response.headers.get("X-Devpi-Uuid"), response.headers.get("X-Devpi-Serial")
    return f"{uuid}:{serial}" if uuid and serial else None


def close_match(access: IndexAccess, name: str) -> str | None:
    """The project of the index whose name is closest to ``name`` (a likely misspelling), if any."""
    try:
        response = access.session().get(
            access.simple_url,
            headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"},
            timeout=60,
        )
    except (requests.RequestException, FetchError):
        return None
    if response.status_code != 200:
        return None
    if response.headers.get("Content-Type", "").startswith("application/vnd.pypi.simple.v1+json"):
        try:
            names = [str(project["name"]) for project in response.json()["projects"]]
        except (ValueError, KeyError, TypeError):
            return None
    else:
        names = re.findall(r"<a [^>]*>([^<]+)</a>", response.text)
    by_canonical: dict[str, str] = {canonicalize_name(found): found for found in names}
    matches = difflib.get_close_matches(canonicalize_name(name), by_canonical, n=1, cutoff=0.75)
    return by_canonical[matches[0]] if matches else None
