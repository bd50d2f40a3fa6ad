"""Groups and who belongs: creating and editing groups, joining, leaving, requests, invites,
the waitlist, agreements and listen-only presence.

Capacity is decided under the group's row lock (``_lock_group``): every path that can fill a
seat takes it first, so two people reaching for the last seat get one seat and one waitlist place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import DomainError, PermissionDenied
from community.ratelimits import Limit, enforce, ip_key
from groups import signals
from groups.models import (
    MAX_CAPACITY,
    AgreementVersion,
    Group,
    Invite,
    JoinPolicy,
    JoinRequest,
    Membership,
    MembershipStatus,
    RequestStatus,
    Role,
    Topic,
    WaitlistEntry,
    WaitStatus,
)
from groups.selectors.membership import (
    can_manage_group,
    ensure_may_come_back,
    may_create_groups,
    seats_taken,
)
from groups.services.reminders import sync_group_reminders, sync_member_reminders

__all__ = [
    "JoinOutcome",
    "accept_agreement",
    "archive_group",
    "create_group",
    "create_invite",
    "decide_join_request",
    "expire_seat_offers",
    "join_group",
    "leave_group",
    "leave_waitlist",
    "offer_free_seats",
    "revoke_invite",
    "set_listening",
    "update_group",
    "withdraw_join_request",
]

INVITE_DAYS_DEFAULT = 7
INVITE_DAYS_MAX = 30

# Asking to join (any group, any way) and making invitation links, per account and per IP
# address: enough for a person finding their place or a facilitator inviting a circle, not for
# a script knocking on every group's door or minting links by the thousand.
JOIN_LIMIT_PER_ACCOUNT = Limit("join:user", 10, 60 * 60)
JOIN_LIMIT_PER_IP = Limit("join:ip", 30, 60 * 60)
INVITE_LIMIT_PER_ACCOUNT = Limit("invite:user", 20, 60 * 60)
INVITE_LIMIT_PER_IP = Limit("invite:ip", 40, 60 * 60)


@dataclass(frozen=True)
class JoinOutcome:
    """What happened when someone asked to join: ``joined``, ``requested`` or ``waitlisted``."""

    result: str
    membership: Membership | None = None
    request: JoinRequest | None = None
    waitlist_entry: WaitlistEntry | None = None


def _lock_group(group: Group) -> Group:
    """Re-read the group under a row lock. Precondition: inside ``transaction.atomic``."""
    return Group.objects.select_for_update().get(pk=group.pk)


def _check_capacity(capacity: int, *, members: int = 0) -> None:
    if not 2 <= capacity <= MAX_CAPACITY:
        raise DomainError(
            _("A group can hold between 2 and %(max)d people.") % {"max": MAX_CAPACITY},
            code="bad_capacity",
        )
    if capacity < members:
        raise DomainError(
            _("The group has %(n)d members now, so its size limit can't be lower than that.")
            % {"n": members},
            code="capacity_below_members",
        )


# --- Groups ---------------------------------------------------------------------------------


@transaction.atomic
def create_group(
    *,
    actor,
    name: str,
    slug: str,
    topic: str,
    description: str,
    agreement: str,
    capacity: int = 12,
    join_policy: str = JoinPolicy.OPEN,
    is_listed: bool = True,
    facilitator=None,
) -> Group:
    """Create a group with its first agreement version and first facilitator.

    ``facilitator`` defaults to the actor; a site moderator may set a group up for someone else.
    """
    facilitator = facilitator or actor
    if not may_create_groups(actor) or (facilitator != actor and not actor.is_staff):
        raise PermissionDenied(
            _("Groups are started by facilitators and site moderators."), code="not_facilitator"
        )
    _check_capacity(capacity)
    if topic not in Topic.values or join_policy not in JoinPolicy.values:
        raise DomainError(_("Please choose a topic and a way to join."), code="bad_choice")
    if Group.objects.filter(slug=slug).exists():
        raise DomainError(
            _("Another group already uses that address. Could you choose another?"),
            code="slug_taken",
        )
    group = Group.objects.create(
        name=name,
        slug=slug,
        topic=topic,
        description=description,
        agreement=agreement,
        capacity=capacity,
        join_policy=join_policy,
        is_listed=is_listed,
        created_by=actor,
    )
    AgreementVersion.objects.create(group=group, version=1, text=agreement, created_by=actor)
    now = timezone.now()
    Membership.objects.create(
        group=group,
        user=facilitator,
        role=Role.FACILITATOR,
        agreement_version=1,
        agreement_accepted_at=now,
        joined_at=now,
    )
    return group


@transaction.atomic
def update_group(group: Group, *, actor, **changes) -> Group:
    """Edit a group's details. A changed agreement becomes a new version members must accept.

    Accepts any of: name, topic, description, agreement, capacity, join_policy, is_listed.
    """
    allowed = {"name", "topic", "description", "agreement", "capacity", "join_policy", "is_listed"}
    if unknown := set(changes) - allowed:
        raise ValueError(f"update_group cannot change {sorted(unknown)}")
    if not can_manage_group(actor, group):
        raise PermissionDenied(
            _("Only this group's facilitators can do that."), code="not_facilitator"
        )
    group = _lock_group(group)
    if group.is_archived:
        raise DomainError(_("This group is archived; its details can't change."), code="archived")
    if "capacity" in changes:
        members = Membership.objects.filter(group=group, status=MembershipStatus.ACTIVE).count()
        _check_capacity(changes["capacity"], members=members)

    fields = [name for name, value in changes.items() if getattr(group, name) != value]
    for name in fields:
        setattr(group, name, changes[name])
    if "agreement" in fields:
        group.agreement_version += 1
        fields.append("agreement_version")
        AgreementVersion.objects.create(
            group=group, version=group.agreement_version, text=group.agreement, created_by=actor
        )
        version = group.agreement_version
        transaction.on_commit(
            lambda: signals.agreement_changed.send(sender=Group, group_id=group.pk, version=version)
        )
    if fields:
        group.save(update_fields=fields)
    if "capacity" in fields:
        offer_free_seats(group)
    return group


@transaction.atomic
def archive_group(group: Group, *, actor, archived: bool = True) -> Group:
    """Archive (read-only history, no joining, no posts) or bring back a group."""
    if not can_manage_group(actor, group):
        raise PermissionDenied(
            _("Only this group's facilitators can do that."), code="not_facilitator"
        )
    group = _lock_group(group)
    group.archived_at = timezone.now() if archived else None
    group.save(update_fields=["archived_at"])
    if not archived:
        offer_free_seats(group)
    sync_group_reminders(group)
    return group


# --- Joining and leaving --------------------------------------------------------------------


def _admit(group: Group, user, *, agreement_version: int, now) -> JoinOutcome:
    """Give ``user`` a seat, or a waitlist place when the group is full.

    Precondition: the caller holds the group's row lock and checked policy and agreement.
    """
    own_offer = WaitlistEntry.objects.filter(
        group=group, user=user, status=WaitStatus.OFFERED, offer_expires_at__gt=now
    ).first()
    taken = seats_taken(group, now=now) - (1 if own_offer else 0)
    if taken >= group.capacity:
        entry = WaitlistEntry.objects.filter(
            group=group, user=user, status__in=[WaitStatus.WAITING, WaitStatus.OFFERED]
        ).first() or WaitlistEntry.objects.create(group=group, user=user)
        return JoinOutcome("waitlisted", waitlist_entry=entry)

    membership = Membership.objects.filter(group=group, user=user).first()
    if membership is None:
        membership = Membership.objects.create(
            group=group,
            user=user,
            agreement_version=agreement_version,
            agreement_accepted_at=now,
            joined_at=now,
        )
    else:
        # Coming back after leaving: a fresh start as a member, with today's agreement.
        membership.status = MembershipStatus.ACTIVE
        membership.role = Role.MEMBER
        membership.agreement_version = agreement_version
        membership.agreement_accepted_at = now
        membership.joined_at = now
        membership.left_at = None
        membership.listening = False
        membership.save(
            update_fields=[
                "status",
                "role",
                "agreement_version",
                "agreement_accepted_at",
                "joined_at",
                "left_at",
                "listening",
            ]
        )
    WaitlistEntry.objects.filter(
        group=group, user=user, status__in=[WaitStatus.WAITING, WaitStatus.OFFERED]
    ).update(status=WaitStatus.JOINED)
    # A request still open from before (they came in by invitation or a held seat) is settled,
    # so facilitators aren't left with a question that no longer needs an answer.
    JoinRequest.objects.filter(group=group, user=user, status=RequestStatus.PENDING).update(
        status=RequestStatus.APPROVED, decided_at=now
    )
    sync_member_reminders(user, group=group, now=now)
    return JoinOutcome("joined", membership=membership)


def _refuse_returning(membership: Membership | None) -> None:
    if membership is None:
        return
    if membership.status == MembershipStatus.ACTIVE:
        raise DomainError(_("You're already a member of this group."), code="already_member")
    ensure_may_come_back(membership)


@transaction.atomic
def join_group(
    group: Group,
    *,
    user,
    agreement_version: int,
    invite: Invite | None = None,
    message: str = "",
    ip: str | None = None,
) -> JoinOutcome:
    """Join after accepting the agreement version the person read.

    Open groups (or a valid invite) seat the person at once, or waitlist them when full;
    approval groups record a join request for the facilitators. Every attempt counts towards
    the join limits, per account and (given ``ip``, the client's address, from a view) per IP.
    """
    enforce(
        (JOIN_LIMIT_PER_ACCOUNT, user.pk),
        (JOIN_LIMIT_PER_IP, ip_key(ip)),
        message=_(
            "You've asked to join a lot of groups in a short time. Take your time looking "
            "around; you can ask again in %(wait)s."
        ),
    )
    group = _lock_group(group)
    now = timezone.now()
    if group.is_archived:
        raise DomainError(_("This group has closed and isn't taking new members."), code="archived")
    _refuse_returning(Membership.objects.filter(group=group, user=user).first())
    if agreement_version != group.agreement_version:
        raise DomainError(
            _(
                "The group's agreement changed while you were reading it. Please read the new version."
            ),
            code="agreement_changed",
        )
    if invite is not None:
        # Re-read: the link may have been withdrawn since the caller looked it up.
        invite = Invite.objects.select_for_update().filter(pk=invite.pk).first()
        if invite is not None and invite.group_id != group.pk:
            raise DomainError(
                _(
                    "This invitation is for a different group. You could ask the facilitator for a new one."
                ),
                code="invite_wrong_group",
            )
        if invite is None or not invite.is_usable(now):
            raise DomainError(
                _(
                    "This invitation link has expired or was withdrawn. You could ask the facilitator for a new one."
                ),
                code="invite_unusable",
            )
        outcome = _admit(group, user, agreement_version=agreement_version, now=now)
        if outcome.result == "joined":
            Invite.objects.filter(pk=invite.pk).update(uses=F("uses") + 1)
        return outcome

    has_offer = WaitlistEntry.objects.filter(
        group=group, user=user, status=WaitStatus.OFFERED, offer_expires_at__gt=now
    ).exists()
    if group.join_policy == JoinPolicy.INVITE and not has_offer:
        raise PermissionDenied(
            _("This group welcomes new members by invitation from its facilitators."),
            code="invite_only",
        )
    if group.join_policy == JoinPolicy.APPROVAL and not has_offer:
        waiting = WaitlistEntry.objects.filter(
            group=group, user=user, status=WaitStatus.WAITING
        ).first()
        if waiting is not None:  # already in line: asking again changes nothing
            return JoinOutcome("waitlisted", waitlist_entry=waiting)
        pending = JoinRequest.objects.filter(
            group=group, user=user, status=RequestStatus.PENDING
        ).first()
        if pending is None:
            pending = JoinRequest.objects.create(
                group=group, user=user, agreement_version=agreement_version, message=message
            )
        return JoinOutcome("requested", request=pending)
    return _admit(group, user, agreement_version=agreement_version, now=now)


@transaction.atomic
def leave_group(group: Group, *, user) -> Membership:
    """Leave at once. The seat is offered to the first person waiting."""
    group = _lock_group(group)
    membership = Membership.objects.filter(
        group=group, user=user, status=MembershipStatus.ACTIVE
    ).first()
    if membership is None:
        raise DomainError(_("You're not a member of this group."), code="not_member")
    membership.status = MembershipStatus.LEFT
    membership.left_at = timezone.now()
    membership.save(update_fields=["status", "left_at"])
    sync_member_reminders(user, group=group)
    offer_free_seats(group)
    return membership


@transaction.atomic
def leave_waitlist(group: Group, *, user) -> None:
    group = _lock_group(group)
    updated = WaitlistEntry.objects.filter(
        group=group, user=user, status__in=[WaitStatus.WAITING, WaitStatus.OFFERED]
    ).update(status=WaitStatus.WITHDRAWN)
    if not updated:
        raise DomainError(_("You're not on this group's waitlist."), code="not_waiting")
    offer_free_seats(group)


def offer_free_seats(group: Group, *, now=None) -> list[WaitlistEntry]:
    """Offer each free seat to the next person waiting, held for 48 hours.

    Precondition: the caller holds the group's row lock (every caller here does).
    """
    now = now or timezone.now()
    offered = []
    if group.is_archived:  # nobody can join; seats are offered again if it comes back
        return offered
    free = group.capacity - seats_taken(group, now=now)
    if free <= 0:
        return offered
    for entry in WaitlistEntry.objects.filter(group=group, status=WaitStatus.WAITING).order_by(
        "created_at", "id"
    )[:free]:
        entry.status = WaitStatus.OFFERED
        entry.offered_at = now
        entry.offer_expires_at = now + WaitlistEntry.offer_window()
        entry.save(update_fields=["status", "offered_at", "offer_expires_at"])
        offered.append(entry)
        transaction.on_commit(
            lambda e=entry: signals.seat_offered.send(
                sender=WaitlistEntry,
                entry_id=e.pk,
                group_id=e.group_id,
                user_id=e.user_id,
                expires_at=e.offer_expires_at,
            )
        )
    return offered


def expire_seat_offers(*, now=None) -> int:
    """Lapse seat offers past their 48 hours and pass the seats on. Safe to run twice."""
    now = now or timezone.now()
    lapsed = 0
    group_ids = set(
        WaitlistEntry.objects.filter(status=WaitStatus.OFFERED, offer_expires_at__lte=now)
        .values_list("group_id", flat=True)
        .distinct()
    )
    for group_id in group_ids:
        with transaction.atomic():
            group = Group.objects.select_for_update().get(pk=group_id)
            lapsed += WaitlistEntry.objects.filter(
                group=group, status=WaitStatus.OFFERED, offer_expires_at__lte=now
            ).update(status=WaitStatus.EXPIRED)
            offer_free_seats(group, now=now)
    return lapsed


# --- Requests and invitations ---------------------------------------------------------------


@transaction.atomic
def decide_join_request(
    request: JoinRequest, *, actor, approve: bool, note: str = ""
) -> JoinOutcome | None:
    """A facilitator says yes (seat or waitlist place) or no, with an optional kind note."""
    group = _lock_group(request.group)
    if not can_manage_group(actor, group):
        raise PermissionDenied(
            _("Only this group's facilitators can do that."), code="not_facilitator"
        )
    request = JoinRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != RequestStatus.PENDING:
        raise DomainError(_("This request was already answered."), code="already_decided")
    now = timezone.now()
    outcome = None
    if approve:
        _refuse_returning(Membership.objects.filter(group=group, user=request.user).first())
        if group.is_archived:
            raise DomainError(
                _("This group is archived and isn't taking new members."), code="archived"
            )
        outcome = _admit(group, request.user, agreement_version=request.agreement_version, now=now)
    request.status = RequestStatus.APPROVED if approve else RequestStatus.DECLINED
    request.decided_at = now
    request.decided_by = actor
    request.note = note
    request.save(update_fields=["status", "decided_at", "decided_by", "note"])
    transaction.on_commit(
        lambda: signals.join_request_decided.send(
            sender=JoinRequest,
            request_id=request.pk,
            group_id=group.pk,
            user_id=request.user_id,
            approved=approve,
            note=note,
        )
    )
    return outcome


@transaction.atomic
def withdraw_join_request(group: Group, *, user) -> None:
    if not JoinRequest.objects.filter(group=group, user=user, status=RequestStatus.PENDING).update(
        status=RequestStatus.WITHDRAWN
    ):
        raise DomainError(_("There's no open request to withdraw."), code="no_request")


@transaction.atomic
def create_invite(
    group: Group, *, actor, days: int = INVITE_DAYS_DEFAULT, ip: str | None = None
) -> Invite:
    """A new invitation link. Rate-limited per account and (given ``ip``, the client's
    address, from a view) per IP."""
    if not can_manage_group(actor, group):
        raise PermissionDenied(
            _("Only this group's facilitators can do that."), code="not_facilitator"
        )
    if not 1 <= days <= INVITE_DAYS_MAX:
        raise DomainError(
            _("An invitation can last from 1 to %(max)d days.") % {"max": INVITE_DAYS_MAX},
            code="bad_invite_days",
        )
    enforce(
        (INVITE_LIMIT_PER_ACCOUNT, actor.pk),
        (INVITE_LIMIT_PER_IP, ip_key(ip)),
        message=_(
            "That's a lot of new invitation links in a short time. The ones you made still "
            "work; you can make another in %(wait)s."
        ),
    )
    group = _lock_group(group)
    if group.is_archived:
        raise DomainError(
            _("This group is archived and isn't taking new members."), code="archived"
        )
    now = timezone.now()
    return Invite.objects.create(
        group=group, created_by=actor, created_at=now, expires_at=now + timedelta(days=days)
    )


@transaction.atomic
def revoke_invite(invite: Invite, *, actor) -> Invite:
    if not can_manage_group(actor, invite.group):
        raise PermissionDenied(
            _("Only this group's facilitators can do that."), code="not_facilitator"
        )
    Invite.objects.filter(pk=invite.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    invite.refresh_from_db(fields=["revoked_at"])
    return invite


# --- Agreement and presence -----------------------------------------------------------------


@transaction.atomic
def accept_agreement(group: Group, *, user, version: int) -> Membership:
    """Accept the agreement version the member read, so they can post again."""
    group = _lock_group(group)  # an edit to the agreement waits for this, or this sees it
    membership = (
        Membership.objects.select_for_update()
        .filter(group=group, user=user, status=MembershipStatus.ACTIVE)
        .first()
    )
    if membership is None:
        raise DomainError(_("You're not a member of this group."), code="not_member")
    if version != group.agreement_version:
        raise DomainError(
            _(
                "The agreement changed again while you were reading. Please read the newest version."
            ),
            code="agreement_changed",
        )
    membership.agreement_version = version
    membership.agreement_accepted_at = timezone.now()
    membership.save(update_fields=["agreement_version", "agreement_accepted_at"])
    return membership


@transaction.atomic
def set_listening(group: Group, *, user, listening: bool) -> Membership:
    """Listen-only is a first-class way to take part: others see a quiet presence."""
    updated = Membership.objects.filter(
        group=group, user=user, status=MembershipStatus.ACTIVE
    ).update(listening=listening)
    if updated != 1:
        raise DomainError(_("You're not a member of this group."), code="not_member")
    return Membership.objects.get(group=group, user=user)
