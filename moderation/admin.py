"""Flag rules in the moderators' admin (site moderators only); every write goes through services.

The form shows a bad pattern (an invalid regular expression, a crisis rule set to hold) next to
the field and saves nothing.
"""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseForbidden, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from community.errors import DomainError, NotFound, PermissionDenied
from moderation import selectors, services
from moderation.models import (
    Appeal,
    AuditEntry,
    FlagRule,
    ItemStatus,
    ModerationAction,
    QueueItem,
    Report,
)
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


# --- The moderators' queue, and read-only views of reports, actions, appeals and the audit log --
#
# Who sees what lives in ``moderation.selectors`` (staff: everything; a facilitator: their
# groups' items only). Every write goes through ``moderation.services``; a refusal is shown with
# the messages framework and changes nothing. No admin page or LogEntry ever holds a message
# body: ``str()`` of every model here is a kind and an id.

MUTE_CHOICES = [
    ("60", _("1 hour")),
    ("1440", _("1 day")),
    ("4320", _("3 days")),
    ("10080", _("7 days")),
    ("43200", _("30 days")),
]


class ActionForm(forms.Form):
    """One action on an item: a reason (required: the member reads it) and, for a mute, how long."""

    reason = forms.CharField(
        label=_("Reason (the member reads it)"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
    )
    duration = forms.ChoiceField(label=_("For how long"), choices=MUTE_CHOICES, required=False)


ACTION_SERVICES = {
    "hide": ("hide_message", _("Hide the message")),
    "restore": ("restore_message", _("Restore the message")),
    "approve": ("approve_held", _("Approve the held message")),
    "reject": ("reject_held", _("Keep the held message back")),
    "warn": ("warn_member", _("Warn the member (a private note)")),
    "mute": ("mute_member", _("Mute in this group")),
    "remove": ("remove_member", _("Remove from the group")),
    "ban": ("ban_member", _("Ban from the site")),
    "dismiss": ("dismiss_report", _("Dismiss the report")),
    "resolve": ("resolve_item", _("Resolve")),
    "reinstate": ("reinstate_member", _("Welcome them back")),
}


def _may_moderate(request) -> bool:
    return selectors.is_moderator(request.user)


class ScopedReadOnlyAdmin(admin.ModelAdmin):
    """Visible to moderators within their scope, changed by nobody here (services only)."""

    actions = None

    def has_module_permission(self, request):
        return _may_moderate(request)

    def has_view_permission(self, request, obj=None):
        return _may_moderate(request) and (
            obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Out of scope or missing: the same plain 404 (Django would redirect with a hint).
        if self.get_object(request, object_id) is None:
            raise Http404
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(QueueItem)
class QueueItemAdmin(ScopedReadOnlyAdmin):
    list_display = ["item", "kind", "status", "group", "assignee", "created_at", "due_at"]
    list_display_links = ["item"]
    list_filter = [
        ("group", admin.RelatedOnlyFieldListFilter),
        "kind",
        "status",
        ("assignee", admin.RelatedOnlyFieldListFilter),
    ]
    ordering = ["-priority", "created_at", "pk"]
    list_per_page = 50

    def get_queryset(self, request):
        items = selectors.scope_items(request.user, super().get_queryset(request))
        return items.select_related("group", "assignee").order_by(*self.ordering)

    @admin.display(description=_("item"), ordering="pk")
    def item(self, obj):
        return str(obj)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:item_id>/claim/", view(self.claim_view), name="moderation_queueitem_claim"),
            path(
                "<int:item_id>/release/",
                view(self.release_view),
                name="moderation_queueitem_release",
            ),
            path(
                "<int:item_id>/act/<str:action>/",
                view(self.act_view),
                name="moderation_queueitem_act",
            ),
            *super().get_urls(),
        ]

    def _item(self, request, item_id) -> QueueItem:
        try:
            return selectors.get_item(item_id, actor=request.user)
        except NotFound:
            raise Http404(_("We couldn't find that queue item.")) from None

    def _back(self, item_id):
        return redirect(reverse("admin:moderation_queueitem_change", args=[item_id]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not str(object_id).isdigit():
            raise Http404
        item = self._item(request, int(object_id))
        context = selectors.item_context(item, actor=request.user)  # writes the "viewed" row
        actions = [
            {
                "name": name,
                "label": ACTION_SERVICES[name][1],
                "url": reverse("admin:moderation_queueitem_act", args=[item.pk, name]),
                "form": ActionForm(auto_id=f"id_{name}_%s"),
            }
            for name in context["actions"]
            if name != "ban" or request.user.is_staff
        ]
        mine = item.status == ItemStatus.CLAIMED and item.assignee_id == request.user.pk
        return TemplateResponse(
            request,
            "admin/moderation/queueitem/item.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": str(item),
                "item": item,
                "context": context,
                "actions": actions if mine else [],
                "mine": mine,
                "claim_url": reverse("admin:moderation_queueitem_claim", args=[item.pk]),
                "release_url": reverse("admin:moderation_queueitem_release", args=[item.pk]),
            },
        )

    def _refused(self, request, error: DomainError, item_id):
        if isinstance(error, NotFound):
            raise Http404(error.message)
        if isinstance(error, PermissionDenied):
            messages.error(request, error.message)
            return HttpResponseForbidden(error.message)
        messages.error(request, error.message)
        return self._back(item_id)

    def claim_view(self, request, item_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        item = self._item(request, item_id)
        try:
            services.claim_item(item, moderator=request.user)
        except DomainError as error:
            return self._refused(request, error, item_id)
        messages.success(request, _("You're looking after this item now."))
        return self._back(item_id)

    def release_view(self, request, item_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        item = self._item(request, item_id)
        try:
            services.release_item(item, moderator=request.user)
        except DomainError as error:
            return self._refused(request, error, item_id)
        messages.success(request, _("The item is back in the queue for someone else."))
        return redirect(reverse("admin:moderation_queueitem_changelist"))

    def act_view(self, request, item_id, action):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if action not in ACTION_SERVICES:
            raise Http404
        item = self._item(request, item_id)
        form = ActionForm(request.POST)
        if not form.is_valid():
            messages.error(
                request,
                _("Please write a short reason: the member reads it. Nothing was changed."),
            )
            return self._back(item_id)
        options = {"actor": request.user, "reason": form.cleaned_data["reason"]}
        if action == "mute":
            minutes = form.cleaned_data.get("duration")
            if not minutes:
                messages.error(
                    request, _("Please choose how long the mute lasts. Nothing was changed.")
                )
                return self._back(item_id)
            options["duration"] = timedelta(minutes=int(minutes))
        service = getattr(services, ACTION_SERVICES[action][0])
        try:
            done = service(item, **options)
        except DomainError as error:
            return self._refused(request, error, item_id)
        # Django's own admin history: the action's name on "Queue item #n", never a body.
        self.log_change(request, item, [{"changed": {"fields": [action]}}])
        messages.success(request, _("Done: %(action)s.") % {"action": done.get_kind_display()})
        return redirect(reverse("admin:moderation_queueitem_changelist"))


@admin.register(Report)
class ReportAdmin(ScopedReadOnlyAdmin):
    list_display = ["__str__", "category", "group", "outcome", "created_at"]
    list_filter = [("group", admin.RelatedOnlyFieldListFilter), "category", "outcome"]
    fields = ["category", "details", "group", "outcome", "created_at", "resolved_at"]

    def get_queryset(self, request):
        reports = super().get_queryset(request).select_related("group")
        if request.user.is_staff:
            return reports
        return reports.filter(group_id__in=selectors.moderated_group_ids(request.user))


@admin.register(ModerationAction)
class ModerationActionAdmin(ScopedReadOnlyAdmin):
    list_display = ["__str__", "kind", "group", "member", "actor", "created_at", "ends_at"]
    list_filter = [("group", admin.RelatedOnlyFieldListFilter), "kind"]
    fields = ["kind", "group", "member", "actor", "reason", "ends_at", "created_at", "item"]

    def get_queryset(self, request):
        actions = super().get_queryset(request).select_related("group", "member", "actor")
        if request.user.is_staff:
            return actions
        return actions.filter(group_id__in=selectors.moderated_group_ids(request.user))


@admin.register(Appeal)
class AppealAdmin(ScopedReadOnlyAdmin):
    list_display = ["__str__", "kind", "member", "created_at"]
    list_filter = ["kind"]
    fields = ["kind", "member", "action", "text", "created_at"]

    def get_queryset(self, request):
        appeals = super().get_queryset(request).select_related("member", "action")
        if request.user.is_staff:
            return appeals
        return appeals.filter(action__group_id__in=selectors.moderated_group_ids(request.user))


@admin.register(AuditEntry)
class AuditEntryAdmin(ScopedReadOnlyAdmin):
    """Append-only: nobody adds, changes or deletes rows here (no bulk actions either)."""

    list_display = [
        "created_at",
        "actor",
        "action",
        "target_type",
        "target_id",
        "group_id",
        "reason",
        "result",
    ]
    list_filter = ["action", "target_type"]
    fields = list_display

    def get_queryset(self, request):
        return selectors.audit_log(actor=request.user).select_related("actor")
