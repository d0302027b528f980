"""Which repository URLs and refs a source may name, and what git's failures are called."""

from __future__ import annotations

import pytest

from orchestrator_operator.adapters.git import (
    AUTHENTICATION_FAILED,
    GIT_FAILED,
    HOST_KEY_NOT_TRUSTED,
    INVALID_SOURCE,
    REF_NOT_FOUND,
    REPOSITORY_NOT_FOUND,
    REPOSITORY_UNREACHABLE,
    GitAuth,
    GitError,
    RefSpec,
    check_ref,
    check_url,
    classify,
    redact,
)

COMMIT = "7bc6cd1d6ad16d045ca6ea27dd186bd448f145c8"


@pytest.mark.parametrize(
    ("url", "transport"),
    [
        ("https://github.com/rhdhorchestrator/serverless-workflows", "https"),
        ("https://git.example.com:8443/team/workflows.git", "https"),
        ("https://example.com/team/at@sign.git", "https"),
        ("https://[fd00:0:0:0:0:0:0:1]:8443/workflows", "https"),
        ("ssh://git@github.com/rhdhorchestrator/serverless-workflows.git", "ssh"),
        ("ssh://git@git.example.com:2222/team/workflows.git", "ssh"),
        ("git@github.com:rhdhorchestrator/serverless-workflows.git", "ssh"),
        ("github.com:team/workflows", "ssh"),
    ],
)
def test_https_ssh_and_scp_like_urls_are_accepted(url: str, transport: str) -> None:
    assert check_url(url, allow_file=False).transport == transport


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("-uhttps://example.com/x", "starts with '-'"),
        ("--upload-pack=touch /tmp/pwned", "an option"),
        ("ext::sh -c touch% /tmp/pwned", "a transport helper"),
        ("fd::17", "a transport helper"),
        ("http://example.com/workflows", "plain http"),
        ("git://example.com/workflows", "the git protocol, without authentication"),
        ("ftp://example.com/workflows", "another scheme"),
        ("file:///srv/workflows", "file without the operator's permission"),
        ("/srv/workflows", "a local path"),
        ("./workflows", "a relative local path"),
        ("https://user:s3cret@example.com/workflows", "a password in the URL"),
        ("ssh://git:s3cret@example.com/workflows", "a password in an ssh URL"),
        ("https://example.com", "no repository path"),
        ("https:///workflows", "no host"),
        ("https://-oProxyCommand=x/workflows", "a host that is an option"),
        ("ssh://-oProxyCommand=touch%20x/workflows", "an ssh host that is an option"),
        ("ssh://-user@example.com/workflows", "an ssh user that is an option"),
        ("git@-oProxyCommand=x:workflows", "an scp-like host that is an option"),
        ("git@example.com:-workflows", "an scp-like path that is an option"),
        ("https://example.com/work flows", "a space"),
        ("https://example.com/workflows\n--upload-pack=x", "a line break"),
        ("", "nothing"),
    ],
)
def test_urls_that_could_do_harm_or_leak_are_refused(url: str, why: str) -> None:
    with pytest.raises(GitError) as raised:
        check_url(url, allow_file=False)
    assert raised.value.reason == INVALID_SOURCE, why


@pytest.mark.parametrize(
    "url",
    [
        "https://ghp_T0ken@github.com/team/workflows",
        "https://user:s3cret@example.com/workflows",
        "HTTPS://oauth2@gitlab.example.com/team/workflows.git",
        "https://@example.com/workflows",
    ],
)
def test_user_information_in_an_https_url_is_refused_for_the_secret(url: str) -> None:
    with pytest.raises(GitError) as raised:
        check_url(url, allow_file=False)

    assert raised.value.reason == INVALID_SOURCE
    assert "put the credentials in the Secret" in raised.value.message
    assert "T0ken" not in raised.value.message


def test_file_urls_need_the_operators_permission_and_an_absolute_path() -> None:
    assert check_url("file:///srv/workflows", allow_file=True).transport == "file"
    with pytest.raises(GitError, match="absolute path"):
        check_url("file://srv/workflows", allow_file=True)


@pytest.mark.parametrize(
    "ref",
    [
        RefSpec(),
        RefSpec(branch="main"),
        RefSpec(branch="release/1.x"),
        RefSpec(tag="v1.0.0"),
        RefSpec(commit=COMMIT),
    ],
)
def test_valid_refs_pass(ref: RefSpec) -> None:
    check_ref(ref)


@pytest.mark.parametrize(
    "ref",
    [
        RefSpec(branch="--upload-pack=x"),
        RefSpec(branch="-x"),
        RefSpec(tag="v1..v2"),
        RefSpec(branch="main:refs/heads/other"),
        RefSpec(branch="a b"),
        RefSpec(branch="main.lock"),
        RefSpec(branch="feature/"),
        RefSpec(branch=".hidden"),
        RefSpec(branch="a/.b"),
        RefSpec(branch="x@{1}"),
        RefSpec(branch="main\x00"),
        RefSpec(tag="*"),
        RefSpec(commit="7bc6cd1"),
        RefSpec(commit=COMMIT[:39]),
        RefSpec(commit=COMMIT.upper()),
        RefSpec(commit="a" * 64),
        RefSpec(commit="--all"),
        RefSpec(branch="main", tag="v1"),
    ],
)
def test_refs_that_are_options_or_no_valid_name_are_refused(ref: RefSpec) -> None:
    with pytest.raises(GitError) as raised:
        check_ref(ref)
    assert raised.value.reason == INVALID_SOURCE


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        (
            "fatal: could not read Username for 'https://example.com': terminal prompts disabled",
            AUTHENTICATION_FAILED,
        ),
        ("fatal: Authentication failed for 'https://example.com/x/'", AUTHENTICATION_FAILED),
        ("git@example.com: Permission denied (publickey).", AUTHENTICATION_FAILED),
        ("Host key verification failed.\nfatal: Could not read from remote", HOST_KEY_NOT_TRUSTED),
        ("fatal: couldn't find remote ref refs/heads/nope", REF_NOT_FOUND),
        ("fatal: remote error: upload-pack: not our ref 0123", REF_NOT_FOUND),
        ("remote: Repository not found.\nfatal: repository 'x' not found", REPOSITORY_NOT_FOUND),
        (
            "fatal: unable to access 'https://127.0.0.1:1/x/': Failed to connect to 127.0.0.1",
            REPOSITORY_UNREACHABLE,
        ),
        ("fatal: unable to access 'https://x/': Could not resolve host: x", REPOSITORY_UNREACHABLE),
        ("fatal: something nobody expected", GIT_FAILED),
    ],
)
def test_git_messages_are_classified(stderr: str, reason: str) -> None:
    assert classify("fetch", stderr).reason == reason


def test_messages_lose_url_credentials_and_secret_values() -> None:
    auth = GitAuth(username="bot", password="glpat-abcdef123456")
    stderr = (
        "fatal: unable to access 'https://bot:glpat-abcdef123456@example.com/x/':"
        " echo glpat-abcdef123456"
    )

    message = classify("fetch", stderr, auth).message

    assert "glpat-abcdef123456" not in message
    assert "bot:" not in message
    assert redact("https://u:p@h/x") == "https://h/x"


def test_credentials_never_show_in_repr() -> None:
    auth = GitAuth.from_secret({"token": "ghp_supersecret", "ssh-privatekey": "-----BEGIN"})

    assert "ghp_supersecret" not in repr(auth)
    assert "BEGIN" not in repr(auth)
    assert auth.username == "x-access-token"


def test_a_token_wins_over_a_password_and_each_transport_says_what_it_lacks() -> None:
    both = GitAuth.from_secret({"token": "ghp_t", "username": "me", "password": "pw"})
    key_only = GitAuth.from_secret({"ssh-privatekey": "KEY"})

    assert (both.username, both.password) == ("me", "ghp_t")
    assert both.missing("https") is None
    assert "known_hosts" in str(both.missing("ssh"))
    assert "no known_hosts" in str(key_only.missing("ssh"))
    assert "token" in str(key_only.missing("https"))
    assert GitAuth.from_secret({"username": "me", "password": "pw"}).missing("https") is None
    assert GitAuth.from_secret({"known_hosts": "h"}).missing("ssh") is None
    assert key_only.missing("file") is None
