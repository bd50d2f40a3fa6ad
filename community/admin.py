from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import models
from django.utils.translation import gettext_lazy as _

from community.models import CrisisResource, User
from community.selectors import forget_crisis_resources


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
