"""Every alert an operator can receive links to a runbook section that exists."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _anchors(markdown: str) -> set[str]:
    """The anchors GitHub makes of the headings: lowercase, punctuation out, '-' for spaces."""
    headings = re.findall(r"^#{1,6} (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_every_alert_s_runbook_url_names_a_section_of_the_operations_guide() -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules.yaml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    anchors = _anchors((ROOT / "docs/operations.md").read_text())

    assert len(alerts) >= 10
    for alert in alerts:
        page, _, anchor = alert["annotations"]["runbook_url"].partition("#")
        assert page == "docs/operations.md", alert["alert"]
        assert anchor == f"alert-{alert['alert'].lower()}"
        assert anchor in anchors, f"{alert['alert']}: no section #{anchor} in docs/operations.md"
