"""The moderators' admin: sign-in goes through allauth, and staff need a second factor."""

import pytest
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.urls import reverse

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

ADMIN = reverse("admin:index")


def current_code(secret: str) -> str:
    counter = next(iter(yield_hotp_counters_from_time()))
    return format_hotp_value(hotp_value(secret, counter))


def test_anonymous_visitors_are_sent_to_the_allauth_sign_in(client):
    response = client.get(reverse("admin:login"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_members_who_are_not_staff_are_refused(client, member):
    client.force_login(member)
    assert client.get(reverse("admin:login")).status_code == 403
    assert client.get(ADMIN).status_code == 302  # to the login, which refuses


def test_staff_without_a_second_factor_are_asked_to_set_one_up(client, moderator):
    client.force_login(moderator)
    response = client.get(ADMIN, follow=True)
    # allauth asks for the password once more before a second factor is added.
    assert response.redirect_chain[1][0] == reverse("mfa_activate_totp")
    assert "Please set up an authenticator app" in response.content.decode()


def test_staff_with_totp_sign_in_with_password_and_code_and_reach_the_admin(client, moderator):
    secret = generate_totp_secret()
    TOTP.activate(moderator, secret)

    response = client.post(
        reverse("account_login"), {"login": moderator.email, "password": PASSWORD}
    )
    assert response.url == reverse("mfa_authenticate")
    assert client.get(ADMIN).status_code == 302  # not signed in until the code is given

    response = client.post(reverse("mfa_authenticate"), {"code": current_code(secret)})
    assert response.status_code == 302
    assert client.get(ADMIN).status_code == 200


def test_an_edited_crisis_resource_shows_on_the_next_page_without_waiting(client, moderator):
    from community.models import CrisisResource

    moderator.is_superuser = True
    moderator.save(update_fields=["is_superuser"])
    TOTP.activate(moderator, generate_totp_secret())
    client.force_login(moderator)
    client.get(reverse("help"))  # warm the cache
    resource = CrisisResource.objects.order_by("position").first()
    response = client.post(
        reverse("admin:community_crisisresource_change", args=[resource.pk]),
        {
            "name": "Warm line",
            "region": "Everywhere",
            "description": "Call the warm line.",
            "position": 0,
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    assert "Call the warm line." in client.get(reverse("home")).content.decode()
