from groups.views import boundaries, checkins, connections, meetings, membership, people, room

app_name = "groups"

urlpatterns = [
    *membership.urlpatterns,
    *meetings.urlpatterns,
    *room.urlpatterns,
    *checkins.urlpatterns,
    *boundaries.urlpatterns,
    *connections.urlpatterns,
    *people.urlpatterns,
]
