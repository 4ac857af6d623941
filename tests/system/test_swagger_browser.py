"""Swagger UI in a real headless Chromium (Debian's package, driven by Selenium and chromedriver).

A reader opens /swagger/, sees every operation of /swagger.json, pastes their token into
"Authorize", and runs `GET /api/tasks/` with "Try it out" -> "Execute": the answer is 200
and shows the task they created. The page is kept as test-artifacts/swagger.png.

The page itself must work offline and cleanly: the browser's console log holds no error
(a Python None rendered into its script once threw ReferenceError), and its performance
log shows no request to any host but the edge (it once fetched Google's fonts).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.processes import REPO, ProcessStack

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("system")]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = REPO / "test-artifacts" / "swagger.png"
WAIT = 20  # seconds for the page to render or answer


def _browser_or_skip() -> None:
    """.ci/run installs Debian's chromium and chromium-driver; elsewhere they may be absent."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator:
    _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # runs as root in CI
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--window-size=1400,2000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    # The console (browser) and the network events (performance) as chromedriver logs them.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def test_swagger_ui_lists_authorizes_and_runs_list_tasks(browser, process_stack: ProcessStack, new_account):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    account = new_account("swagger")
    title = f"Shown in Swagger {account.username}"
    created = requests.post(
        f"{process_stack.edge_url}/api/tasks/", json={"title": title}, headers=account.headers, timeout=10
    )
    assert created.status_code == 201, created.text
    document = requests.get(f"{process_stack.edge_url}/swagger.json", timeout=10).json()
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }
    wait = WebDriverWait(browser, WAIT)

    browser.get(f"{process_stack.edge_url}/swagger/")
    wait.until(shown.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
    listed = {
        (
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text.strip().upper(),
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path"),
        )
        for block in browser.find_elements(By.CSS_SELECTOR, ".opblock")
    }
    assert listed == documented

    # Authorize: the bearer scheme takes the token as it is.
    browser.find_element(By.CSS_SELECTOR, "button.authorize").click()
    token_input = wait.until(shown.visibility_of_element_located((By.CSS_SELECTOR, ".modal-ux input")))
    token_input.send_keys(account.access)
    browser.find_element(By.CSS_SELECTOR, ".modal-ux .auth-btn-wrapper button.authorize").click()
    authorized = (By.CSS_SELECTOR, ".modal-ux .auth-container h6")
    wait.until(shown.text_to_be_present_in_element(authorized, "Authorized"))
    browser.find_element(By.CSS_SELECTOR, ".modal-ux button.btn-done").click()

    # Try it out -> Execute on GET /api/tasks/.
    operation = browser.find_element(
        By.XPATH,
        "//div[contains(@class, 'opblock-get')]"
        "[.//*[contains(@class, 'opblock-summary-path') and @data-path='/api/tasks/']]",
    )
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait.until(lambda _: operation.find_elements(By.CSS_SELECTOR, "button.try-out__btn"))[0].click()
    wait.until(lambda _: operation.find_elements(By.CSS_SELECTOR, "button.execute"))[0].click()
    status = wait.until(
        lambda _: operation.find_elements(By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status")
    )[0]
    body = operation.find_element(By.CSS_SELECTOR, ".live-responses-table .response-col_description pre")
    browser.execute_script("arguments[0].scrollIntoView()", status)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))

    assert status.text.strip() == "200", f"Swagger UI's call answered {status.text}: {body.text}"
    assert title in body.text
    # Swagger UI shows the request it sent as a curl command.
    curl = operation.find_element(By.CSS_SELECTOR, ".curl").text
    assert f"Bearer {account.access}" in curl, "the call did not carry the authorized token"


def test_swagger_ui_page_has_no_console_errors_and_asks_no_other_host(browser, process_stack: ProcessStack):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get("about:blank")
    browser.get_log("browser"), browser.get_log("performance")  # drain what came before

    browser.get(f"{process_stack.edge_url}/swagger/")
    WebDriverWait(browser, WAIT).until(shown.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
    browser.execute_script("return document.readyState")  # the load event's scripts have run

    console = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert console == [], "the Swagger UI page logged errors or warnings"
    edge = urlsplit(process_stack.edge_url).netloc
    requested = _requested_urls(browser.get_log("performance"))
    assert any(urlsplit(url).path == "/swagger.json" for url in requested), requested
    elsewhere = [url for url in requested if urlsplit(url).scheme in ("http", "https", "ws", "wss")
                 and urlsplit(url).netloc != edge]
    assert elsewhere == [], "the Swagger UI page asked other hosts"


def _requested_urls(performance_log: list[dict]) -> list[str]:
    """Every URL the page asked for (Chrome DevTools Protocol Network.requestWillBeSent)."""
    urls = []
    for entry in performance_log:
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls
