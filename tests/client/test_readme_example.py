"""The README's "Gate your agent in 10 lines" runs as printed, against a live server."""

import re
from pathlib import Path

from approvals.services.review import packet_approve
from tests.client.conftest import next_packet

README = Path(__file__).resolve().parents[2] / "README.md"


def _ten_lines() -> str:
    text = README.read_text()
    section = text[text.index("## Gate your agent in 10 lines") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    assert len(code.strip().splitlines()) <= 11
    return code


def test_the_readme_example_waits_for_approval_and_then_runs(
    live_server, gk_account, alice, monkeypatch, capsys, in_background
):
    monkeypatch.setenv("GATEKEEPER_URL", live_server.url)
    monkeypatch.setenv("GATEKEEPER_TOKEN", gk_account[1])
    in_background(lambda: packet_approve(packet_id=next_packet("onboard-77").id, user=alice))
    exec(compile(_ten_lines(), str(README), "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == "granting admin to jdoe\n"
