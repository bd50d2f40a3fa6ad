"""Flag rules in the moderators' admin (site moderators only); every write goes through services.

The form shows a bad pattern (an invalid regular expression, a crisis rule set to hold) next to
the field and saves nothing.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from community.errors import DomainError
from moderation import services
from moderation.models import FlagRule
from moderation.selectors import can_manage_flag_rules

EDITABLE = ["name", "kind", "action", "enabled", "patterns"]


class FlagRuleForm(forms.ModelForm):
    class Meta:
        model = FlagRule
        fields = EDITABLE
        widgets = {
            "patterns": forms.Textarea(attrs={"rows": 16, "cols": 80, "spellcheck": "false"})
        }

    # The model's clean() (run by the ModelForm) is the one place the rule's validity lives.


@admin.register(FlagRule)
class FlagRuleAdmin(admin.ModelAdmin):
    form = FlagRuleForm
    fields = [*EDITABLE, "created_at", "updated_at", "updated_by"]
    list_display = ["name", "kind", "action", "enabled", "updated_at"]
    list_filter = ["kind", "action", "enabled"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "updated_at", "updated_by"]
    actions = None  # bulk delete would bypass the service

    def _allowed(self, request) -> bool:
        return can_manage_flag_rules(request.user)

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request)

    def has_add_permission(self, request):
        return self._allowed(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request)

    def save_model(self, request, obj, form, change):
        data = {field: form.cleaned_data[field] for field in EDITABLE}
        try:
            if change:
                changed = {field: data[field] for field in form.changed_data if field in data}
                services.update_flag_rule(obj, actor=request.user, **changed)
            else:
                created = services.create_flag_rule(actor=request.user, **data)
                obj.pk = created.pk
                obj.created_at = created.created_at
                obj.updated_at = created.updated_at
        except DomainError as error:  # validated by the form already; a race can still land here
            raise ValidationError(error.message) from error

    def save_related(self, request, form, formsets, change):
        pass  # no related objects; the service saved everything

    def delete_model(self, request, obj):
        services.delete_flag_rule(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            services.delete_flag_rule(rule, actor=request.user)
