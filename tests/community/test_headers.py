import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["home", "help", "account_login", "account_signup"])
def test_every_page_sends_a_strict_content_security_policy(client, name):
    response = client.get(reverse(name))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    for directive in ["object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"]:
        assert directive in policy
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_pages_contain_no_inline_scripts_or_styles(client):
    for name in ["home", "help", "account_login", "account_signup"]:
        body = client.get(reverse(name)).content.decode()
        assert "<script>" not in body
        assert " style=" not in body
        assert "<style" not in body
