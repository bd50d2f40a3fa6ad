"""Abuse limits: reports, join requests, invitation links and sign-ups are rate limited per
account and per IP address, counted in the Redis cache, each with a kind error and a wait; the
admin's sign-in is allauth's rate-limited one, and signing in rotates the session."""

import time

import pytest
from django.core.cache import cache
from django.urls import reverse

from community.errors import DomainError
from community.models import User
from community.ratelimits import Limit, enforce, ip_key, wait_phrase
from groups import services as groups
from groups.models import Invite, JoinRequest, Membership
from groups.services.membership import (
    INVITE_LIMIT_PER_ACCOUNT,
    INVITE_LIMIT_PER_IP,
    JOIN_LIMIT_PER_ACCOUNT,
    JOIN_LIMIT_PER_IP,
)
from moderation import services as moderation
from moderation.models import QueueItem, Report
from moderation.services.reports import REPORT_LIMIT_PER_ACCOUNT, REPORT_LIMIT_PER_IP
from tests.factories import PASSWORD, make_group, make_member, make_membership
from tests.moderation.conftest import post

pytestmark = pytest.mark.django_db

IP = "203.0.113.7"
OTHER_IP = "198.51.100.23"


def use_up(limit: Limit, key) -> None:
    """Earlier traffic (from an address, say) that used the whole of ``limit``."""
    for _ in range(limit.count):
        enforce((limit, key), message="")


def counted(limit: Limit, key) -> int:
    """How many actions the counter holds for ``key`` (this window and the last)."""
    window = int(time.time() // limit.window)
    return sum(cache.get(f"rate:{limit.scope}:{key}:{w}") or 0 for w in (window - 1, window))


def refused(call) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    assert caught.value.code == "rate_limited"
    return caught.value


# --- The shared counter (the chat's, generalised) -------------------------------------------------


def test_a_limit_refuses_past_its_count_with_a_retry_after_and_does_not_count_refusals():
    limit = Limit("test", 3, 60)
    for _ in range(3):
        enforce((limit, "k"), message="Not now.")
    error = refused(lambda: enforce((limit, "k"), message="Wait %(wait)s (%(seconds)s s)."))
    retry_after = error.details["retry_after"]
    assert 1 <= retry_after <= 120
    assert error.message == f"Wait {wait_phrase(retry_after)} ({retry_after} s)."
    refused(lambda: enforce((limit, "k"), message=""))
    # Refusals weren't counted: the counter still holds the three that went through.
    assert counted(limit, "k") == 3
    enforce((limit, "another-key"), message="")  # each key has its own count


def test_when_any_bucket_is_full_nothing_is_counted_in_the_others():
    per_account, per_ip = Limit("test:user", 5, 60), Limit("test:ip", 2, 60)
    use_up(per_ip, "ip")
    refused(lambda: enforce((per_account, "me"), (per_ip, "ip"), message=""))
    assert counted(per_account, "me") == 0
    enforce((per_account, "me"), (per_ip, None), message="")  # no address known: not limited


def test_waits_are_said_in_words():
    assert wait_phrase(1) == "1 second"
    assert wait_phrase(45) == "45 seconds"
    assert wait_phrase(61) == "2 minutes"
    assert wait_phrase(3600) == "60 minutes"
    assert wait_phrase(2 * 3600 + 1) == "3 hours"


def test_ip_addresses_are_not_written_to_redis_and_ipv6_counts_per_64():
    assert IP not in ip_key(IP)
    assert ip_key("2001:db8:1:2::1") == ip_key("2001:db8:1:2:ffff::9")
    assert ip_key("2001:db8:1:2::1") != ip_key("2001:db8:1:3::1")
    assert ip_key(None) is None and ip_key("not an address") is None


# --- Reports --------------------------------------------------------------------------------------


def test_reports_are_limited_per_account_kindly_and_the_refused_one_changes_nothing(
    group, member, facilitator
):
    for _ in range(REPORT_LIMIT_PER_ACCOUNT.count):
        moderation.report_member(facilitator, reporter=member, group=group, category="other")
    before = (Report.objects.count(), QueueItem.objects.count())

    error = refused(
        lambda: moderation.report_member(
            facilitator, reporter=member, group=group, category="other"
        )
    )
    assert "Thank you for looking out for the group" in error.message
    assert "crisis resources" in error.message
    assert 1 <= error.details["retry_after"] <= 2 * 60 * 60
    assert (Report.objects.count(), QueueItem.objects.count()) == before


def test_reports_are_limited_per_ip_address_across_accounts(group, facilitator):
    use_up(REPORT_LIMIT_PER_IP, ip_key(IP))
    reporter = make_member()
    make_membership(group, reporter)
    refused(
        lambda: moderation.report_member(
            facilitator, reporter=reporter, group=group, category="other", ip=IP
        )
    )
    moderation.report_member(
        facilitator, reporter=reporter, group=group, category="other", ip=OTHER_IP
    )
    assert Report.objects.count() == 1


def test_a_rate_limited_report_from_the_room_answers_429_with_the_wait(
    client, group, member, facilitator
):
    message = post(group, facilitator, "Welcome, everyone.")
    use_up(REPORT_LIMIT_PER_IP, ip_key(IP))
    client.force_login(member)
    url = reverse("moderation:report_message", args=[group.slug, message.seq])

    response = client.post(
        url, {"category": "other"}, HTTP_ACCEPT="application/json", REMOTE_ADDR=IP
    )

    assert response.status_code == 429
    answer = response.json()
    assert answer["ok"] is False and "Thank you for looking out" in answer["message"]
    assert int(response["Retry-After"]) == answer["retry_after"] > 0
    assert not Report.objects.exists()
    response = client.post(
        url, {"category": "other"}, HTTP_ACCEPT="application/json", REMOTE_ADDR=OTHER_IP
    )
    assert response.status_code == 200 and Report.objects.count() == 1


# --- Join requests --------------------------------------------------------------------------------


def test_asking_to_join_is_limited_per_account_and_the_refused_ask_changes_nothing(outsider):
    group = make_group(join_policy="approval")
    for _ in range(JOIN_LIMIT_PER_ACCOUNT.count):
        groups.join_group(group, user=outsider, agreement_version=1)

    error = refused(lambda: groups.join_group(make_group(), user=outsider, agreement_version=1))
    assert "Take your time looking around" in error.message
    assert error.details["retry_after"] >= 1
    assert JoinRequest.objects.filter(user=outsider).count() == 1
    assert not Membership.objects.filter(user=outsider).exists()


def test_the_join_page_passes_the_address_and_refuses_kindly_with_429(client, outsider):
    group = make_group()
    use_up(JOIN_LIMIT_PER_IP, ip_key(IP))
    client.force_login(outsider)
    url = reverse("groups:join", args=[group.slug])

    response = client.post(url, {"agreement_version": 1, "accept": "on"}, REMOTE_ADDR=IP)

    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert "you can ask again in" in response.content.decode()
    assert not Membership.objects.filter(user=outsider).exists()
    response = client.post(url, {"agreement_version": 1, "accept": "on"}, REMOTE_ADDR=OTHER_IP)
    assert response.status_code == 302
    assert Membership.objects.filter(user=outsider, group=group).exists()


# --- Invitation links -----------------------------------------------------------------------------


def test_invitation_links_are_limited_per_account(group, facilitator):
    for _ in range(INVITE_LIMIT_PER_ACCOUNT.count):
        groups.create_invite(group, actor=facilitator)

    error = refused(lambda: groups.create_invite(group, actor=facilitator))
    assert "The ones you made still work" in error.message
    assert Invite.objects.count() == INVITE_LIMIT_PER_ACCOUNT.count


def test_the_invites_page_passes_the_address_and_says_why_with_429(client, group, facilitator):
    use_up(INVITE_LIMIT_PER_IP, ip_key(IP))
    client.force_login(facilitator)
    url = reverse("groups:invites", args=[group.slug])

    response = client.post(url, {"days": 7}, REMOTE_ADDR=IP)

    assert response.status_code == 429
    assert "you can make another in" in response.content.decode()
    assert not Invite.objects.exists()
    assert client.post(url, {"days": 7}, REMOTE_ADDR=OTHER_IP).status_code == 302
    assert Invite.objects.count() == 1


# --- Sign-ups -------------------------------------------------------------------------------------

SIGNUP = reverse("account_signup")
LOGIN = reverse("account_login")


def signup(client, n, *, email=None, ip=IP):
    return client.post(
        SIGNUP,
        {
            "email": email or f"newcomer{n}@example.test",
            "display_name": f"Newcomer {n}",
            "time_zone": "Europe/London",
            "password1": "slow river under the bridge",
            "password2": "slow river under the bridge",
        },
        REMOTE_ADDR=ip,
    )


def test_signups_are_limited_per_ip_address_with_a_kind_page(client):
    for n in range(10):
        assert signup(client, n).status_code == 302
        client.logout()

    response = signup(client, 10)

    assert response.status_code == 429
    assert "Nothing is wrong with your account" in response.content.decode()
    assert User.objects.count() == 10
    assert signup(client, 11, ip=OTHER_IP).status_code == 302


def test_signups_with_one_address_are_limited_so_nobody_can_fill_its_inbox(client, mailoutbox):
    for n in range(3):
        assert signup(client, n, email="fern@example.test", ip=f"192.0.2.{n}").status_code == 302
        client.logout()
    sent = len(mailoutbox)

    response = signup(client, 3, email="Fern@example.test", ip="192.0.2.9")

    assert response.status_code == 200
    assert "paused sign-ups with it" in response.content.decode()
    assert len(mailoutbox) == sent
    assert User.objects.count() == 1


# --- The admin's sign-in --------------------------------------------------------------------------


def test_the_admin_sign_in_is_allauths_so_its_failed_login_limit_applies(client, moderator):
    # A password posted to the admin's own login form signs nobody in: it sends to allauth.
    response = client.post(
        reverse("admin:login"), {"username": moderator.email, "password": PASSWORD}
    )
    assert response.status_code == 302 and response.url.startswith(LOGIN)
    assert "_auth_user_id" not in client.session

    login_url = response.url  # allauth's sign-in, on its way back to the admin
    for _ in range(6):
        response = client.post(login_url, bad_login(moderator))
    assert "Too many failed login attempts" in response.content.decode()
    client.post(login_url, {"login": moderator.email, "password": PASSWORD})
    assert "_auth_user_id" not in client.session  # even the right password waits


def bad_login(user) -> dict:
    return {"login": user.email, "password": "not the password"}


def test_signing_in_on_the_way_to_the_admin_rotates_the_session_key(client, moderator, settings):
    settings.ADMIN_REQUIRE_MFA = False
    client.get(reverse("admin:index"), follow=True)
    before = client.session.session_key
    assert before

    response = client.post(
        f"{LOGIN}?next={reverse('admin:index')}",
        {"login": moderator.email, "password": PASSWORD},
    )

    assert response.url == reverse("admin:index")
    assert client.session["_auth_user_id"] == str(moderator.pk)
    assert client.session.session_key != before
