from django.urls import path

from moderation import views

app_name = "moderation"

urlpatterns = [
    path("moderation/mine/", views.mine, name="mine"),
    path("moderation/actions/<int:pk>/appeal/", views.appeal, name="appeal"),
    path(
        "groups/<slug:slug>/messages/<int:seq>/report/",
        views.report_message,
        name="report_message",
    ),
]
