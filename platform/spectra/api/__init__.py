"""The API: /api/v1/... (spectra.api.urls); its errors have one shape (spectra.api.errors)."""

API_PREFIX = "api/"  # where the API is mounted; error pages under it answer in the API's error shape
