"""Flag rules: saved through the service by site moderators, validated before anything is saved."""

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from community.errors import DomainError, PermissionDenied
from moderation import services
from moderation.default_rules import DEFAULT_RULES
from moderation.models import FlagRule

pytestmark = pytest.mark.django_db


def make_rule(actor, **fields):
    fields.setdefault("name", "Quiet words")
    fields.setdefault("kind", FlagRule.Kind.HARASSMENT)
    fields.setdefault("patterns", "purple giraffe")
    return services.create_flag_rule(actor=actor, **fields)


@pytest.fixture
def no_mfa(settings):
    settings.ADMIN_REQUIRE_MFA = False


def test_a_site_moderator_creates_a_rule_with_its_fields_and_timestamps(moderator):
    rule = make_rule(moderator, patterns="purple giraffe\nre:\\bgir+affe\\b", action="hold")

    rule.refresh_from_db()
    assert (rule.name, rule.kind, rule.action, rule.enabled) == (
        "Quiet words",
        "harassment",
        "hold",
        True,
    )
    assert rule.patterns == "purple giraffe\nre:\\bgir+affe\\b"
    assert rule.updated_by == moderator
    assert rule.created_at is not None
    assert rule.updated_at >= rule.created_at
    assert str(rule) == "Quiet words"


def test_an_invalid_regular_expression_is_refused_with_its_error_and_nothing_is_saved(moderator):
    before = FlagRule.objects.count()

    with pytest.raises(DomainError) as refused:
        make_rule(moderator, patterns="purple giraffe\nre:[a-z")

    assert refused.value.code == "invalid_flag_rule"
    assert "line 2" in refused.value.message
    assert "re:[a-z" in refused.value.message
    assert "isn't a valid regular expression" in refused.value.message
    assert "Nothing was saved" in refused.value.message
    assert FlagRule.objects.count() == before


def test_every_bad_line_is_named_at_once(moderator):
    with pytest.raises(DomainError) as refused:
        make_rule(moderator, patterns="re:(unclosed\nfine words\nre:*oops")

    assert "re:(unclosed" in refused.value.message
    assert "re:*oops" in refused.value.message
    assert "fine words" not in refused.value.message


def test_a_bad_regular_expression_in_an_edit_leaves_the_rule_as_it_was(moderator):
    rule = make_rule(moderator)

    with pytest.raises(DomainError, match="isn't a valid regular expression"):
        services.update_flag_rule(rule, actor=moderator, patterns="re:(?P<x", enabled=False)

    assert rule.patterns == "purple giraffe"
    assert rule.enabled is True
    rule.refresh_from_db()
    assert rule.patterns == "purple giraffe"
    assert rule.enabled is True


@pytest.mark.parametrize(
    "patterns",
    ["re:.*", "re:\\b", "re:x?", "# only a note", "   ", "!!!", "have *", "* pills", "a * * b"],
)
def test_patterns_that_would_match_everything_or_nothing_are_refused(moderator, patterns):
    with pytest.raises(DomainError):
        make_rule(moderator, patterns=patterns)
    assert not FlagRule.objects.filter(name="Quiet words").exists()


def test_a_crisis_rule_cannot_be_created_to_hold_messages(moderator):
    with pytest.raises(DomainError) as refused:
        make_rule(moderator, kind=FlagRule.Kind.CRISIS, action=FlagRule.Action.HOLD)

    assert refused.value.code == "crisis_never_held"
    assert "never a violation" in refused.value.message
    assert not FlagRule.objects.filter(name="Quiet words").exists()


def test_a_crisis_rule_cannot_be_changed_to_hold_nor_a_holding_rule_to_crisis(moderator):
    crisis = make_rule(moderator, name="Worry words", kind=FlagRule.Kind.CRISIS)
    holding = make_rule(moderator, name="Contact words", action=FlagRule.Action.HOLD)

    with pytest.raises(DomainError) as refused:
        services.update_flag_rule(crisis, actor=moderator, action=FlagRule.Action.HOLD)
    assert refused.value.code == "crisis_never_held"
    with pytest.raises(DomainError):
        services.update_flag_rule(holding, actor=moderator, kind=FlagRule.Kind.CRISIS)

    crisis.refresh_from_db()
    holding.refresh_from_db()
    assert crisis.action == FlagRule.Action.QUEUE
    assert holding.kind == FlagRule.Kind.HARASSMENT


def test_the_database_refuses_a_held_crisis_rule_too(moderator):
    rule = make_rule(moderator, kind=FlagRule.Kind.CRISIS)

    with pytest.raises(IntegrityError), transaction.atomic():
        FlagRule.objects.filter(pk=rule.pk).update(action=FlagRule.Action.HOLD)


def test_rule_names_are_unique(moderator):
    make_rule(moderator)
    with pytest.raises(DomainError, match="already"):
        make_rule(moderator, patterns="orange zebra")


def test_members_and_facilitators_cannot_manage_flag_rules(member, facilitator, moderator):
    rule = make_rule(moderator)
    for person in (member, facilitator):
        with pytest.raises(PermissionDenied):
            make_rule(person, name="Mine")
        with pytest.raises(PermissionDenied):
            services.update_flag_rule(rule, actor=person, enabled=False)
        with pytest.raises(PermissionDenied):
            services.delete_flag_rule(rule, actor=person)
    rule.refresh_from_db()
    assert rule.enabled is True


def test_a_moderator_deletes_a_rule(moderator):
    rule = make_rule(moderator)
    services.delete_flag_rule(rule, actor=moderator)
    assert not FlagRule.objects.filter(name="Quiet words").exists()


def test_the_default_rules_are_installed_crisis_queued_and_contact_details_held():
    rules = {rule.name: rule for rule in FlagRule.objects.all()}
    for default in DEFAULT_RULES:
        assert rules[default["name"]].kind == default["kind"]
        assert rules[default["name"]].enabled
    kinds = {rule.kind for rule in rules.values()}
    assert kinds >= {"crisis", "harassment", "personal_info", "spam"}
    assert all(r.action == "queue" for r in rules.values() if r.kind == "crisis")
    assert rules["Phone numbers"].action == "hold"
    assert rules["Email addresses"].action == "hold"


# --- The admin ------------------------------------------------------------------------------


def admin_form(**fields):
    data = {
        "name": "Quiet words",
        "kind": "harassment",
        "action": "queue",
        "enabled": "on",
        "patterns": "purple giraffe",
    }
    data.update(fields)
    return data


def test_the_admin_shows_a_bad_regular_expression_and_saves_nothing(client, moderator, no_mfa):
    client.force_login(moderator)
    before = FlagRule.objects.count()

    response = client.post(
        reverse("admin:moderation_flagrule_add"), admin_form(patterns="ok words\nre:[unclosed")
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "re:[unclosed" in page
    assert "isn&#x27;t a valid regular expression" in page
    assert FlagRule.objects.count() == before


def test_the_admin_refuses_a_held_crisis_rule_with_a_kind_reason(client, moderator, no_mfa):
    client.force_login(moderator)

    response = client.post(
        reverse("admin:moderation_flagrule_add"), admin_form(kind="crisis", action="hold")
    )

    assert response.status_code == 200
    assert "Crisis rules always queue for review" in response.content.decode()
    assert not FlagRule.objects.filter(name="Quiet words").exists()


def test_the_admin_creates_and_edits_a_rule_through_the_service(client, moderator, no_mfa):
    client.force_login(moderator)

    response = client.post(reverse("admin:moderation_flagrule_add"), admin_form())
    assert response.status_code == 302
    rule = FlagRule.objects.get(name="Quiet words")
    assert rule.updated_by == moderator

    response = client.post(
        reverse("admin:moderation_flagrule_change", args=[rule.pk]),
        admin_form(patterns="orange zebra", enabled=""),
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.patterns == "orange zebra"
    assert rule.enabled is False


def test_an_edit_with_a_bad_pattern_in_the_admin_changes_nothing(client, moderator, no_mfa):
    rule = make_rule(moderator)
    client.force_login(moderator)

    response = client.post(
        reverse("admin:moderation_flagrule_change", args=[rule.pk]),
        admin_form(patterns="re:(?<=a+)b"),
    )

    assert response.status_code == 200
    assert "re:(?&lt;=a+)b" in response.content.decode()
    rule.refresh_from_db()
    assert rule.patterns == "purple giraffe"


def test_the_flag_rules_admin_is_for_site_moderators_only(client, member, no_mfa):
    client.force_login(member)
    response = client.get(reverse("admin:moderation_flagrule_changelist"))
    assert response.status_code == 302
    assert "login" in response.url
