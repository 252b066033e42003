"""The web demo in a real browser: headless Chromium (Debian's chromium + chromium-driver, through
Selenium) opens the Gradio page served in front of the real stack, asks in Chinese and in English,
sees the answers with a citation link, sees a late answer arrive, clicks a Rasa button and 👎, and
saves a screenshot to test-artifacts/. Plus the page's rendering helpers on their own."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from assistant.db.repository import Repository
from assistant.stack import Stack, service_specs
from connectors.rest import BotMessage
from connectors.web import Session, render, source_link, to_chat
from tests.conftest import REQUIRE_SERVICES, ROOT, base_settings, seed_database

ARTIFACTS = Path(os.environ.get("ASSISTANT_TEST_ARTIFACTS", ROOT / "test-artifacts"))


def test_each_browser_tab_gets_a_conversation_of_its_own():
    """Gradio deep-copies the State's default value for every tab: each copy is a fresh session."""
    import copy

    default = Session()
    default.history.append({"role": "user", "content": "hi"})
    first, second = copy.deepcopy(default), copy.deepcopy(default)
    assert len({default.sender, first.sender, second.sender}) == 3
    assert first.history == [] and first.lock is not second.lock


def test_sources_become_links_and_json_carries_the_answer_id():
    text = "退款原路退回。[1]\n\n来源：\n[1] 退款政策 › 14 天后 (docs/zh/退款.md)\n[2] 退款时间 (faq.yml#refund-time)"
    entries = to_chat([BotMessage(text), BotMessage("", [], {"answer_key": "k1", "citations": []}),
                       BotMessage("需要人工吗？", [{"title": "转人工", "payload": "/request_human"}])])
    (first, key), (second, _) = entries
    assert key == "k1"
    assert "[退款政策 › 14 天后](/kb/docs/zh/%E9%80%80%E6%AC%BE.md)" in first["content"]
    assert "[退款时间](/kb/faq.yml#refund-time)" in first["content"]
    assert second["options"] == [{"label": "转人工", "value": "/request_human"}]
    assert render(BotMessage("no sources here (x)")) == "no sources here (x)"
    assert source_link("faq.yml#a b") == "/kb/faq.yml#a%20b"


@pytest.fixture(scope="module")
def web(tmp_path_factory, settings):
    for tool in ("chromium", "chromedriver"):
        if shutil.which(tool) is None:
            msg = f"{tool} is not installed: `apt-get install chromium chromium-driver` (Debian)"
            pytest.fail(msg) if REQUIRE_SERVICES else pytest.skip(msg)
    var = tmp_path_factory.mktemp("var-web")
    os.environ["ASSISTANT_TEST_GENERATOR_DELAY_S"] = "2.5"
    # LLM-style generation in the action server's threads (no Redis): slow answers arrive late
    s = base_settings(var_dir=var, chroma_dir=settings.chroma_dir, database_url=f"sqlite:///{var / 'db.sqlite'}",
                      nlu_port=15506, action_port=15555, rasa_port=15505, web_port=17860, generation_mode="queue",
                      kb_generator="python:assistant.generation.fakes:slow", answer_budget_s=0.8)
    seed_database(s.effective_database_url)
    stack = Stack(s, service_specs(s, include_web=True))
    stack.start(echo=print)
    try:
        yield stack
    finally:
        stack.stop()
        os.environ.pop("ASSISTANT_TEST_GENERATOR_DELAY_S", None)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600", "--lang=zh-CN"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.implicitly_wait(2)
    yield driver
    driver.quit()


def chat_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "chat").text


def wait_for(driver, predicate, timeout_s: float = 20.0, what: str = "", stack: Stack | None = None):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.25)
    logs = f"\nthe services' logs:\n{stack.log_tails()}" if stack is not None else ""
    raise AssertionError(f"timed out waiting for {what}; the chat shows:\n{chat_text(driver)[-1500:]}{logs}")


def send(driver, text: str) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.CSS_SELECTOR, "#message textarea")
    box.clear()
    box.send_keys(text)
    driver.find_element(By.ID, "send").click()


def test_the_web_page_in_a_real_browser(web, browser):
    from selenium.webdriver.common.by import By

    settings = web.settings
    browser.get(settings.web_url + "/")
    wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#message textarea"), what="the page", stack=web)
    assert "CloudMax 智能客服" in browser.find_element(By.ID, "title").text

    # Chinese: a curated FAQ answer at once, with its source as a link that opens the cited file
    # (the first turn of a fresh stack warms every service's models: it may take a while on a busy machine)
    started = time.monotonic()
    send(browser, "怎么申请退款")
    wait_for(browser, lambda: "来源" in chat_text(browser), timeout_s=60, what="the Chinese answer", stack=web)
    print(f"first answer in the browser after {time.monotonic() - started:.1f} s")
    assert "14 天" in chat_text(browser)
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#chat a")]
    kb_links = [h for h in links if "/kb/" in (h or "")]
    assert kb_links, links
    cited = httpx.get(kb_links[0].split("#")[0], timeout=10)
    assert cited.status_code == 200 and "退款" in cited.text

    # English, answered by the (slow) generator: "looking that up" now, the answer a moment later
    send(browser, "which compliance certifications do you have")
    wait_for(browser, lambda: "look that up" in chat_text(browser), what="the pending reply", stack=web)
    wait_for(browser, lambda: "Sources:" in chat_text(browser), timeout_s=30, what="the late answer", stack=web)
    assert "ISO/IEC 27001" in chat_text(browser)
    assert chat_text(browser).count("ISO/IEC 27001") == 1

    # a refused question offers a Rasa button; clicking it hands over to a person
    send(browser, "Are you HIPAA compliant? We're a clinic.")
    wait_for(browser, lambda: "Talk to a human" in chat_text(browser), what="the button", stack=web)
    button = next(b for b in browser.find_elements(By.CSS_SELECTOR, "#chat button") if b.text == "Talk to a human")
    button.click()
    wait_for(browser, lambda: "ticket #" in chat_text(browser), what="the handoff", stack=web)
    assert "/request_human" not in chat_text(browser)  # the page shows the button's label, not its payload

    # 👎 on the late answer: stored with the conversation id and the answer id
    # (the late answer took the place of its "looking that up": the second answer on the page)
    assert "look that up" not in chat_text(browser)
    dislikes = browser.find_elements(By.CSS_SELECTOR, "#chat button[aria-label='Dislike']")
    assert len(dislikes) >= 3
    dislikes[1].click()
    wait_for(browser, lambda: "感谢反馈" in browser.find_element(By.ID, "feedback-status").text, what="feedback", stack=web)
    rows = Repository.from_url(settings.effective_database_url).feedback_for()  # the page's id is not visible here
    assert len(rows) == 1 and rows[0]["rating"] == -1 and rows[0]["channel"] == "web"
    assert rows[0]["sender_id"].startswith("web-") and "ISO/IEC 27001" in rows[0]["answer_text"]
    assert len(rows[0]["answer_id"]) == 32  # the answer's key from the worker, not a position

    # the language switch
    browser.find_element(By.XPATH, "//label[contains(., 'English')]").click()
    wait_for(browser, lambda: "CloudMax assistant" in browser.find_element(By.ID, "title").text, what="English UI", stack=web)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "web-demo.png"))
