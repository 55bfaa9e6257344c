"""The popup's last page posts its outcome only to origins the operator allowed."""

from __future__ import annotations

from provider_gateway.web.oauth_page import render


def _targets(page: str) -> str:
    return page.split("var targetOrigins = ")[1].split(";")[0]


def test_without_a_redirect_url_it_posts_to_each_allowed_origin_never_star() -> None:
    origins = frozenset({"https://b.example", "https://a.example", "https://gateway.example"})
    page = render(
        "authComplete",
        nonce="n1",
        reason=None,
        redirect_url=None,
        allowed_origins=origins,
        provider_name="Slack",
    ).body
    assert _targets(page) == '["https://a.example", "https://b.example", "https://gateway.example"]'


def test_with_no_allowed_origin_it_posts_nowhere() -> None:
    page = render(
        "authFailed",
        nonce=None,
        reason="invalid_state",
        redirect_url="https://evil.example/x",
        allowed_origins=frozenset(),
        provider_name="Slack",
    ).body
    assert _targets(page) == "[]"
    assert "evil" not in page
