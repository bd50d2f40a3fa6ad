import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse

from community.models import User
from tests.factories import PASSWORD, make_member

pytestmark = pytest.mark.django_db

SIGNUP = reverse("account_signup")
LOGIN = reverse("account_login")


def signup(client, **overrides):
    data = {
        "email": "fern@example.test",
        "display_name": "Fern",
        "time_zone": "America/Toronto",
        "password1": "slow river under the bridge",
        "password2": "slow river under the bridge",
    }
    data.update(overrides)
    return client.post(SIGNUP, data)


def test_signup_creates_a_pseudonymous_member_and_sends_a_verification_link(client):
    response = signup(client)

    assert response.status_code == 302
    user = User.objects.get(email="fern@example.test")
    assert user.display_name == "Fern"
    assert user.time_zone == "America/Toronto"
    assert not EmailAddress.objects.get(user=user).verified
    assert len(mail.outbox) == 1
    assert re.search(r"/accounts/confirm-email/\S+/", mail.outbox[0].body)


def test_unverified_member_cannot_sign_in_until_the_link_is_followed(client):
    signup(client)
    client.logout()
    link = re.search(r"(/accounts/confirm-email/\S+/)", mail.outbox[0].body).group(1)

    response = client.post(
        LOGIN, {"login": "fern@example.test", "password": "slow river under the bridge"}
    )
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    assert "_auth_user_id" not in client.session

    client.post(link)
    assert EmailAddress.objects.get(email="fern@example.test").verified
    client.logout()
    response = client.post(
        LOGIN, {"login": "fern@example.test", "password": "slow river under the bridge"}
    )
    assert response.status_code == 302
    assert response.url == reverse("home")
    assert client.get(reverse("home")).context["user"].display_name == "Fern"


def test_signup_with_a_known_email_answers_exactly_like_a_new_one(client):
    make_member(email="known@example.test", display_name="Known")

    new = signup(client, email="unknown@example.test", display_name="Newcomer")
    client.logout()
    known = signup(client, email="known@example.test", display_name="Another")

    assert (new.status_code, new.url) == (known.status_code, known.url)
    assert User.objects.filter(email="known@example.test").count() == 1
    assert not User.objects.filter(display_name="Another").exists()
    # The owner of the known address is told privately instead.
    assert mail.outbox[-1].to == ["known@example.test"]


def test_password_reset_answers_the_same_for_known_and_unknown_emails(client):
    make_member(email="known@example.test")
    url = reverse("account_reset_password")

    known = client.post(url, {"email": "known@example.test"})
    unknown = client.post(url, {"email": "nobody@example.test"})

    assert (known.status_code, known.url) == (unknown.status_code, unknown.url)


@pytest.mark.parametrize(
    ("password", "accepted"),
    [
        ("short1", False),
        ("password123", False),  # a common password
        ("12345678901", False),  # numbers only
        ("a long passphrase about quiet mornings by the sea", True),
    ],
)
def test_password_rules_refuse_short_and_common_and_allow_long_passphrases(
    client, password, accepted
):
    signup(client, password1=password, password2=password)
    assert User.objects.filter(email="fern@example.test").exists() is accepted


def test_display_name_already_taken_gets_a_kind_error_and_creates_nothing(client):
    make_member(display_name="Fern")
    response = signup(client, display_name="fern ")
    assert response.status_code == 200
    assert "already uses that name" in response.content.decode()
    assert not User.objects.filter(email="fern@example.test").exists()


def test_display_name_that_looks_like_an_email_is_refused(client):
    response = signup(client, display_name="fern@example.test")
    assert "without “@”" in response.content.decode()
    assert not User.objects.exists()


def test_unknown_time_zone_is_refused_kindly(client):
    response = signup(client, time_zone="Mars/Olympus_Mons")
    assert "recognise the time zone" in response.content.decode()
    assert not User.objects.exists()


def test_member_can_change_display_name_and_time_zone(client, member):
    client.force_login(member)
    response = client.post(
        reverse("profile"), {"display_name": "Willow Tree", "time_zone": "Asia/Tokyo"}
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert (member.display_name, member.time_zone) == ("Willow Tree", "Asia/Tokyo")


def test_profile_with_bad_input_changes_nothing(client, member, outsider):
    client.force_login(member)
    response = client.post(
        reverse("profile"), {"display_name": outsider.display_name, "time_zone": "Nowhere/Land"}
    )
    assert response.status_code == 200
    member.refresh_from_db()
    assert (member.display_name, member.time_zone) == ("Willow", "Europe/Berlin")


def test_repeated_failed_logins_are_rate_limited_through_redis(client, member):
    for _ in range(6):
        response = client.post(LOGIN, {"login": member.email, "password": "not the password"})
    assert "Too many failed login attempts" in response.content.decode()
    # Even the right password waits until the limit passes.
    response = client.post(LOGIN, {"login": member.email, "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    assert "Too many failed login attempts" in response.content.decode()


def test_signing_in_rotates_the_session_key(client, member):
    client.get(LOGIN)
    client.cookies  # noqa: B018 -- a session is created by the first request
    before = client.session.session_key
    client.post(LOGIN, {"login": member.email, "password": PASSWORD})
    assert client.session["_auth_user_id"] == str(member.pk)
    assert client.session.session_key != before
