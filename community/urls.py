from django.contrib import admin
from django.urls import include, path

from community import views

urlpatterns = [
    path("", views.home, name="home"),
    path("help/", views.help_now, name="help"),
    path("me/profile/", views.profile, name="profile"),
    path("accounts/", include("allauth.urls")),
    path("", include("groups.urls")),
    path("admin/", admin.site.urls),
]
