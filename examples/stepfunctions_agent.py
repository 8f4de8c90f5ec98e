"""The onboarding workflow on AWS Step Functions, each tool behind a Gatekeeper gate.

    GATEKEEPER_URL=http://127.0.0.1:8000 GATEKEEPER_TOKEN=... \
        python examples/stepfunctions_agent.py --thread-id onboard-1

The state machine runs hr.lookup, then iam.grant, each after a gate state that sleeps inside
Step Functions on a task token (no thread waits) and before a state that records its outcome.
Offline it runs on moto's Step Functions (a local server, states executed for real).
Decisions come back through `gatekeeper-relay` when GATEKEEPER_WEBHOOK_SECRET is set (point
the account's callback at http://127.0.0.1:$GATEKEEPER_RELAY_PORT/); otherwise this script
long-polls them. When a reviewer approves a grant whose facts grew old (re-review), the
execution reads them again (`hr.facts`) and asks again.
"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time

WORKFLOW = "hr-onboarding"
ROLE = "arn:aws:iam::123456789012:role/gatekeeper-onboarding"
INPUT = {"lookup": {"employee_id": 7}, "grant": {"user": "jdoe", "role": "admin"}}


def definition(gates: str, tools: str) -> str:
    """hr.lookup then iam.grant, each behind a gate and followed by the state that records its
    outcome; a refused grant ends in `Denied`, a re-reviewed one reads its facts again
    (`ReadFacts`) and asks again (`RefreshGrant`)."""
    from gatekeeper_client.stepfunctions import gate_state, tool_state, tool_states

    def grant_gate(**refresh):
        state = gate_state(
            gates,
            workflow=WORKFLOW,
            step_index=1,
            tool="iam.grant",
            args_path="$.grant",
            next_state="Grant",
            **refresh,
        )
        state["Catch"] = [
            {"ErrorEquals": ["Gatekeeper.Blocked"], "ResultPath": "$.denied", "Next": "Denied"},
            {"ErrorEquals": ["Gatekeeper.ReReview"], "ResultPath": "$.stale", "Next": "ReadFacts"},
        ]
        return state

    states = {
        "GateLookup": gate_state(
            gates,
            workflow=WORKFLOW,
            step_index=0,
            tool="hr.lookup",
            args_path="$.lookup",
            next_state="Lookup",
        ),
        **tool_states(
            "Lookup",
            tools,
            gates,
            tool="hr.lookup",
            step_index=0,
            result_path="$.looked_up",
            next_state="GateGrant",
        ),
        "GateGrant": grant_gate(),
        "ReadFacts": tool_state(
            tools,
            tool="hr.facts",
            args_path="$.lookup",
            result_path="$.facts",
            next_state="RefreshGrant",
        ),
        "RefreshGrant": grant_gate(refresh=True, context_path="$.facts"),
        **tool_states(
            "Grant",
            tools,
            gates,
            tool="iam.grant",
            step_index=1,
            result_path="$.granted",
            next_state="Done",
        ),
        "Denied": {"Type": "Succeed"},
        "Done": {"Type": "Succeed"},
    }
    return json.dumps({"StartAt": "GateLookup", "States": states})


class Moto:
    """moto's Step Functions and SQS on a free local port, executing state machines for real."""

    def __init__(self):
        import boto3
        import requests
        from moto.server import ThreadedMotoServer

        for name, value in (
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ):
            os.environ.setdefault(name, value)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        os.environ["MOTO_PORT"] = str(port)  # where its state machines call SQS (on localhost)
        requests.post(
            f"{self.url}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
            timeout=10,
        )
        self.sfn = boto3.client("stepfunctions", endpoint_url=self.url)
        self.sqs = boto3.client("sqs", endpoint_url=self.url)
        self.gates = self.sqs.create_queue(QueueName="gates")["QueueUrl"]
        self.tools = self.sqs.create_queue(QueueName="tools")["QueueUrl"]
        self.machine = self.sfn.create_state_machine(
            name="onboarding", definition=definition(self.gates, self.tools), roleArn=ROLE
        )["stateMachineArn"]

    def start(self, thread_id: str) -> str:
        return self.sfn.start_execution(
            stateMachineArn=self.machine, name=thread_id, input=json.dumps(INPUT)
        )["executionArn"]

    def status(self, execution: str) -> dict:
        return self.sfn.describe_execution(executionArn=execution)

    def stop(self):
        self.server.stop()


def hr_facts(employee_id: int) -> dict:
    """The grant's facts, read again after a re-review: the employee record as it is now."""
    return {"employee_record": {"employee_id": employee_id, "name": "J. Doe"}}


def printing_tools() -> dict:
    def tool(name):
        def run(**args):
            print(f"RAN {name} {json.dumps(args, sort_keys=True)}", flush=True)
            return {"ok": True}

        return run

    return {"hr.lookup": tool("hr.lookup"), "iam.grant": tool("iam.grant"), "hr.facts": hr_facts}


class Reasons:
    """The handler that signals Step Functions, keeping each refusal's reason: moto (5.2)
    drops the cause of `send_task_failure`, which AWS hands to the `Catch` as `Cause`."""

    def __init__(self, sfn):
        from gatekeeper_client.stepfunctions import StepFunctionsHandler

        self.handler, self.refused = StepFunctionsHandler(sfn), []

    def signal(self, target, approval):
        from gatekeeper_client.verdicts import verdict_of

        verdict = verdict_of(approval)
        self.handler.signal(target, approval)
        if not (verdict.run or verdict.skip or verdict.stale):
            self.refused.append(verdict.reason)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--thread-id", default=f"onboard-{int(time.time())}")
    options = parser.parse_args()
    url, token = os.environ.get("GATEKEEPER_URL"), os.environ.get("GATEKEEPER_TOKEN")
    if not url or not token:
        print("set GATEKEEPER_URL and GATEKEEPER_TOKEN", file=sys.stderr)
        return 2
    from gatekeeper_client import GatekeeperClient
    from gatekeeper_client.relay import Relay, RelayStore, long_poll, server
    from gatekeeper_client.stepfunctions import GateWorker, ToolWorker

    gk = GatekeeperClient(url, token)
    moto = Moto()
    workdir = tempfile.TemporaryDirectory()
    store = RelayStore(os.path.join(workdir.name, "relay.sqlite"))
    stop, handler = threading.Event(), Reasons(moto.sfn)
    secret = os.environ.get("GATEKEEPER_WEBHOOK_SECRET")
    if secret:
        relay = Relay(secret, store, {"stepfunctions": handler})
        httpd = server(relay, port=int(os.environ.get("GATEKEEPER_RELAY_PORT", "0")))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        print(f"relay on http://127.0.0.1:{httpd.server_port}/", file=sys.stderr)
    else:
        threading.Thread(
            target=long_poll, args=(gk, store, "stepfunctions", handler, stop), daemon=True
        ).start()
    gates = GateWorker(gk, moto.sfn, moto.sqs, moto.gates, store)
    tools = ToolWorker(moto.sfn, moto.sqs, moto.tools, printing_tools())
    try:
        execution = moto.start(options.thread_id)
        while (status := moto.status(execution))["status"] == "RUNNING":
            gates.poll(wait=0)
            tools.poll(wait=0)
            time.sleep(0.2)
        output = json.loads(status.get("output") or "{}")
        if "denied" in output:
            cause = output["denied"].get("Cause") or handler.refused[-1]
            print(f"DENIED iam.grant {cause}")
        if status["status"] != "SUCCEEDED":
            print(f"execution {status['status']}", file=sys.stderr)
            return 1
        print("DONE")
        return 0
    finally:
        stop.set()
        moto.stop()
        workdir.cleanup()


if __name__ == "__main__":
    sys.exit(main())
