"""The onboarding job on Dagster, each tool behind a Gatekeeper gate.

    GATEKEEPER_URL=http://127.0.0.1:8000 GATEKEEPER_TOKEN=... \
        python examples/dagster_agent.py --thread-id onboard-1

The job's ops run hr.lookup, then iam.grant, each after `gate`: Dagster has no durable pause,
so an op that needs approval long-polls Gatekeeper until the reviewers decide. It runs in
process (`execute_in_process`, an ephemeral instance): nothing else to start. When a reviewer
approves a step whose facts grew old (re-review), the op reads them again (`hr_facts`) and asks
again.
"""

import argparse
import json
import os
import sys

from dagster import In, Nothing, OpExecutionContext, job, op

WORKFLOW = "hr-onboarding"


def hr_facts() -> dict:
    """The step's facts, read again after a re-review: the employee record as it is now."""
    return {"employee_record": {"employee_id": 7, "name": "J. Doe"}}


def gated_step(context: OpExecutionContext, index: int, tool: str, args: dict) -> None:
    from gatekeeper_client import GatekeeperClient
    from gatekeeper_client.dagster import gate, run

    def write(approved: dict) -> None:
        print(f"RAN {tool} {json.dumps(approved, sort_keys=True)}", flush=True)

    gk = GatekeeperClient(os.environ["GATEKEEPER_URL"], os.environ["GATEKEEPER_TOKEN"])
    verdict = gate(context, gk, WORKFLOW, index, tool, args, refresh_context=hr_facts)
    if verdict.run:  # the tool with the approved args, then its outcome recorded
        run(context, gk, index, write, verdict.args)
    elif not verdict.skip:
        print(f"DENIED {tool} {verdict.reason}", flush=True)


@op
def hr_lookup(context: OpExecutionContext) -> None:
    gated_step(context, 0, "hr.lookup", {"employee_id": 7})


@op(ins={"after": In(Nothing)})
def iam_grant(context: OpExecutionContext) -> None:
    gated_step(context, 1, "iam.grant", {"user": "jdoe", "role": "admin"})


@job
def onboarding():
    iam_grant(after=hr_lookup())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--thread-id", default="onboard-dagster")
    options = parser.parse_args()
    if not os.environ.get("GATEKEEPER_URL") or not os.environ.get("GATEKEEPER_TOKEN"):
        print("set GATEKEEPER_URL and GATEKEEPER_TOKEN", file=sys.stderr)
        return 2
    from gatekeeper_client.dagster import THREAD_TAG

    result = onboarding.execute_in_process(tags={THREAD_TAG: options.thread_id})
    if not result.success:
        return 1
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
