"""The client's address for django-axes' log-in lockouts (AXES_CLIENT_IP_CALLABLE)."""
from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR; behind the production proxy (SECURE_PROXY_SSL_HEADER set), the address that proxy appended last to
    X-Forwarded-For, because REMOTE_ADDR is then the proxy's own for everyone. Earlier entries of the header are the
    client's to write, so they are never trusted."""
    remote = request.META.get("REMOTE_ADDR", "")
    if not settings.SECURE_PROXY_SSL_HEADER:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    return forwarded[-1] if forwarded else remote
