"""/ — the operations center web app. Each group of pages keeps its routes in its own module."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from hub.web import views

app_name = "web"
urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="web/registration/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("hub.web.board_urls")),
    path("", include("hub.web.coordination_urls")),
]
