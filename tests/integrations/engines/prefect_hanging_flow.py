"""A Prefect flow whose tool hangs mid-call, served for test_prefect.py (which kills its runner
there and retries the run): it gates hr.lookup (allowed by policy) and runs `tool.hang`, which
prints STARTED and never returns.

    PREFECT_API_URL=... GATEKEEPER_URL=... GATEKEEPER_TOKEN=... python prefect_hanging_flow.py
"""

import os
import time

from prefect import flow, task

DEPLOYMENT = "hanging/hanging"


@task(name="tool.hang", persist_result=True)
def hang(args: dict) -> None:
    print("STARTED tool.hang", flush=True)
    time.sleep(600)


@flow(name="hanging", persist_result=True)
def hanging() -> None:
    from gatekeeper_client import GatekeeperClient
    from gatekeeper_client.prefect import gate, run

    gk = GatekeeperClient(os.environ["GATEKEEPER_URL"], os.environ["GATEKEEPER_TOKEN"])
    verdict = gate(gk, "hr-onboarding", 0, "hr.lookup", {"employee_id": 7})
    run(gk, 0, hang, verdict.args)


if __name__ == "__main__":
    hanging.serve(name="hanging", print_starting_message=False)
