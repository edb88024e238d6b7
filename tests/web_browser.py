#!/usr/bin/env python3
"""A real, headless Chromium through the web portal (run by tests/web_browser.rs).

Arguments: BASE_URL ADDRESS PASSWORD TRACKER_PORT ATTACHMENT_FILE REPLY_FILE SCREENSHOT_DIR

Logs in, reads the diverted message, opens the HTML mail with a script and a remote
image (the script must not run; the local "tracker" hears nothing until "show
images"), downloads the attachment and compares its bytes, replies with an
attachment, saves screenshots of the main pages, logs out. Prints "ok" at the end;
any failure raises.
"""

import http.server
import os
import sys
import tempfile
import threading
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

base, address, password, tracker_port, attachment_file, reply_file, shots = sys.argv[1:8]
expected_attachment = open(attachment_file, "rb").read()
os.makedirs(shots, exist_ok=True)

# ---- the tracker: counts every request it gets ----
hits = []


class Tracker(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.end_headers()
        self.wfile.write(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")

    def log_message(self, *args):
        pass


tracker = http.server.ThreadingHTTPServer(("127.0.0.1", int(tracker_port)), Tracker)
threading.Thread(target=tracker.serve_forever, daemon=True).start()

# ---- the browser ----
downloads = tempfile.mkdtemp(prefix="lifeboat-downloads-")
profile = tempfile.mkdtemp(prefix="lifeboat-chromium-")
options = webdriver.ChromeOptions()
for flag in [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900",
]:
    options.add_argument(flag)
options.binary_location = "/usr/bin/chromium"
options.add_experimental_option("prefs", {
    "download.default_directory": downloads,
    "download.prompt_for_download": False,
    "safebrowsing.enabled": False,
})
service = Service(executable_path="/usr/bin/chromedriver")
driver = webdriver.Chrome(options=options, service=service)
driver.set_page_load_timeout(60)
driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})


def shot(name):
    driver.save_screenshot(os.path.join(shots, name + ".png"))


def wait_for(condition, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; at {driver.current_url}:\n{driver.page_source[:3000]}")


try:
    # Log in.
    driver.get(base + "/login")
    assert "Sign in" in driver.title, driver.title
    shot("login")
    driver.find_element(By.ID, "address").send_keys(address)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(lambda: "/folder/" in driver.current_url, "the inbox")
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "Your mail server is unavailable since" in body, body
    inbox_url = driver.current_url
    shot("inbox")

    # The diverted message.
    driver.find_element(By.LINK_TEXT, "Diverted during the outage").click()
    wait_for(lambda: "kept safe while the origin is down" in driver.page_source, "the diverted text")

    # The HTML mail: no script runs, nothing reaches the tracker.
    driver.get(inbox_url)
    driver.find_element(By.LINK_TEXT, "Newsletter with tracking").click()
    frame = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "iframe.mailbody"), "the mail frame")[0]
    time.sleep(2)
    shot("message")
    driver.switch_to.frame(frame)
    wait_for(lambda: "Hello from the newsletter" in driver.find_element(By.TAG_NAME, "body").text, "the HTML body")
    assert driver.execute_script("return document.title") != "pwned"
    assert not driver.find_elements(By.TAG_NAME, "script"), "no script element survives"
    driver.switch_to.default_content()
    assert driver.execute_script("return document.body.getAttribute('data-pwned')") is None, "script ran"
    assert driver.title != "pwned"
    assert hits == [], f"the tracker was contacted before show images: {hits}"

    # Show images: now the tracker hears of it.
    driver.find_element(By.ID, "show-images").click()
    wait_for(lambda: len(hits) > 0, "a request to the tracker after show images")
    assert driver.execute_script("return document.body.getAttribute('data-pwned')") is None

    # Download the attachment and compare bytes.
    link = driver.find_element(By.PARTIAL_LINK_TEXT, "Bericht")
    link.click()

    def downloaded():
        names = [n for n in os.listdir(downloads) if not n.endswith(".crdownload")]
        return names[0] if names else None

    name = wait_for(downloaded, "the download")
    assert name == "Bericht-Grüße.pdf", name
    time.sleep(0.5)
    got = open(os.path.join(downloads, name), "rb").read()
    assert got == expected_attachment, (len(got), len(expected_attachment))

    # Reply with an attachment.
    driver.find_element(By.LINK_TEXT, "Reply").click()
    wait_for(lambda: "/compose" in driver.current_url, "the compose page")
    text = driver.find_element(By.ID, "body")
    text.send_keys(Keys.CONTROL, Keys.HOME)
    text.send_keys("Thanks, noted. Sent from the Lifeboat web portal.")
    driver.find_element(By.ID, "files").send_keys(os.path.abspath(reply_file))
    shot("compose")
    driver.find_element(By.CSS_SELECTOR, "button[value=send]").click()
    wait_for(lambda: "notice=sent" in driver.current_url, "the sent notice")
    assert "Your message was sent." in driver.find_element(By.TAG_NAME, "body").text

    # Settings and the mail-app page.
    driver.get(base + "/settings")
    shot("settings")
    driver.get(base + "/settings/mail-app")
    shot("mail-app")

    # A phone: 375 px wide.
    driver.set_window_size(375, 800)
    driver.get(inbox_url)
    shot("phone-inbox")
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 380, f"the inbox scrolls sideways on a phone: {width}px"
    driver.set_window_size(1280, 900)

    # Keyboard only: the first Tab reaches the skip link.
    driver.get(inbox_url)
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    focused = driver.switch_to.active_element
    assert focused.text == "Skip to content", focused.text

    # Log out.
    driver.find_element(By.XPATH, "//button[text()='Log out']").click()
    wait_for(lambda: "/login" in driver.current_url, "the login page")
    driver.get(inbox_url)
    wait_for(lambda: "/login" in driver.current_url, "logged out for good")
    print("ok")
finally:
    driver.quit()
    tracker.shutdown()
