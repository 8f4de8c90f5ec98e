"""The onboarding flow on Prefect 3, each tool behind a Gatekeeper gate.

    GATEKEEPER_URL=http://127.0.0.1:8000 GATEKEEPER_TOKEN=... \
        python examples/prefect_agent.py --thread-id onboard-1

The flow runs hr.lookup, then iam.grant, each after `gate`: a step that needs approval
suspends the flow run (its process exits) until the decision resumes it. `run` runs each
tool's task, then records its outcome in a task. Without PREFECT_API_URL it starts Prefect's
local test server (`prefect_test_harness`). It serves the flow from a runner process
(`--serve`, as a deployment would) and long-polls decisions, or relays them when
GATEKEEPER_WEBHOOK_SECRET is set (callback http://127.0.0.1:$GATEKEEPER_RELAY_PORT/).
The flow run's id is the gate's thread: --thread-id names the flow run. When a reviewer
approves a step whose facts grew old (re-review), the flow reads them again (`hr_facts`) and
asks again.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

from prefect import flow, task

WORKFLOW = "hr-onboarding"
DEPLOYMENT = "onboarding/onboarding"


@task(name="hr.lookup", persist_result=True)
def hr_lookup(args: dict) -> dict:
    print(f"RAN hr.lookup {json.dumps(args, sort_keys=True)}", flush=True)
    return {"employee_id": args["employee_id"], "name": "J. Doe"}


@task(name="iam.grant", persist_result=True)
def iam_grant(args: dict) -> dict:
    print(f"RAN iam.grant {json.dumps(args, sort_keys=True)}", flush=True)
    return {"granted": True}


def hr_facts() -> dict:
    """The step's facts, read again after a re-review: the employee record as it is now."""
    return {"employee_record": {"employee_id": 7, "name": "J. Doe"}}


@flow(name="onboarding", persist_result=True)
def onboarding() -> dict:
    from gatekeeper_client import GatekeeperClient
    from gatekeeper_client.prefect import gate, run

    gk = GatekeeperClient(os.environ["GATEKEEPER_URL"], os.environ["GATEKEEPER_TOKEN"])
    denied = []
    for index, (tool, tool_task, args) in enumerate(
        [
            ("hr.lookup", hr_lookup, {"employee_id": 7}),
            ("iam.grant", iam_grant, {"user": "jdoe", "role": "admin"}),
        ]
    ):
        verdict = gate(gk, WORKFLOW, index, tool, args, refresh_context=hr_facts)
        if verdict.run:  # the tool with the approved args, then its outcome: tasks both
            run(gk, index, tool_task, verdict.args)
        elif not verdict.skip:
            print(f"DENIED {tool} {verdict.reason}", flush=True)
            denied.append([tool, verdict.reason])
    return {"denied": denied}


def serve() -> None:
    onboarding.serve(name="onboarding", print_starting_message=False)


def long_poll_decisions(stop: threading.Event) -> None:
    """Without a relay: wait on each suspended run's approval, then resume it."""
    from gatekeeper_client import GatekeeperClient
    from gatekeeper_client.prefect import PrefectHandler
    from gatekeeper_client.relay import wakes_engine
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateName,
    )

    gk = GatekeeperClient(os.environ["GATEKEEPER_URL"], os.environ["GATEKEEPER_TOKEN"])
    handler = PrefectHandler()
    while not stop.wait(0.5):
        with get_client(sync_client=True) as client:
            suspended = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Suspended"]))
                )
            )
        for run in suspended:
            key = (run.state.state_details.pause_key or "").removeprefix("gatekeeper-")
            approval = gk.wait(key, timeout=5, poll=5) if key else None
            if approval is not None and wakes_engine(approval.raw):
                handler.signal({"flow_run_id": str(run.id)}, approval.raw)


def run(thread_id: str) -> int:
    from prefect.deployments import run_deployment

    runner = subprocess.Popen([sys.executable, __file__, "--serve"])  # noqa: S603 - this script
    stop = threading.Event()
    waiter = threading.Thread(target=long_poll_decisions, args=(stop,))
    waiter.start()
    try:
        deadline = time.monotonic() + 120
        while True:  # the runner registers the deployment as it starts
            try:
                started = run_deployment(DEPLOYMENT, flow_run_name=thread_id, timeout=0)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        from prefect import get_client

        with get_client(sync_client=True) as client:
            while not (state := client.read_flow_run(started.id).state).is_final():
                if not waiter.is_alive():
                    raise RuntimeError("the decision poller stopped")
                time.sleep(0.5)
        if not state.is_completed():
            print(f"flow run {state.name}", file=sys.stderr)
            return 1
        print("DONE", flush=True)
        return 0
    finally:
        stop.set()
        waiter.join()
        runner.terminate()
        runner.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--thread-id", default=f"onboard-{int(time.time())}")
    parser.add_argument("--serve", action="store_true", help="only serve the flow (a runner)")
    options = parser.parse_args()
    if not os.environ.get("GATEKEEPER_URL") or not os.environ.get("GATEKEEPER_TOKEN"):
        print("set GATEKEEPER_URL and GATEKEEPER_TOKEN", file=sys.stderr)
        return 2
    if options.serve:
        serve()
        return 0
    if os.environ.get("PREFECT_API_URL"):
        return run(options.thread_id)
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        from prefect.settings import PREFECT_API_URL

        os.environ["PREFECT_API_URL"] = PREFECT_API_URL.value()  # for the runner process
        return run(options.thread_id)


if __name__ == "__main__":
    sys.exit(main())
