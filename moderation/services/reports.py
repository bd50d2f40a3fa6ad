"""Members' reports of a message or of a member.

A member can report only what they can see (a message in a room they are an active member of,
posted since they joined) and only people in a group they share. The reported person never
learns who reported them. Reporting the same message twice makes one report.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from community.errors import DomainError, NotFound, PermissionDenied
from community.ratelimits import Limit, enforce, ip_key
from moderation.models import REPORT_DETAILS_MAX_CHARS, ItemKind, Report, ReportCategory
from moderation.services.audit import record_audit
from moderation.services.queue import open_item

logger = logging.getLogger(__name__)

__all__ = ["REPORT_LIMIT_PER_ACCOUNT", "REPORT_LIMIT_PER_IP", "report_member", "report_message"]

# Generous: someone facing a pile-on may report many messages in a row. The limits stop a
# script from burying the moderators' queue, not a person who needs help.
REPORT_LIMIT_PER_ACCOUNT = Limit("report:user", 20, 60 * 60)
REPORT_LIMIT_PER_IP = Limit("report:ip", 60, 60 * 60)


def _clean(category, details) -> tuple[str, str]:
    if category not in ReportCategory.values:
        raise DomainError(
            "Please choose what kind of problem this is, so the right person looks at it.",
            code="bad_category",
        )
    if details is not None and not isinstance(details, str):
        raise DomainError("The details need to be text.", code="bad_details")
    details = (details or "").strip()
    if len(details) > REPORT_DETAILS_MAX_CHARS:
        raise DomainError(
            f"Please keep the details under {REPORT_DETAILS_MAX_CHARS} characters.",
            code="details_too_long",
        )
    if "\x00" in details:
        raise DomainError("The details need to be text.", code="bad_details")
    return category, details


def _check_rate(reporter, ip: str | None) -> None:
    enforce(
        (REPORT_LIMIT_PER_ACCOUNT, reporter.pk),
        (REPORT_LIMIT_PER_IP, ip_key(ip)),
        message=_(
            "Thank you for looking out for the group. You've sent a lot of reports in a short "
            "time, so the next one can go in %(wait)s. If someone is in danger right now, "
            "please use the crisis resources on the help page."
        ),
    )


def _reporter_membership(group, reporter):
    from groups.selectors.membership import access_group_as_member

    try:
        _group, membership = access_group_as_member(group.slug, reporter)
    except NotFound:
        raise
    except PermissionDenied:
        raise NotFound("We couldn't find that message.", code="message_not_found") from None
    return membership


def report_message(
    message, *, reporter, category: str, details: str = "", ip: str | None = None
) -> Report:
    """Report a message the reporter can see. A second report of the same message by the same
    person returns the first one, unchanged. ``ip`` (the client's address, from a view) is
    rate-limited alongside the account."""
    category, details = _clean(category, details)
    if not (reporter and reporter.is_authenticated and reporter.is_active):
        raise PermissionDenied("Please sign in to report a message.", code="not_signed_in")
    membership = _reporter_membership(message.group, reporter)
    if message.group.kind == "practice":
        # A practice space has nobody else's words to report, and moderators read it only
        # when its member asks for help (docs/companion.md).
        raise NotFound("We couldn't find that message.", code="message_not_found")
    if (
        message.created_at < membership.joined_at
        or message.deleted_at is not None
        or (message.held_at is not None and message.author_id != reporter.pk)
    ):
        raise NotFound("We couldn't find that message.", code="message_not_found")
    if message.author_id == reporter.pk:
        raise DomainError(
            "That's your own message; you can delete it or edit it instead.", code="own_message"
        )
    existing = Report.objects.filter(reporter=reporter, message=message).first()
    if existing is not None:
        return existing
    _check_rate(reporter, ip)
    try:
        with transaction.atomic():
            report = Report.objects.create(
                reporter=reporter,
                group_id=message.group_id,
                message=message,
                reported_member_id=message.author_id,
                category=category,
                details=details,
            )
            open_item(kind=ItemKind.REPORT, group=message.group_id, message=message, report=report)
            record_audit(
                actor=reporter,
                action="report",
                target_type="message",
                target_id=message.pk,
                group_id=message.group_id,
                result=category,
            )
    except IntegrityError:  # the same person's double click racing itself
        return Report.objects.get(reporter=reporter, message=message)
    logger.info("report %s made on message %s", report.pk, message.pk)
    return report


def report_member(
    member, *, reporter, group, category: str, details: str = "", ip: str | None = None
) -> Report:
    """Report a member of a group the reporter belongs to (for what isn't one message).
    ``ip`` (the client's address, from a view) is rate-limited alongside the account."""
    from groups.selectors.membership import active_membership

    category, details = _clean(category, details)
    if not (reporter and reporter.is_authenticated and reporter.is_active):
        raise PermissionDenied("Please sign in to report someone.", code="not_signed_in")
    _reporter_membership(group, reporter)
    if member.pk == reporter.pk:
        raise DomainError("You can't report yourself.", code="own_report")
    if active_membership(group, member) is None:
        raise NotFound("We couldn't find that member in this group.", code="member_not_found")
    _check_rate(reporter, ip)
    with transaction.atomic():
        report = Report.objects.create(
            reporter=reporter,
            group=group,
            reported_member=member,
            category=category,
            details=details,
        )
        open_item(kind=ItemKind.REPORT, group=group, member=member, report=report)
        record_audit(
            actor=reporter,
            action="report",
            target_type="member",
            target_id=member.pk,
            group_id=group.pk,
            result=category,
        )
    logger.info("report %s made on a member of group %s", report.pk, group.pk)
    return report
