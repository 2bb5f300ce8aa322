"""The image hot path's signed GETs: the signature is AWS Signature Version 4 exactly as botocore computes it."""
from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock
from urllib.parse import quote

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from evaluation.s3_reader import EMPTY_SHA256, S3Reader

ENDPOINT = "http://127.0.0.1:8333"


@pytest.mark.parametrize("key", ["datasets/mini/images/vae/0001.png", "datasets/g/a b+c[1]&=.jpg",
                                 "datasets/g/ünï/cödé~x.PNG", "datasets/g/%41 literal.png"])
@pytest.mark.parametrize("when", [datetime(2026, 12, 3, 9, 0, 7, tzinfo=UTC), datetime(2027, 1, 1, 0, 0, tzinfo=UTC)])
def test_the_signature_is_botocores(key: str, when: datetime) -> None:
    reader = S3Reader(endpoint_url=ENDPOINT, key="AKIDEXAMPLE", secret="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                      region="eu-central-1")
    path = "/" + quote(f"spectra/{key}", safe="/~")
    ours = reader.headers(path, when)
    request = AWSRequest(method="GET", url=ENDPOINT + path, headers={"x-amz-content-sha256": EMPTY_SHA256})
    with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
        S3SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "s3",
                    "eu-central-1").add_auth(request)
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"]
