"""Content-Security-Policy violations seen by a real browser, so that a browser test fails when a
page it visits breaks the policy (an inline script, a style= attribute, a blocked connection).

Chromium reports a violation twice: as a `securitypolicyviolation` DOM event, which the watcher
forwards from every page of the context (through a binding that survives navigation), and as a
console error ("Refused to ..."), which also covers what happens before the page's own scripts
run. Both are collected: a violation missed by one is still caught by the other.

Under the policy, give Playwright's wait_for_function a function ("() => ..."), not a bare
expression: Playwright evaluates an expression in the page with eval, which the policy refuses.
"""

from __future__ import annotations

from typing import Any

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__signoffCspViolation(
    `${event.effectiveDirective} blocked ${event.blockedURI || "inline"}`
    + ` on ${event.documentURI} (${event.sourceFile || "page"}:${event.lineNumber})`
    + (event.sample ? `: ${event.sample}` : "")
  );
});
"""


def watch_csp(context: Any, violations: list[str]) -> Any:
    """Collect into `violations` every policy violation in the pages of a Playwright context."""
    context.expose_binding("__signoffCspViolation", lambda _source, text: violations.append(text))
    context.add_init_script(REPORT_VIOLATIONS)

    def on_console(message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            violations.append(f"console: {message.text}")

    context.on("console", on_console)
    return context


def violations_report(violations: list[str]) -> str:
    return "the Content-Security-Policy was broken:\n" + "\n".join(violations)
