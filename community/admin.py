from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import models
from django.utils.translation import gettext_lazy as _

from community.models import CrisisResource, Notification, User
from community.selectors import forget_crisis_resources
from community.services.notifications import retry_failed_emails


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["display_name"]
    list_display = ["display_name", "email", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_active"]
    search_fields = ["display_name", "email"]
    readonly_fields = ["date_joined", "last_login"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Profile"), {"fields": ["display_name", "time_zone"]}),
        (
            _("Access"),
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {"classes": ["wide"], "fields": ["email", "display_name", "password1", "password2"]},
        ),
    ]


@admin.register(CrisisResource)
class CrisisResourceAdmin(admin.ModelAdmin):
    list_display = ["name", "region", "phone", "text", "is_active", "position"]
    list_editable = ["position", "is_active"]
    list_filter = ["is_active", "region"]
    # Links typed without a scheme are web addresses; Django 6 assumes https too.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    # Every page's footer reads the resources from the cache; edits show at once.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        forget_crisis_resources()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        forget_crisis_resources()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        forget_crisis_resources()

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        forget_crisis_resources()


class EmailStateFilter(admin.SimpleListFilter):
    title = _("email")
    parameter_name = "email"

    def lookups(self, request, model_admin):
        return [
            ("failed", _("failed (gave up)")),
            ("pending", _("waiting to be sent")),
            ("sent", _("sent")),
        ]

    def queryset(self, request, queryset):
        if self.value() == "failed":
            return queryset.filter(email_failed_at__isnull=False)
        if self.value() == "pending":
            return queryset.filter(email_pending=True)
        if self.value() == "sent":
            return queryset.filter(emailed_at__isnull=False)
        return queryset


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """Where emails that could not be sent show up (SMTP down, disk full: every retry failed),
    and can be sent again. Read-only otherwise; titles and bodies stay out of the list."""

    list_display = [
        "id",
        "user",
        "kind",
        "created_at",
        "emailed_at",
        "email_failed_at",
        "email_error",
    ]
    list_filter = [EmailStateFilter, "kind"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    list_select_related = ["user"]
    fields = ["user", "kind", "created_at", "read_at", "email_pending", "email_after",
              "emailed_at", "email_failed_at", "email_error"]  # fmt: skip
    readonly_fields = fields
    actions = ["send_failed_emails_again"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Send the failed emails among these again"))
    def send_failed_emails_again(self, request, queryset):
        count = retry_failed_emails(queryset.values_list("pk", flat=True), actor=request.user)
        self.message_user(request, _("%(count)d email(s) queued again.") % {"count": count})
