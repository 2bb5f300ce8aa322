from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from spectra.accounts import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(template_name="accounts/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("token/", views.token, name="token"),
    path("token/rotate/", views.token_rotate, name="token-rotate"),
]
