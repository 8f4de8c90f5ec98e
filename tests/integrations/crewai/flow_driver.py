"""A CrewAI Flow whose @human_feedback is decided in Gatekeeper; run by .venv-crewai's python.

    python flow_driver.py wait FLOW_ID       # waits for reviewers, prints the route it took
    python flow_driver.py pause FLOW_ID DB   # pauses: prints PAUSED <flow id> <approval id>
    python flow_driver.py resume FLOW_ID DB APPROVAL_ID   # in a new process, once decided

The flow's id (its state's `id`, given as input) is the execution's thread id.
"""

import os
import sys

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")  # before crewai is imported
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")

from crewai.flow import Flow, human_feedback, listen, start  # noqa: E402
from crewai.flow.async_feedback import HumanFeedbackPending  # noqa: E402
from crewai.flow.persistence import SQLiteFlowPersistence  # noqa: E402
from gatekeeper_client import GatekeeperClient  # noqa: E402
from gatekeeper_client.crewai import GatekeeperFeedback  # noqa: E402

mode = sys.argv[1]
gk = GatekeeperClient(os.environ["GATEKEEPER_URL"], os.environ["GATEKEEPER_TOKEN"])
PROVIDER = GatekeeperFeedback(
    gk,
    workflow="hr-onboarding",
    tool=lambda method: "iam.grant",
    wait_timeout=0 if mode == "pause" else 90,
)


class Onboarding(Flow):
    # No `emit`: crewai 1.15.30 sends even an exact outcome to an LLM to classify (offline here).
    @start()
    @human_feedback(message="Grant this?", provider=PROVIDER)
    def propose(self):
        return {"user": "jdoe", "role": "admin"}

    @listen(propose)
    def decided(self, result):
        # One write, newline included: CrewAI's console panels come from another thread, and
        # print's two writes (text, then end) let a panel land between them.
        sys.stdout.write(f"FEEDBACK {result.feedback}\n")
        sys.stdout.flush()


flow_id = sys.argv[2]
if mode == "wait":
    Onboarding().kickoff(inputs={"id": flow_id})
elif mode == "pause":
    flow = Onboarding(persistence=SQLiteFlowPersistence(sys.argv[3]))
    paused = flow.kickoff(inputs={"id": flow_id})
    assert isinstance(paused, HumanFeedbackPending), paused
    print(f"PAUSED {paused.context.flow_id} {paused.callback_info['gatekeeper']['approval_id']}")
else:
    flow = Onboarding.from_pending(flow_id, SQLiteFlowPersistence(sys.argv[3]))
    feedback = PROVIDER.feedback_for(sys.argv[4])
    flow.resume(feedback)
