"""An agent's ask in a real Chromium against a real Daphne: it appears live in the reviewer's
open inbox, the reviewer edits one argument in the task page's JSON editor and approves with
changes, and the program waiting on the long-poll receives the edited arguments."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from approvals.client import Signoff
from tests.approvals.api.live_asks import SCHEMA, seed_asks
from tests.approvals.notify.live_server import Daphne
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.processes import child_env, manage

pytestmark = pytest.mark.slow

SESSION = """
from django.test import Client
from accounts.models import User
client = Client()
client.force_login(User.objects.get(username="fred"))
print("SESSION=" + client.cookies["sessionid"].value)
"""


@pytest.fixture
def server(tmp_path: Path):
    env = child_env(tmp_path)
    tokens = seed_asks(env)
    done = manage("shell", "-c", SESSION, env=env)
    assert done.returncode == 0, done.stderr
    session = next(x for x in done.stdout.splitlines() if x.startswith("SESSION="))[8:]
    daphne = Daphne(env, tmp_path / "daphne.log").start()
    yield tokens, session, daphne
    daphne.stop()


def test_an_ask_is_reviewed_edited_and_the_waiter_gets_the_edit(server, csp_guard) -> None:
    if not CHROMIUM.exists():
        pytest.fail("browser tests need Debian's chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    tokens, session, daphne = server
    signoff = Signoff(daphne.http, tokens["bot"])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = csp_guard(browser.new_context(viewport={"width": 1280, "height": 900}))
            context.set_default_timeout(20_000)
            context.add_cookies([{"name": "sessionid", "value": session, "url": daphne.http}])
            inbox = context.new_page()
            inbox.goto(daphne.http + "/inbox/?tab=queue")
            inbox.wait_for_function(
                "() => document.getElementById('signoff-bell').dataset.live === 'online'"
            )
            assert inbox.locator("tr.inbox-row").count() == 0

            answers = []

            def agent() -> None:
                ask = signoff.ask(
                    title="Refund order 1234",
                    action="send_refund",
                    arguments={"order": "1234", "amount": 120},
                    schema=SCHEMA,
                    roles=["finance"],
                    context="The parcel arrived **damaged**.",
                )
                answers.append(signoff.wait(ask.id, timeout=120))

            waiting = threading.Thread(target=agent)
            waiting.start()
            inbox.wait_for_selector("tr.inbox-row")
            assert "Refund order 1234" in inbox.locator("tr.inbox-row").inner_text()
            inbox.locator("tr.inbox-row a").first.click()
            inbox.wait_for_selector("#ask")
            assert "Asked by agent refund-bot on behalf of Refund Bot" in inbox.inner_text(
                "#asked-by"
            )
            assert inbox.locator("#ask-context strong").inner_text() == "damaged"
            editor = inbox.locator("#arguments-editor")
            edited = json.loads(editor.input_value())
            edited["amount"] = 900  # past the schema's maximum: refused, the text kept
            editor.fill(json.dumps(edited))
            inbox.click("button[value=APPROVE_WITH_CHANGES]")
            inbox.wait_for_selector(".arguments-error")
            assert "amount: 900 is greater than the maximum of 500" in inbox.inner_text(
                ".arguments-error"
            )
            assert json.loads(inbox.locator("#arguments-editor").input_value())["amount"] == 900
            edited["amount"] = 60
            inbox.locator("#arguments-editor").fill(json.dumps(edited))
            inbox.click("button[value=APPROVE_WITH_CHANGES]")
            inbox.wait_for_url("**/inbox/**")
            waiting.join(60)
            (answer,) = answers
            assert answer.done and answer.decision.event == "APPROVE_WITH_CHANGES"
            assert answer.arguments == {"order": "1234", "amount": 60}
            assert answer.decision.by == "fred"
        finally:
            browser.close()
