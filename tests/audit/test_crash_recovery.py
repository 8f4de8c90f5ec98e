"""A database crash takes back nothing an agent was told.

Agents gate steps through a real gunicorn node while the private server crashes (`pg_ctl stop
-m immediate`: every PostgreSQL process quits at once, what is only in its memory is gone).
After the restart, every check whose `allow` reached its caller is there with its gate.checked
event, and the decision record verifies.
"""

import threading

from tests.audit.conftest import allowed_body

AGENTS = 6
HEARD_BEFORE_THE_CRASH = 60


def _agent(gk, name: str, heard: list, enough: threading.Event, crashed: threading.Event):
    step = 0
    while not crashed.is_set():
        try:
            status, answer = gk.node.api("POST", "/api/v1/gate", gk.token, allowed_body(name, step))
        except (OSError, ValueError):  # the node cut off, or an error page mid-crash
            continue
        if status == 200 and answer["decision"] == "allow":
            heard.append(answer["check_id"])
            if len(heard) >= HEARD_BEFORE_THE_CRASH:
                enough.set()
        step += 1


def test_every_allow_heard_survives_a_crash(gatekeeper_on_slow_wal):
    gk = gatekeeper_on_slow_wal
    heard: list[str] = []
    enough, crashed = threading.Event(), threading.Event()
    agents = [
        threading.Thread(target=_agent, args=(gk, f"crash-{i}", heard, enough, crashed))
        for i in range(AGENTS)
    ]
    for agent in agents:
        agent.start()
    try:
        assert enough.wait(timeout=60), f"only {len(heard)} answers heard"
        gk.server.stop("immediate")  # with checks in flight
    finally:
        crashed.set()
        for agent in agents:
            agent.join(timeout=60)
    heard_at_the_crash = list(heard)
    gk.server.start()

    with gk.connect() as db:
        recorded = {
            str(check_id)
            for (check_id,) in db.execute(
                "SELECT c.id FROM approvals_gatecheck AS c"
                " JOIN audit_auditevent AS e"
                "   ON e.kind = 'gate.checked' AND e.data ->> 'check_id' = c.id::text"
                " WHERE c.id = ANY(%s::uuid[]) AND c.decision = 'allow'",
                [heard_at_the_crash],
            )
        }
    lost = sorted(set(heard_at_the_crash) - recorded)
    assert lost == [], f"{len(lost)} of {len(heard_at_the_crash)} allows heard were lost: {lost}"
    verified = gk.manage("verify_audit")
    assert verified.returncode == 0, verified.stdout + verified.stderr
