"""The long-poll under ASGI (gatekeeper.asgi): the async view, one LISTEN per process, the bound.

The ASGI application is driven in-process, on a real event loop, against the real database;
reviewers act from threads, as another process would.
"""

import asyncio
import json
import threading
import time

import pytest
from asgiref.testing import ApplicationCommunicator
from django.db import connection

from approvals import waiters
from approvals.services.review import packet_approve
from tests.asgi import get_scope
from tests.conftest import gate_body

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def app():
    from gatekeeper.asgi import GatekeeperASGI

    return GatekeeperASGI()


@pytest.fixture
def token(api_account):
    return api_account[1]


def _approval(api, thread_id: str = "onboard-1") -> dict:
    return api.post("/gate", gate_body(execution__thread_id=thread_id)).json()["approval"]


async def _get(app, path: str, query: str = "", token: str | None = None, *, timeout=20):
    """One GET through the ASGI application: (status, headers, body)."""
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    communicator = ApplicationCommunicator(app, get_scope(path, query, headers))
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(timeout)
    body = b""
    while True:
        message = await communicator.receive_output(timeout)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer_headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    return start["status"], answer_headers, body


def _run(coroutine_function):
    """Run on a fresh event loop, closing this loop's listener and reading threads after."""

    async def main():
        try:
            return await coroutine_function()
        finally:
            await waiters.close_for_this_loop()

    return asyncio.run(main())


def _approve_in(seconds: float, approval_id: str, user) -> threading.Thread:
    def approve():
        time.sleep(seconds)
        packet_approve(packet_id=approval_id, user=user)
        connection.close()

    thread = threading.Thread(target=approve)
    thread.start()
    return thread


def _listen_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND query = 'LISTEN gatekeeper_packets'"
        )
        return cursor.fetchone()[0]


def test_the_answer_is_the_sync_endpoints_json(app, api, token):
    approval = _approval(api)
    path = f"/api/v1/approvals/{approval['id']}"
    status, headers, body = _run(lambda: _get(app, path, "wait=1", token))
    assert status == 200 and headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(body) == api.get(f"/approvals/{approval['id']}").json()
    assert headers["x-content-type-options"] == "nosniff"


def test_a_long_poll_wakes_when_the_approval_is_decided(app, api, token, alice):
    approval = _approval(api)
    approver = _approve_in(0.5, approval["id"], alice)
    started = time.monotonic()
    status, _, body = _run(
        lambda: _get(app, f"/api/v1/approvals/{approval['id']}", "wait=30", token)
    )
    approver.join()
    assert status == 200 and json.loads(body)["status"] == "approved"
    assert time.monotonic() - started < 10


def test_a_late_poll_answers_at_once(app, api, token, alice):
    approval = _approval(api)
    packet_approve(packet_id=approval["id"], user=alice)
    started = time.monotonic()
    status, _, body = _run(
        lambda: _get(app, f"/api/v1/approvals/{approval['id']}", "wait=30", token)
    )
    assert status == 200 and json.loads(body)["status"] == "approved"
    assert time.monotonic() - started < 10


def test_a_poll_naming_the_status_it_saw_waits_while_it_holds(app, api, token):
    approval = _approval(api)
    path = f"/api/v1/approvals/{approval['id']}"
    started = time.monotonic()
    status, _, body = _run(lambda: _get(app, path, "wait=1&seen=pending", token))
    assert status == 200 and json.loads(body)["status"] == "pending"
    assert time.monotonic() - started >= 1


def test_a_vote_that_leaves_the_status_unchanged_is_in_the_answer_after_the_wait(
    app, api, token, policy, alice
):
    policy("two", required_approvals=2)
    approval = _approval(api)
    voter = _approve_in(0.3, approval["id"], alice)
    path = f"/api/v1/approvals/{approval['id']}"
    status, _, body = _run(lambda: _get(app, path, "wait=2", token))
    voter.join()
    answer = json.loads(body)
    assert status == 200 and (answer["status"], answer["approvals"]) == ("pending", 1)


def test_tokens_ids_and_queries_are_judged_as_by_the_sync_endpoint(client, app, api, other_api):
    approval = _approval(api)
    path = f"/api/v1/approvals/{approval['id']}"
    token = api.headers["Authorization"].split()[1]
    other = other_api.headers["Authorization"].split()[1]
    cases = [
        (path, "wait=5", None),
        (path, "wait=5", "gk_wrong"),
        (path, "wait=5", other),
        ("/api/v1/approvals/not-a-uuid", "wait=5", token),
        (path, "wait=61", token),
        (path, "wait=5&seen=nope", token),
        (path, "wait=5&wiat=1", token),
    ]

    async def all_of_them():
        return [await _get(app, *case) for case in cases]

    answers = _run(all_of_them)
    for (case_path, query, case_token), (status, headers, body) in zip(cases, answers, strict=True):
        auth = {"Authorization": f"Bearer {case_token}"} if case_token else {}
        sync = client.get(f"{case_path}?{query}", headers=auth)
        assert (status, json.loads(body)) == (sync.status_code, sync.json()), (case_path, query)
        assert status in (400, 401, 404)
        if status == 401:
            assert headers["www-authenticate"] == sync["WWW-Authenticate"] == "Bearer"


def test_many_waiters_share_one_listen_connection_and_each_wakes_for_its_own(
    app, api, token, alice
):
    approvals = [_approval(api, f"onboard-{i}") for i in range(30)]
    decided = approvals[::3]

    async def wait_all():
        polls = [
            asyncio.create_task(_get(app, f"/api/v1/approvals/{a['id']}", "wait=8", token))
            for a in approvals
        ]
        here = waiters.for_this_loop()
        while here.listener.waiting < len(approvals):
            await asyncio.sleep(0.05)
        listening = await asyncio.to_thread(_listen_connections_closing)
        await asyncio.to_thread(_approve_all, [a["id"] for a in decided], alice)
        answers = await asyncio.gather(*polls)
        return listening, answers

    started = time.monotonic()
    listening, answers = _run(wait_all)
    assert listening == 1
    statuses = {json.loads(body)["id"]: json.loads(body)["status"] for _, _, body in answers}
    assert {i for i, s in statuses.items() if s == "approved"} == {a["id"] for a in decided}
    assert time.monotonic() - started >= 8  # the undecided ones waited out their wait


def _listen_connections_closing() -> int:
    try:
        return _listen_connections()
    finally:
        connection.close()


def _approve_all(ids, user) -> None:
    try:
        for approval_id in ids:
            packet_approve(packet_id=approval_id, user=user)
    finally:
        connection.close()


def test_past_the_bound_a_poll_is_refused_with_when_to_come_back(app, api, token, settings):
    settings.GATEKEEPER_MAX_WAITERS = 1
    approval = _approval(api)
    path = f"/api/v1/approvals/{approval['id']}"

    async def two():
        first = asyncio.create_task(_get(app, path, "wait=3", token))
        here = waiters.for_this_loop()
        while here.listener.waiting < 1:
            await asyncio.sleep(0.05)
        refused = await _get(app, path, "wait=3", token)
        return refused, await first

    (status, headers, body), (first_status, _, _) = _run(two)
    assert status == 503 and json.loads(body)["error"]["code"] == "unavailable"
    assert headers["retry-after"] in ("2", "3") and first_status == 200


def test_a_client_that_goes_away_gives_its_seat_back(app, api, token):
    approval = _approval(api)

    async def leave():
        scope_path = f"/api/v1/approvals/{approval['id']}"
        communicator = ApplicationCommunicator(
            app,
            {
                "type": "http",
                "method": "GET",
                "path": scope_path,
                "raw_path": scope_path.encode(),
                "query_string": b"wait=30",
                "root_path": "",
                "headers": [
                    (b"host", b"testserver"),
                    (b"authorization", f"Bearer {token}".encode()),
                ],
            },
        )
        await communicator.send_input({"type": "http.request", "body": b""})
        here = waiters.for_this_loop()
        while here.listener.waiting < 1:
            await asyncio.sleep(0.05)
        await communicator.send_input({"type": "http.disconnect"})
        await communicator.wait(5)
        return here.listener.waiting, len(here.seats)

    assert _run(leave) == (0, 0)


def test_a_lost_listen_connection_is_made_again_and_no_change_is_missed(app, api, token, alice):
    approval = _approval(api)

    async def cut_and_decide():
        poll = asyncio.create_task(
            _get(app, f"/api/v1/approvals/{approval['id']}", "wait=30", token)
        )
        here = waiters.for_this_loop()
        while here.listener.waiting < 1:
            await asyncio.sleep(0.05)
        # The decision commits while no connection listens: its NOTIFY reaches nobody.
        await asyncio.to_thread(_cut_listen_and_approve, approval["id"], alice)
        return await poll

    status, _, body = _run(cut_and_decide)
    assert status == 200 and json.loads(body)["status"] == "approved"


def _cut_listen_and_approve(approval_id, user) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query = 'LISTEN gatekeeper_packets'"
            )
        packet_approve(packet_id=approval_id, user=user)
    finally:
        connection.close()


def test_other_requests_go_to_the_wsgi_handler(app, api, token):
    async def gate_page():
        return await _get(app, "/accounts/login/")

    status, headers, _ = _run(gate_page)
    assert status == 200 and headers["content-type"].startswith("text/html")


def test_the_bound_is_the_descriptor_limit_raised_to_its_hard_limit(settings):
    import resource

    settings.GATEKEEPER_MAX_WAITERS = 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    try:
        capacity = waiters.waiter_capacity()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
        memory_bound = waiters._memory_budget() // waiters.WAITER_BYTES
        assert capacity == min(hard - waiters.RESERVED_DESCRIPTORS, memory_bound)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    settings.GATEKEEPER_MAX_WAITERS = 3
    assert waiters.waiter_capacity() == 3


def test_answers_are_kept_only_while_listening_and_until_their_packet_changes():
    answers = waiters.Answers(size=2)
    pending = {"status": "pending", "approvals": 0}
    answers.put("p1", 1, pending, answers.generation)
    assert answers.get("p1", 1) is None  # not listening yet
    answers.open(True)
    answers.put("p1", 1, pending, answers.generation)
    assert answers.get("p1", 1) == pending and answers.get("p1", 2) is None
    answers.forget("p1")
    assert answers.get("p1", 1) is None


def test_a_read_begun_before_a_change_is_not_kept_nor_a_closed_approval():
    answers = waiters.Answers(size=2)
    answers.open(True)
    before = answers.generation
    answers.forget("p2")  # a NOTIFY arrives while the read is under way
    answers.put("p1", 1, {"status": "pending"}, before)
    answers.put("p3", 1, {"status": "approved"}, answers.generation)
    assert answers.get("p1", 1) is None and answers.get("p3", 1) is None


def test_answers_are_dropped_when_listening_stops_and_bounded_in_number():
    answers = waiters.Answers(size=2)
    answers.open(True)
    for payload in ("p1", "p2", "p3"):
        answers.put(payload, 1, {"status": "pending"}, answers.generation)
    assert [answers.get(p, 1) is not None for p in ("p1", "p2", "p3")] == [False, True, True]
    answers.open(False)
    assert answers.get("p3", 1) is None


def test_a_re_poll_right_after_a_checked_token_reads_nothing_and_a_revoked_token_soon_fails(
    app, api, api_account, monkeypatch
):
    account, token = api_account
    monkeypatch.setattr(waiters, "TOKEN_SECONDS", 1.0)
    approval = _approval(api)
    path = f"/api/v1/approvals/{approval['id']}"
    # Answered at once: the status is not the one named, so nothing waits.
    query = "wait=5&seen=approved"

    async def scenario():
        first = await _get(app, path, query, token)  # reads the token and the packet
        await asyncio.get_running_loop().run_in_executor(None, _revoke, account.id)
        kept = await _get(app, path, query, token)  # from memory: no read saw the revocation
        await asyncio.sleep(1.1)
        later = await _get(app, path, query, token)
        return first, kept, later

    first, kept, later = _run(scenario)
    assert first[0] == 200 and kept[0] == 200 and json.loads(kept[2]) == json.loads(first[2])
    assert later[0] == 401


def _revoke(account_id: int) -> None:
    from approvals.models import ServiceAccount

    ServiceAccount.objects.filter(id=account_id).update(is_active=False)
    connection.close()
