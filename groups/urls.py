from groups.views import boundaries, checkins, meetings, membership, room

app_name = "groups"

urlpatterns = [
    *membership.urlpatterns,
    *meetings.urlpatterns,
    *room.urlpatterns,
    *checkins.urlpatterns,
    *boundaries.urlpatterns,
]
