"""API tokens (DRF's authtoken): one per user, rotated on demand."""
from __future__ import annotations

from rest_framework.authtoken.models import Token


def token_get_or_create(*, user) -> Token:
    token, _ = Token.objects.get_or_create(user=user)
    return token


def token_rotate(*, user) -> Token:
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)
