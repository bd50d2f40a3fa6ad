"""The readable (HTML) page of an export: its sections with titles, column headings and cells
as text. The JSON file keeps the keys and values themselves."""

from __future__ import annotations

import json

from django.utils.translation import gettext_lazy

from community.data_selectors.sections import EXPORT_SECTIONS

__all__ = ["COLUMN_LABELS", "readable_sections"]

# The readable page's column headings; the JSON file keeps the keys.
COLUMN_LABELS = {
    "display_name": gettext_lazy("Display name"),
    "email": gettext_lazy("Email"),
    "email_addresses": gettext_lazy("Email addresses"),
    "time_zone": gettext_lazy("Time zone"),
    "joined": gettext_lazy("Joined"),
    "last_sign_in": gettext_lazy("Last sign-in"),
    "two_step_sign_in": gettext_lazy("Two-step sign-in"),
    "group": gettext_lazy("Group"),
    "role": gettext_lazy("Role"),
    "status": gettext_lazy("Status"),
    "left": gettext_lazy("Left"),
    "agreement_version_accepted": gettext_lazy("Agreement version accepted"),
    "agreement_accepted": gettext_lazy("Agreement accepted"),
    "listening": gettext_lazy("Listening"),
    "hide_presence": gettext_lazy("Presence hidden"),
    "posting_paused_until": gettext_lazy("Posting paused until"),
    "number": gettext_lazy("Number"),
    "kind": gettext_lazy("Kind"),
    "text": gettext_lazy("Text"),
    "content_note": gettext_lazy("Content note"),
    "sent": gettext_lazy("Sent"),
    "edited": gettext_lazy("Edited"),
    "deleted": gettext_lazy("Deleted"),
    "hidden_by_a_moderator": gettext_lazy("Hidden by a moderator"),
    "waiting_for_a_moderator": gettext_lazy("Waiting for a moderator"),
    "message_number": gettext_lazy("Message number"),
    "reaction": gettext_lazy("Reaction"),
    "given": gettext_lazy("Given"),
    "when": gettext_lazy("When"),
    "presence": gettext_lazy("Presence"),
    "feelings": gettext_lazy("Feelings"),
    "note": gettext_lazy("Note"),
    "shared_with": gettext_lazy("Shared with"),
    "round_started": gettext_lazy("Round started"),
    "your_turn": gettext_lazy("Your turn"),
    "finished": gettext_lazy("Finished"),
    "topics_softened": gettext_lazy("Topics softened"),
    "check_in_last_offered_on": gettext_lazy("Check-in last offered on"),
    "channels": gettext_lazy("Channels"),
    "reminder_minutes_before": gettext_lazy("Reminders (minutes before)"),
    "quiet_hours_start": gettext_lazy("Quiet hours start"),
    "quiet_hours_end": gettext_lazy("Quiet hours end"),
    "title": gettext_lazy("Title"),
    "link": gettext_lazy("Link"),
    "created": gettext_lazy("Created"),
    "read": gettext_lazy("Read"),
    "emailed": gettext_lazy("Emailed"),
    "meeting": gettext_lazy("Meeting"),
    "starts": gettext_lazy("Starts"),
    "answer": gettext_lazy("Answer"),
    "answered": gettext_lazy("Answered"),
    "your_words": gettext_lazy("Your words"),
    "asked": gettext_lazy("Asked"),
    "answer_note": gettext_lazy("Note with the answer"),
    "joined_the_list": gettext_lazy("Joined the list"),
    "seat_offered": gettext_lazy("Seat offered"),
    "about": gettext_lazy("About"),
    "category": gettext_lazy("Category"),
    "made": gettext_lazy("Made"),
    "outcome": gettext_lazy("Outcome"),
    "settled": gettext_lazy("Settled"),
    "action": gettext_lazy("Action"),
    "reason_given": gettext_lazy("Reason given"),
    "ends": gettext_lazy("Ends"),
    "about_action": gettext_lazy("About"),
    "written": gettext_lazy("Written"),
    "with": gettext_lazy("With"),
    "since": gettext_lazy("Since"),
    "direction": gettext_lazy("Direction"),
    "other_person": gettext_lazy("Other person"),
    "expires": gettext_lazy("Expires"),
    "days": gettext_lazy("Days"),
    "from": gettext_lazy("From"),
    "until": gettext_lazy("Until"),
    "set": gettext_lazy("Set"),
    "person": gettext_lazy("Person"),
    "device": gettext_lazy("Device"),
    "ip_address": gettext_lazy("IP address"),
    "signed_in": gettext_lazy("Signed in"),
    "last_active": gettext_lazy("Last active"),
}


def _cell(value) -> str:
    """One value as the readable page shows it (the JSON file keeps the value itself)."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return str(gettext_lazy("Yes") if value else gettext_lazy("No"))
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def readable_sections(content: dict) -> list[dict]:
    """The export's sections in order with their titles, for the readable page: each with
    ``title``, ``columns`` and ``rows`` (lists of cell texts in column order)."""
    stored = (content or {}).get("sections", {})
    out = []
    for section in EXPORT_SECTIONS:
        rows = stored.get(section.key) or []
        columns = list(rows[0].keys()) if rows else []
        out.append(
            {
                "key": section.key,
                "title": section.title,
                "columns": [
                    COLUMN_LABELS.get(c, c.replace("_", " ").capitalize()) for c in columns
                ],
                "rows": [[_cell(row.get(c)) for c in columns] for row in rows],
            }
        )
    return out
