from groups.views import meetings, membership, room

app_name = "groups"

urlpatterns = [*membership.urlpatterns, *meetings.urlpatterns, *room.urlpatterns]
