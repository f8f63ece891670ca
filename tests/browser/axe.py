"""axe-core in the browser tests: inject it into every frame and fail on any violation.

axe-core comes from the npm registry: ``make axe`` (part of ``make test``) installs the
pinned version into the virtualenv (``.venv/axe``). It is added as an init script, so it
is in every page and frame (the Stripe.js iframes too) without touching the pages' CSP.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page

AXE_JS = Path(sys.prefix) / "axe" / "node_modules" / "axe-core" / "axe.min.js"

# Every rule axe runs by default (WCAG 2.x A and AA, and best practices), any impact.
RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " | " + n.failureSummary),
  }));
}"""


def install(page: Page) -> None:
    """Load axe-core into every page and frame this page's context opens from now on."""
    if not AXE_JS.exists():
        pytest.fail(f"axe-core is missing ({AXE_JS}): run `make axe` (`make test` does)")
    page.context.add_init_script(path=str(AXE_JS))


def violations(page: Page) -> list[dict]:
    page.wait_for_load_state("load")
    return page.evaluate(RUN)


def describe(found: dict[str, list[dict]]) -> str:
    lines = []
    for where, items in found.items():
        for v in items:
            lines.append(f"{where}: {v['id']} ({v['impact']}): {v['help']}")
            lines.extend(f"    {node}" for node in v["nodes"])
    return "\n".join(lines)


def check(page: Page, where: str = "") -> None:
    """Fail the test on any axe violation on the page as it is now."""
    found = violations(page)
    assert not found, "axe:\n" + describe({where or page.url: found})
