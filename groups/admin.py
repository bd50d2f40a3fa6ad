"""Groups in the moderators' admin: a read-mostly view; changes go through groups.services.

Group details, agreements and meetings are edited on the site's own facilitator pages, where the
services keep agreement versions, capacity and the waitlist consistent. Here moderators can look
things up and archive or reopen a group; membership actions (mute, remove, ban) belong to
moderation.
"""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from groups import services
from groups.models import Group, GroupKind, JoinRequest, Meeting, Membership
from groups.selectors.membership import with_member_counts


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MembershipInline(ReadOnlyMixin, admin.TabularInline):
    model = Membership
    fields = [
        "user",
        "role",
        "status",
        "muted_until",
        "listening",
        "agreement_version",
        "joined_at",
    ]
    readonly_fields = fields
    extra = 0
    show_change_link = False


@admin.register(Group)
class GroupAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["name", "topic", "size", "join_policy", "is_listed", "archived_at"]
    list_filter = ["topic", "join_policy", "is_listed", ("archived_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "slug"]
    readonly_fields = [
        "name",
        "slug",
        "topic",
        "description",
        "agreement",
        "agreement_version",
        "capacity",
        "join_policy",
        "is_listed",
        "archived_at",
        "created_at",
    ]
    fields = readonly_fields
    inlines = [MembershipInline]
    actions = ["archive", "reopen"]

    def get_queryset(self, request):
        # A practice space is its member's alone: not even its existence is listed here.
        queryset = super().get_queryset(request).exclude(kind=GroupKind.PRACTICE)
        return with_member_counts(queryset)

    def has_view_permission(self, request, obj=None):
        return request.user.is_staff

    @admin.display(description=_("size"), ordering="member_count")
    def size(self, obj):
        return f"{obj.member_count} / {obj.capacity}"

    def _set_archived(self, request, queryset, *, archived: bool):
        for group in queryset:
            services.archive_group(group, actor=request.user, archived=archived)
        count = queryset.count()
        self.message_user(
            request,
            ngettext("%d group updated.", "%d groups updated.", count) % count,
            messages.SUCCESS,
        )

    @admin.action(description=_("Archive: keep history readable, stop posts and joining"))
    def archive(self, request, queryset):
        self._set_archived(request, queryset, archived=True)

    @admin.action(description=_("Reopen archived groups"))
    def reopen(self, request, queryset):
        self._set_archived(request, queryset, archived=False)


@admin.register(JoinRequest)
class JoinRequestAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["group", "user", "status", "created_at", "decided_at"]
    list_filter = ["status"]
    search_fields = ["group__name", "user__display_name"]
    fields = [
        "group",
        "user",
        "status",
        "agreement_version",
        "created_at",
        "decided_at",
        "decided_by",
    ]
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return request.user.is_staff


@admin.register(Meeting)
class MeetingAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["title", "group", "starts_at", "time_zone", "recurrence", "cancelled_at"]
    list_filter = ["recurrence", "location"]
    search_fields = ["title", "group__name"]
    fields = [
        "group",
        "title",
        "starts_at",
        "time_zone",
        "duration_minutes",
        "recurrence",
        "recurrence_count",
        "recurrence_until",
        "location",
        "cancelled_at",
    ]
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return request.user.is_staff
