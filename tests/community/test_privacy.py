import pytest
from django.template import Context, Template
from django.urls import reverse

from community.selectors import public_member

pytestmark = pytest.mark.django_db


def test_a_member_is_shown_to_others_by_display_name_only(member):
    assert public_member(member) == {"name": "Willow"}


def test_printing_a_member_in_a_template_shows_the_display_name_not_the_email(member):
    rendered = Template("{{ person }}").render(Context({"person": member}))
    assert rendered == "Willow"
    assert member.email not in rendered


def test_no_page_a_member_can_load_shows_another_members_email(client, member, outsider):
    client.force_login(outsider)
    for name in ["home", "help", "profile"]:
        body = client.get(reverse(name)).content.decode()
        assert member.email not in body
        assert outsider.email not in body  # not even their own, outside the account pages


def test_every_page_links_to_help_now(client, member):
    for name in ["home", "help", "account_login", "account_signup"]:
        body = client.get(reverse(name)).content.decode()
        assert "Need help now?" in body
        assert reverse("help") in body
