"""The example's crew with recording tools, for the CrewAI tests; run by .venv-crewai's python.

    python driver.py --thread-id ID [--grant-unknown] [--refresh] [--wait-timeout S]

Prints what happened as JSON on its last line: the tools' calls, the gate's refusals, what the
agent saw for each gated call, how often the refresh hook ran, and the crew's answer.
"""

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))  # tests.integrations.recording_tools: no Django there

spec = importlib.util.spec_from_file_location("crewai_agent", ROOT / "examples/crewai_agent.py")
example = importlib.util.module_from_spec(spec)
spec.loader.exec_module(example)  # switches CrewAI's telemetry off before crewai is imported

from crewai.tools import tool  # noqa: E402
from gatekeeper_client import GatekeeperClient, OutcomeUnknown  # noqa: E402
from gatekeeper_client.crewai import GatekeeperToolHook  # noqa: E402

from tests.integrations.recording_tools import RecordingTools  # noqa: E402


class SeenHook(GatekeeperToolHook):
    """Keeps what the agent saw for each gated call."""

    seen: list

    def after_tool_call(self, context):
        answer = super().after_tool_call(context)
        self.seen.append(answer)
        return answer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--thread-id", required=True)
    parser.add_argument("--grant-unknown", action="store_true")
    parser.add_argument("--refresh", action="store_true")
    parser.add_argument("--wait-timeout", type=float, default=90)
    options = parser.parse_args()
    reads = []

    def read_again():
        reads.append(1)
        return {"employee_record": {"id": 7, "title": "Engineer"}}

    error = OutcomeUnknown("IAM timed out") if options.grant_unknown else None
    tools = RecordingTools(tool, lookup_answer="Jane Doe", grant_error=error)
    gk = GatekeeperClient(os.environ["GATEKEEPER_URL"], os.environ["GATEKEEPER_TOKEN"])
    hook_options = {"refresh_context": read_again} if options.refresh else {}
    gate = SeenHook(
        gk,
        workflow="hr-onboarding",
        thread_id=options.thread_id,
        tool_names=example.TOOLS,
        wait_timeout=options.wait_timeout,
        **hook_options,
    )
    gate.seen = []
    with gate.installed():
        output = example.build_crew(tools.tools).kickoff()
    happened = {"calls": tools.calls, "refusals": gate.refusals, "seen": gate.seen}
    print(json.dumps({**happened, "reads": len(reads), "output": output.raw}))


if __name__ == "__main__":
    main()
