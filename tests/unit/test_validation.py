"""Hostile repository URLs, branches and subdirectories get a 400-class error that says what is accepted."""

import pytest

from devgem import config
from devgem.domain import validation
from devgem.domain.errors import InvalidInput
from devgem.domain.validation import DEFAULT_GIT_HOSTS


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/ana/shop",
        "https://github.com/ana/shop.git",
        "https://gitlab.com/group/sub/repo",
        "https://bitbucket.org/ana/shop",
        "https://GitHub.com/ana/shop",
        "https://github.com:443/ana/shop",
    ],
)
def test_accepts_https_repository_urls_on_the_default_git_hosts(url: str) -> None:
    assert validation.repo_url(url) == url
    assert validation.repo_url(url, allow_local=True) == url


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://github.com/ana/shop", "scheme 'http'"),
        ("git@github.com:ana/shop.git", "scheme"),
        ("ssh://github.com/ana/shop", "scheme 'ssh'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("https://user:token@github.com/ana/shop", "credentials"),
        ("https://token@github.com/ana/shop", "credentials"),
        ("https://github.com/ana/shop;rm -rf /", "characters"),
        ("https://github.com/ana/$(reboot)", "characters"),
        ("https://github.com/ana/shop`id`", "characters"),
        ("https://github.com/ana/shop|cat", "characters"),
        ("--upload-pack=touch /tmp/x", "characters"),
        ("-https://github.com/a/b", "start with '-'"),
        ("https://github.com/ana", "owner/repo"),
        ("https://github.com/ana/../etc", "owner/repo"),
        ("https://localhost/ana/shop", "internal"),
        ("https://github.com/ana/shop?x=1", "characters"),
        ("", "required"),
        ("https://github.com/" + "a" * 600, "longer than"),
    ],
)
def test_rejects_hostile_urls_naming_what_is_accepted(url: str, says: str) -> None:
    with pytest.raises(InvalidInput) as err:
        validation.repo_url(url)
    assert says in str(err.value)
    assert "https://" in str(err.value) or "longer" in str(err.value)


ALLOWED = "Devgem builds from https:// repositories on github.com, gitlab.com, bitbucket.org (DEVGEM_GIT_HOSTS)"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        # the metadata server, by name and by every spelling of its address
        ("https://169.254.169.254/computeMetadata/v1/x", "(link-local: the cloud metadata server)"),
        ("https://metadata.google.internal/computeMetadata/v1/x", "internal (a private network name"),
        ("https://metadata/computeMetadata/v1", "internal (the cloud metadata server)"),
        ("https://2852039166/a/b", "(link-local: the cloud metadata server)"),  # decimal
        ("https://0xa9fea9fe/a/b", "(link-local: the cloud metadata server)"),  # hex
        ("https://0xA9FEA9FE/a/b", "(link-local: the cloud metadata server)"),
        ("https://0251.0376.0251.0376/a/b", "(link-local: the cloud metadata server)"),  # octal
        ("https://169.254.43518/a/b", "(link-local: the cloud metadata server)"),  # short form
        ("https://0xa9.0xfe.0xa9.0xfe/a/b", "(link-local: the cloud metadata server)"),
        ("https://[::ffff:169.254.169.254]/a/b", "169.254.169.254 inside IPv6, link-local: the cloud metadata"),
        ("https://[::ffff:a9fe:a9fe]/a/b", "169.254.169.254 inside IPv6"),
        ("https://169.254.1.1/a/b", "(link-local)"),
        # other internal ranges
        ("https://127.0.0.1/a/b", "(loopback)"),
        ("https://2130706433/a/b", "(loopback)"),
        ("https://127.1/a/b", "(loopback)"),
        ("https://10.0.0.1/a/b", "(private)"),
        ("https://172.16.5.4/a/b", "(private)"),
        ("https://192.168.1.1/a/b", "(private)"),
        ("https://100.64.0.1/a/b", "(not globally routable)"),
        ("https://0.0.0.0/a/b", "(unspecified)"),
        ("https://0/a/b", "(unspecified)"),
        ("https://224.0.0.1/a/b", "(multicast)"),
        ("https://240.0.0.1/a/b", "(reserved)"),
        ("https://[::1]/a/b", "(loopback)"),
        ("https://[::]/a/b", "(unspecified)"),
        ("https://[fd00::1]/a/b", "(private)"),
        ("https://[fe80::1]/a/b", "(link-local)"),
        ("https://[fe80::1%25eth0]/a/b", "(link-local)"),
        ("https://[ff02::1]/a/b", "(multicast)"),
        # public addresses too: git hosts are named, never numbered
        ("https://8.8.8.8/a/b", "(public, but not a named git host)"),
        ("https://[2001:4860:4860::8888]/a/b", "(public, but not a named git host)"),
        ("https://09/a/b", "an IP address literal"),  # not valid octal, still numeric
        ("https://1.2.3.4.5/a/b", "an IP address literal"),
        ("https://1.2.3.256/a/b", "an IP address literal"),
        # names that only mean something inside a network
        ("https://localhost/a/b", "internal (loopback)"),
        ("https://LOCALHOST/a/b", "internal (loopback)"),
        ("https://git.localhost/a/b", "internal (loopback)"),
        ("https://anything.internal/a/b", "internal (a private network name"),
        ("https://printer.local/a/b", "internal (a multicast DNS name)"),
        ("https://nas.home.arpa/a/b", "internal (a home network name)"),
        ("https://gitserver/a/b", "internal (a single-label name"),
    ],
)
def test_internal_hosts_are_refused_naming_the_allowed_hosts(url: str, says: str) -> None:
    with pytest.raises(InvalidInput) as err:
        validation.repo_url(url)
    assert says in str(err.value)
    assert str(err.value).endswith(ALLOWED)


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/a/b",
        "https://metadata.google.internal/a/b",
        "https://[::1]/a/b",
        "https://localhost/a/b",
        "https://10.0.0.1/a/b",
    ],
)
def test_internal_hosts_are_refused_in_local_development_and_even_when_listed(url: str) -> None:
    """allow_local adds local paths only, and listing an internal host in DEVGEM_GIT_HOSTS does not open it."""
    host = url.split("/")[2].strip("[]")
    for allow_local in (False, True):
        with pytest.raises(InvalidInput, match=r"IP address|internal"):
            validation.repo_url(url, allow_local=allow_local, git_hosts=(host, "github.com"))


@pytest.mark.parametrize(
    "url",
    [
        "https://gitlab.example.org/group/repo",
        "https://169.254.169.254.nip.io/a/b",  # a public name that resolves to the metadata server
        "https://github.com.evil.example/a/b",
        "https://api.github.com/a/b",  # exact names only
        "https://evilgithub.com/a/b",
    ],
)
def test_a_public_host_that_is_not_listed_is_refused_naming_the_allowed_hosts(url: str) -> None:
    with pytest.raises(InvalidInput) as err:
        validation.repo_url(url)
    assert f"host {url.split('/')[2]!r} is not allowed; {ALLOWED}" in str(err.value)


def test_the_listed_git_hosts_are_the_ones_accepted() -> None:
    hosts = ("git.example.org",)
    assert validation.repo_url("https://git.example.org/team/app", git_hosts=hosts)
    with pytest.raises(
        InvalidInput, match=r"not allowed; Devgem builds from https:// repositories on git\.example\.org \("
    ):
        validation.repo_url("https://github.com/ana/shop", git_hosts=hosts)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://github.com@169.254.169.254/a/b", "credentials"),
        ("https://github.com:443@169.254.169.254/a/b", "credentials"),
        ("https://user:pass@github.com/ana/shop", "credentials"),
        ("https://@github.com/ana/shop", "credentials"),
        ("https://169.254.169.254@github.com/ana/shop", "credentials"),
        ("https://github.com%40169.254.169.254/a/b", "not a valid public host name"),
        ("https://github.com/@169.254.169.254/a", "owner/repo"),
        ("https://github.com./ana/shop", "not a valid public host name"),
        ("https://evil.169.254.169.254/ana/shop", "not allowed"),
        ("https://[github.com]/ana/shop", "not a valid URL"),
        ("https://[::1/ana/shop", "not a valid URL"),
        ("https://github.com:22/ana/shop", "port"),
        ("https://github.com:/ana/shop", "port"),
        ("https://github.com:99999/ana/shop", "not a valid URL"),
        ("https:///ana/shop", "names no host"),
    ],
)
def test_userinfo_ports_and_odd_hosts_do_not_fool_the_host_check(url: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        validation.repo_url(url)


@pytest.mark.parametrize(("value", "kind"), [({}, "an object"), ([], "an array"), (False, "false"), (7, "a number")])
def test_a_repo_url_of_the_wrong_type_says_so(value: object, kind: str) -> None:
    with pytest.raises(InvalidInput, match=f"repoUrl must be a string, not {kind}"):
        validation.repo_url(value)


def test_local_paths_only_when_allowed() -> None:
    with pytest.raises(InvalidInput):
        validation.repo_url("/srv/repos/shop")
    assert validation.repo_url("/srv/repos/shop", allow_local=True) == "/srv/repos/shop"
    assert validation.repo_url("file:///srv/repos/shop", allow_local=True) == "file:///srv/repos/shop"
    with pytest.raises(InvalidInput, match="normalised"):
        validation.repo_url("/srv/../etc", allow_local=True)


@pytest.mark.parametrize("name", ["main", "feature/login", "release-1.2", "v2_x", "user/ana/fix-3"])
def test_accepts_git_branch_names(name: str) -> None:
    assert validation.branch(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "-main",
        "--upload-pack=evil",
        "a..b",
        "a b",
        "a~1",
        "a^",
        "a:b",
        "a?",
        "a*",
        "a[",
        "a\\b",
        "/main",
        "main/",
        "a//b",
        "main.lock",
        "main.",
        ".hidden",
        "a/.b",
        "@",
        "a@{1}",
        "a\x00b",
        "a\nb",
        "x" * 300,
        "",
    ],
)
def test_rejects_branches_git_would_reject(name: str) -> None:
    with pytest.raises(InvalidInput, match="branch"):
        validation.branch(name)


@pytest.mark.parametrize("value", ["../x", "/abs", "a/../../b", "a b", "a;b", "."])
def test_rejects_subdirectories_outside_the_repository(value: str) -> None:
    with pytest.raises(InvalidInput, match="subdirectory"):
        validation.subdirectory(value)


@pytest.mark.parametrize(("value", "kind"), [({}, "an object"), ([], "an array"), (False, "false"), (0, "a number")])
def test_branch_and_subdirectory_of_the_wrong_type_say_so(value: object, kind: str) -> None:
    with pytest.raises(InvalidInput, match=f"branch must be a string, not {kind}"):
        validation.branch(value)
    with pytest.raises(InvalidInput, match=f"subdirectory must be a string, not {kind}"):
        validation.subdirectory(value)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ({}, "an object"),
        ([], "an array"),
        (False, "false (a boolean)"),
        (0, "a number"),
        (None, "null"),
        (1.5, "a number"),
    ],
)
def test_a_present_field_of_the_wrong_type_is_never_taken_as_absent(value: object, kind: str) -> None:
    with pytest.raises(InvalidInput) as err:
        validation.text_field({"name": value}, "name", default="shop", absent_means="to use the default")
    assert str(err.value) == f"name must be a string, not {kind}; leave it out to use the default"


def test_an_absent_field_takes_its_default_and_a_string_is_kept() -> None:
    assert validation.text_field({}, "name", default="shop", absent_means="") == "shop"
    assert validation.text_field({"name": "web"}, "name", default="shop", absent_means="") == "web"


def test_subdirectory_is_normalised() -> None:
    assert validation.subdirectory("services/web/") == "services/web"
    assert validation.subdirectory(None) == ""


@pytest.mark.parametrize("value", ["../x", "ABC123", "a/b", "", "x" * 50, 7])
def test_ids_in_paths_are_our_format_only(value: object) -> None:
    with pytest.raises(InvalidInput, match="not a valid id"):
        validation.identifier(value, "app id")


@pytest.mark.parametrize(
    ("setting", "hosts"),
    [
        ("", DEFAULT_GIT_HOSTS),
        (" , ", DEFAULT_GIT_HOSTS),
        ("git.example.org", ("git.example.org",)),
        (" GitHub.com , git.example.org,github.com ", ("github.com", "git.example.org")),
    ],
)
def test_the_git_hosts_setting_is_read_as_lower_case_names(setting: str, hosts: tuple[str, ...]) -> None:
    assert config.git_hosts(setting) == hosts


def test_the_git_hosts_setting_reaches_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVGEM_GIT_HOSTS", "git.example.org,github.com")
    config.settings.cache_clear()
    try:
        assert config.settings().git_hosts == ("git.example.org", "github.com")
    finally:
        config.settings.cache_clear()
