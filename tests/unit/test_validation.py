"""Hostile repository URLs, branches and subdirectories get a 400-class error that says what is accepted."""

import pytest

from devgem.domain import validation
from devgem.domain.errors import InvalidInput


@pytest.mark.parametrize(
    "url",
    ["https://github.com/ana/shop", "https://github.com/ana/shop.git", "https://gitlab.example.org/group/sub/repo"],
)
def test_accepts_https_repository_urls(url: str) -> None:
    assert validation.repo_url(url) == url


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
        ("https://localhost/ana/shop", "public host"),
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


def test_subdirectory_is_normalised() -> None:
    assert validation.subdirectory("services/web/") == "services/web"
    assert validation.subdirectory(None) == ""


@pytest.mark.parametrize("value", ["../x", "ABC123", "a/b", "", "x" * 50, 7])
def test_ids_in_paths_are_our_format_only(value: object) -> None:
    with pytest.raises(InvalidInput, match="not a valid id"):
        validation.identifier(value, "app id")


@pytest.mark.parametrize(("value", "kind"), [({}, "an object"), ([], "an array"), (False, "false"), (7, "a number")])
def test_a_repo_url_of_the_wrong_type_says_so(value: object, kind: str) -> None:
    with pytest.raises(InvalidInput, match=f"repoUrl must be a string, not {kind}"):
        validation.repo_url(value)


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
