from django.contrib import admin
from django.urls import include, path

from community import data_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("help/", views.help_now, name="help"),
    path("me/profile/", views.profile, name="profile"),
    path("me/notifications/", views.notification_preferences, name="notification_preferences"),
    path("me/data/", data_views.my_data, name="my_data"),
    path("me/data/export/", data_views.data_export_request, name="data_export_request"),
    path(
        "me/data/export/<str:token>/", data_views.data_export_download, name="data_export_download"
    ),
    path("me/data/export/<str:token>/view/", data_views.data_export_view, name="data_export_view"),
    path("me/data/delete/", data_views.account_erase, name="account_erase"),
    path("me/sessions/", data_views.my_sessions, name="my_sessions"),
    path("me/sessions/<int:pk>/end/", data_views.session_end, name="session_end"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read-all/", views.notifications_read_all, name="notifications_read_all"),
    path("notifications/<int:pk>/read/", views.notification_read, name="notification_read"),
    path(
        "notifications/unsubscribe/<str:token>/",
        views.notification_unsubscribe,
        name="notification_unsubscribe",
    ),
    path("accounts/", include("allauth.urls")),
    path("", include("groups.urls")),
    path("", include("moderation.urls")),
    path("", include("companion.urls")),
    path("admin/", admin.site.urls),
]
