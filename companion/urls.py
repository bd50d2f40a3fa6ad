from django.urls import path

from companion import views

app_name = "companion"

urlpatterns = [
    path("me/practice/", views.practice, name="practice"),
    path("me/practice/open/", views.open_space, name="open"),
    path("me/practice/state/", views.state, name="state"),
    path("me/practice/share/", views.share, name="share"),
    path("me/practice/clear/", views.clear, name="clear"),
]
