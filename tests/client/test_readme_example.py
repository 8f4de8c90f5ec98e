"""The README's "Gate your agent in 10 lines" runs as printed, against a live server.

It runs where an agent runs: a python with only `gatekeeper_client` installed, no Django.
"""

import re
from pathlib import Path

from approvals.services.review import packet_approve
from tests.client.conftest import next_packet, run_as_agent

README = Path(__file__).resolve().parents[2] / "README.md"


def _ten_lines() -> str:
    text = README.read_text()
    section = text[text.index("## Gate your agent in 10 lines") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    assert len(code.strip().splitlines()) <= 11
    return code


def test_the_readme_example_waits_for_approval_and_then_runs(
    agent_python, live_server, gk_account, alice, in_background
):
    in_background(lambda: packet_approve(packet_id=next_packet("onboard-77").id, user=alice))
    out = run_as_agent(
        agent_python,
        _ten_lines(),
        GATEKEEPER_URL=live_server.url,
        GATEKEEPER_TOKEN=gk_account[1],
    )
    assert out == "granting admin to jdoe"
