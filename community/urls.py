from django.contrib import admin
from django.urls import include, path

from community import views

urlpatterns = [
    path("", views.home, name="home"),
    path("help/", views.help_now, name="help"),
    path("me/profile/", views.profile, name="profile"),
    path("me/notifications/", views.notification_preferences, name="notification_preferences"),
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
    path("admin/", admin.site.urls),
]
