"""A person's path in headless Chromium: log in, upload a TorchScript detector through the form, watch the
progress bar, see the chart (plotly.js served locally) and the leaderboard row equal to a direct computation.
Every page runs under the site's Content-Security-Policy (no inline script): any violation Chromium reports fails
the test, and the pages' scripts (plotly charts, Swagger UI, the admin) are seen to work under it."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from tests.detector_files import reference_scores, write_torchscript
from tests.reference import expected_metrics, load_images, split_rows

pytestmark = [pytest.mark.browser, pytest.mark.workers, pytest.mark.django_db(transaction=True)]
CHROMIUM = "/usr/bin/chromium"
INPUT_SIZE = 64


@pytest.fixture
def browser_page(live_server):
    if not Path(CHROMIUM).exists():
        if os.environ.get("SPECTRA_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing and SPECTRA_REQUIRE_BROWSER is set")
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install -y chromium` enables the browser tests")
    # Playwright's sync API runs an event loop in this thread; the ORM calls here are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        outside: list[str] = []

        def only_local(route):  # nothing may come from the internet, plotly.js included
            if route.request.url.startswith(live_server.url):
                return route.continue_()
            outside.append(route.request.url)
            return route.abort()

        page.route("**/*", only_local)
        blocked: list[str] = []  # Chromium reports each CSP violation on the console
        page.on("console", lambda message: blocked.append(message.text)
                if "Content Security Policy" in message.text else None)
        yield page
        browser.close()
        assert not outside, f"the page asked for outside resources: {outside}"
        assert not blocked, f"the Content-Security-Policy blocked: {blocked}"
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def test_torchscript_upload_in_the_browser(browser_page, live_server, alice, mini_dataset, mini_root, workers, tmp_path):
    page = browser_page
    detector = write_torchscript(tmp_path / "detector.pt", seed=5)
    page.goto(f"{live_server.url}/accounts/login/?next=/submit/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "correct horse battery")
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/submit/$"))
    page.fill("#id_name", "tiny torchscript")
    page.select_option("#id_benchmark", "mini")
    page.select_option("#id_format", "torchscript")
    page.fill("#id_input_size", str(INPUT_SIZE))
    page.set_input_files("#id_file", str(detector))
    page.click("#submit-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/submissions/\d+/$"))
    submission_id = int(page.url.rstrip("/").split("/")[-1])
    assert page.locator("#progress").count() == 1 or page.locator("#results").count() == 1
    page.wait_for_selector("#results", timeout=300_000)  # progress.js reloads the page when it ends
    page.wait_for_selector("#chart .plot-container", timeout=30_000)
    assert page.locator("#status").inner_text().strip() == "Done"

    rows = split_rows(mini_root)
    scores = reference_scores(load_images(mini_root, rows, INPUT_SIZE), seed=5)
    expected = expected_metrics(rows, np.asarray(scores, dtype=np.float64))
    page.goto(f"{live_server.url}/leaderboards/mini/")
    row = page.locator(f'tr[data-submission="{submission_id}"]')
    assert float(row.locator('[data-metric="acc_mean"]').inner_text().split()[0]) == pytest.approx(expected["mean"]["acc_mean"], abs=5e-5)
    assert float(row.locator('[data-metric="roc_auc"]').inner_text()) == pytest.approx(expected["mean"]["roc_auc"], abs=5e-5)
    for generator in set(expected) - {"mean"}:
        cell = row.locator(f'[data-generator="{generator}"]').inner_text()
        assert float(cell) == pytest.approx(expected[generator]["acc_mean"], abs=5e-5)


def test_the_pages_scripts_work_under_the_content_security_policy(browser_page, live_server, mini_dataset,
                                                                 django_user_model) -> None:
    page = browser_page
    django_user_model.objects.create_superuser("root", password="a long root passphrase")
    page.goto(f"{live_server.url}/benchmarks/mini/")  # the bias audit's plotly charts
    page.wait_for_selector(f"#audit-quality-{mini_dataset.pk} .plot-container", timeout=30_000)
    page.goto(f"{live_server.url}/api/docs/")  # Swagger UI, started by its own script request
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "a long root passphrase")
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))
    page.goto(f"{live_server.url}/admin/submissions/submission/")
    page.wait_for_selector("#changelist-filter")  # the admin's own scripts and styles
    page.goto(f"{live_server.url}/leaderboards/mini/")
    page.click("header form.inline button")  # log out: a POST with the CSRF token, as the header's form sends it
    page.wait_for_url(re.compile(r".*/$"))
    assert page.locator("a[href='/accounts/login/']").count() == 1
