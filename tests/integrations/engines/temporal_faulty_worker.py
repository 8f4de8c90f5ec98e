"""A Temporal worker whose tools go wrong, for test_temporal.py: `Faulty(mode)` gates hr.lookup
(allowed by policy) and runs `tool.<mode>` through `Gates.run`: `raise` raises, `unknown`
raises OutcomeUnknown, `hang` prints STARTED and never returns (the test kills its worker).

    TEMPORAL_ADDRESS=... GATEKEEPER_URL=... GATEKEEPER_TOKEN=... GATEKEEPER_RELAY_STORE=... \
        python temporal_faulty_worker.py
"""

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from gatekeeper_client import OutcomeUnknown
    from gatekeeper_client.temporal import Gates

TASK_QUEUE = "faulty"
TOOL_SECONDS = 3  # start to close: how long a killed worker's tool takes to time out


@activity.defn(name="tool.raise")
def tool_raise(args: dict) -> None:
    raise RuntimeError("the directory refused the grant")


@activity.defn(name="tool.unknown")
def tool_unknown(args: dict) -> None:
    raise OutcomeUnknown("the directory timed out after the request was sent")


@activity.defn(name="tool.hang")
def tool_hang(args: dict) -> None:
    print("STARTED tool.hang", flush=True)
    time.sleep(600)


@workflow.defn(name="Faulty")
class Faulty:
    def __init__(self) -> None:
        self.gates = Gates()

    @workflow.run
    async def run(self, mode: str) -> None:
        verdict = await self.gates.gate("hr-onboarding", 0, "hr.lookup", {"employee_id": 7})
        await self.gates.run(
            0, f"tool.{mode}", verdict.args, start_to_close_timeout=timedelta(seconds=TOOL_SECONDS)
        )


async def main() -> None:
    from gatekeeper_client import AsyncGatekeeperClient
    from gatekeeper_client.relay import RelayStore
    from gatekeeper_client.temporal import GateActivity
    from temporalio.client import Client
    from temporalio.worker import Worker

    client = await Client.connect(os.environ["TEMPORAL_ADDRESS"])
    gk = AsyncGatekeeperClient(os.environ["GATEKEEPER_URL"], os.environ["GATEKEEPER_TOKEN"])
    gate = GateActivity(gk, RelayStore(os.environ["GATEKEEPER_RELAY_STORE"]))
    worker = Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[Faulty],
        activities=[*gate.activities, tool_raise, tool_unknown, tool_hang],
        activity_executor=ThreadPoolExecutor(4),
    )
    print("worker started", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
