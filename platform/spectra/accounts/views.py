"""Sign-up and API tokens; log-in and log-out are Django's own views."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from spectra.accounts import services
from spectra.core.views import methods_allowed, read_only


def signup(request: HttpRequest) -> HttpResponse:
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend=settings.SPECTRA_PASSWORD_BACKEND)  # axes' backend only watches log-ins
        return redirect("home")
    return render(request, "accounts/signup.html", {"form": form}, status=400 if form.errors else 200)


@login_required
@read_only
def token(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/token.html", {"token": services.token_get_or_create(user=request.user)})


@login_required
@methods_allowed("POST")
def token_rotate(request: HttpRequest) -> HttpResponse:
    services.token_rotate(user=request.user)
    return redirect("token")
