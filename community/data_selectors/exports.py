"""A member's data exports: the ones still of use, and the signed links that open them.

A link is ``TimestampSigner``-signed (its own salt) over the export's id and its owner's id, so
it can't be forged, works for ``EXPORT_DAYS`` at most, and opens only for its owner while they
are signed in: a forwarded link is refused to anyone else.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core import signing
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import NotFound, PermissionDenied
from community.models import DataExport, ExportStatus, User

__all__ = ["EXPORT_LINK_SALT", "export_from_link", "export_link_token", "my_data_exports"]

EXPORT_LINK_SALT = "community.data-export.link"
EXPORT_LINK_MAX_AGE = timedelta(days=7)  # as long as an export lives (services.data.EXPORT_DAYS)


def my_data_exports(user: User, *, now: datetime | None = None) -> list[DataExport]:
    """The member's exports still of use, newest first: being prepared, failed (so the page can
    say so), or ready and not expired. Their content isn't loaded."""
    now = now or timezone.now()
    return list(
        DataExport.objects.filter(user=user)
        .filter(
            Q(status__in=[ExportStatus.PENDING, ExportStatus.FAILED])
            | Q(status=ExportStatus.READY, expires_at__gt=now)
        )
        .defer("content")
        .order_by("-requested_at", "-id")
    )


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=EXPORT_LINK_SALT)


def export_link_token(export: DataExport) -> str:
    """The token of the signed download link of ``export`` (for its owner only)."""
    return _signer().sign_object({"e": export.pk, "u": export.user_id})


def _expired() -> PermissionDenied:
    return PermissionDenied(
        _(
            "This download link has expired. You can prepare a fresh copy of your data on your "
            "data page."
        ),
        code="export_expired",
    )


def export_from_link(token: str, *, viewer, now: datetime | None = None) -> DataExport:
    """The ready export a signed link names, if ``viewer`` is its owner and it hasn't expired.

    A forged or altered link, one past its days, one for an export that's gone, or one opened
    by anyone but its owner is refused, each with its own kind explanation.
    """
    now = now or timezone.now()
    try:
        data = _signer().unsign_object(token, max_age=EXPORT_LINK_MAX_AGE)
        export_id, owner_id = int(data["e"]), int(data["u"])
    except signing.SignatureExpired:
        raise _expired() from None
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise PermissionDenied(
            _(
                "This download link isn't valid. Please use the link on your data page, or "
                "prepare a fresh copy there."
            ),
            code="export_link_invalid",
        ) from None
    if viewer is None or not viewer.is_authenticated or viewer.pk != owner_id:
        raise PermissionDenied(
            _(
                "This download link belongs to another account, so it doesn't open here. Each "
                "member can download only their own data."
            ),
            code="not_your_data",
        )
    export = DataExport.objects.filter(pk=export_id, user_id=owner_id).first()
    if export is None:
        raise NotFound(
            _("We couldn't find that download. You can prepare a fresh one on your data page."),
            code="export_not_found",
        )
    if export.status != ExportStatus.READY or export.expires_at is None:
        raise NotFound(
            _("That copy of your data isn't ready yet. Please look again in a few minutes."),
            code="export_not_ready",
        )
    if export.expires_at <= now:
        raise _expired()
    return export
