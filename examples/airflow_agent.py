"""The onboarding DAG on Airflow 3.1+, each tool behind a Gatekeeper gate.

    GATEKEEPER_URL=http://127.0.0.1:8000 GATEKEEPER_TOKEN=... \
        python examples/airflow_agent.py --thread-id onboard-1

Each gate is a `GateOperator`, a human-in-the-loop task whose human is Gatekeeper: a step
that needs approval parks in `awaiting_input` until the decision is written as its response;
the task after it runs the tool with the approved args, and an `OutcomeOperator` after that
records what the tool did. It runs the DAG in process with `dag.test()` (no scheduler) on a
metadata database of its own (SQLite in a temporary AIRFLOW_HOME unless AIRFLOW_HOME is set).
Decisions come through `gatekeeper-relay`, run here in a second process, when
GATEKEEPER_WEBHOOK_SECRET is set (point the account's callback at
http://127.0.0.1:$GATEKEEPER_RELAY_PORT/), else that process long-polls them. When a reviewer
approves a step whose facts grew old (re-review), the gate reads them again (`hr_facts`) and
asks again.
"""

import json
import os
import sys
import tempfile

HERE = os.path.abspath(__file__)
if __name__ == "__main__":
    # Airflow reads its configuration as it is imported: a home of its own, set first.
    if "AIRFLOW_HOME" not in os.environ:
        os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="gatekeeper-airflow-")
        os.environ["GATEKEEPER_AIRFLOW_TEMP_HOME"] = os.environ["AIRFLOW_HOME"]
        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = (
            f"sqlite:///{os.environ['AIRFLOW_HOME']}/airflow.db"
        )
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = HERE  # this file: the one DAG
        os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault(
        "GATEKEEPER_RELAY_STORE", os.path.join(os.environ["AIRFLOW_HOME"], "relay.sqlite")
    )

from airflow.sdk import DAG, task  # noqa: E402
from gatekeeper_client.airflow import GateOperator, OutcomeOperator  # noqa: E402

WORKFLOW = "hr-onboarding"
DAG_ID = "gatekeeper_onboarding"


def hr_facts() -> dict:
    """The step's facts, read again after a re-review: the employee record as it is now."""
    return {"employee_record": {"employee_id": 7, "name": "J. Doe"}}


def run_tool(tool: str, verdict: dict) -> None:
    if verdict["decision"] == "allow":
        print(f"RAN {tool} {json.dumps(verdict['args'], sort_keys=True)}", flush=True)
    elif verdict["decision"] == "block":
        print(f"DENIED {tool} {verdict['reason']}", flush=True)


def gate(index: int, tool: str, args: dict) -> GateOperator:
    return GateOperator(
        task_id=f"gate_{tool.replace('.', '_')}",
        workflow=WORKFLOW,
        step_index=index,
        tool=tool,
        args=args,
        thread_id="{{ dag_run.conf['thread_id'] }}",
        refresh_context=hr_facts,
        relay_store=os.environ.get("GATEKEEPER_RELAY_STORE"),
    )


def outcome(index: int, gate_task: GateOperator, tool_task_id: str) -> OutcomeOperator:
    return OutcomeOperator(
        task_id=f"{tool_task_id}_outcome",
        step_index=index,
        gate_task_id=gate_task.task_id,
        tool_task_id=tool_task_id,
        thread_id="{{ dag_run.conf['thread_id'] }}",
    )


with DAG(DAG_ID, schedule=None, catchup=False) as dag:

    @task(task_id="hr_lookup")
    def hr_lookup(verdict: dict) -> None:
        run_tool("hr.lookup", verdict)

    @task(task_id="iam_grant")
    def iam_grant(verdict: dict) -> None:
        run_tool("iam.grant", verdict)

    gate_lookup = gate(0, "hr.lookup", {"employee_id": 7})
    gate_grant = gate(1, "iam.grant", {"user": "jdoe", "role": "admin"})
    looked_up = hr_lookup(gate_lookup.output)
    looked_up >> gate_grant
    looked_up >> outcome(0, gate_lookup, "hr_lookup")
    iam_grant(gate_grant.output) >> outcome(1, gate_grant, "iam_grant")


def decisions() -> None:
    """The second process: relays webhooks to the parked tasks, or long-polls decisions."""
    import signal
    import threading

    from gatekeeper_client import GatekeeperClient
    from gatekeeper_client.airflow import ENGINE, AirflowHandler
    from gatekeeper_client.relay import Relay, RelayStore, long_poll, server

    store, handler, stop = (
        RelayStore(os.environ["GATEKEEPER_RELAY_STORE"]),
        AirflowHandler(),
        threading.Event(),
    )
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    parent = os.getppid()

    def stop_when_orphaned() -> None:  # the DAG's process is gone: nothing waits any more
        while not stop.wait(1):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=stop_when_orphaned, daemon=True).start()
    secret = os.environ.get("GATEKEEPER_WEBHOOK_SECRET")
    if secret:
        httpd = server(
            Relay(secret, store, {ENGINE: handler}),
            port=int(os.environ.get("GATEKEEPER_RELAY_PORT", "0")),
        )
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        stop.wait()
        httpd.shutdown()
    else:
        gk = GatekeeperClient(os.environ["GATEKEEPER_URL"], os.environ["GATEKEEPER_TOKEN"])
        long_poll(gk, store, ENGINE, handler, stop)


def main() -> int:
    import argparse
    import shutil
    import subprocess

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--thread-id", default="onboard-airflow")
    parser.add_argument("--decisions", action="store_true", help="only relay or poll decisions")
    options = parser.parse_args()
    if not os.environ.get("GATEKEEPER_URL") or not os.environ.get("GATEKEEPER_TOKEN"):
        print("set GATEKEEPER_URL and GATEKEEPER_TOKEN", file=sys.stderr)
        return 2
    if options.decisions:
        decisions()
        return 0
    from airflow.utils.db import initdb

    home = os.environ.get("GATEKEEPER_AIRFLOW_TEMP_HOME")
    initdb()
    waiter = subprocess.Popen([sys.executable, HERE, "--decisions"])  # noqa: S603 - this script
    try:
        run = dag.test(run_conf={"thread_id": options.thread_id})
        if run.state != "success":
            print(f"DAG run {run.state}", file=sys.stderr)
            return 1
        print("DONE", flush=True)
        return 0
    finally:
        waiter.terminate()
        waiter.wait(30)
        if home:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
