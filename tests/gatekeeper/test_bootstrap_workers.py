"""`manage.py test` spreads the suite over pytest-xdist workers (gatekeeper.bootstrap.
xdist_workers), and each worker's real-worker tests get a Redis database of their own."""

import os

import pytest

from gatekeeper.bootstrap import MAX_TEST_WORKERS, TEST_WORKERS, xdist_workers
from tests.background.conftest import worker_redis_url

CORES = min(len(os.sched_getaffinity(0)), MAX_TEST_WORKERS)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["-q", "-p", "no:cacheprovider", "--durations=60"],
        ["tests/web"],
        ["tests/web/test_queue.py", "tests/api/test_api_gate.py"],
        ["-k", "queue", "tests"],
    ],
)
def test_the_suite_a_folder_or_several_files_get_one_worker_per_core(args):
    assert xdist_workers(args, {}) == CORES


@pytest.mark.parametrize(
    "args",
    [
        ["tests/web/test_queue.py"],
        ["tests/web/test_queue.py::test_x", "tests/web/test_queue.py::test_y"],
        ["-x", "tests/api/test_api_gate.py"],
    ],
)
def test_one_file_runs_in_this_process(args):
    assert xdist_workers(args, {}) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["-n", "3"],
        ["-n0"],
        ["--numprocesses=4"],
        ["--dist", "loadfile"],
        ["-p", "no:xdist"],
        ["--pdb"],
        ["-s", "tests"],
        ["--collect-only"],
    ],
)
def test_options_that_choose_workers_or_need_one_process_are_left_to_pytest(args):
    assert xdist_workers(args, {}) == 1


def test_the_environment_chooses_when_it_says():
    assert xdist_workers(["tests/web/test_queue.py"], {TEST_WORKERS: "3"}) == 3
    assert xdist_workers([], {TEST_WORKERS: "0"}) == 0


@pytest.mark.parametrize(
    ("worker", "url"),
    [
        (None, "redis://127.0.0.1:6379/7"),
        ("master", "redis://127.0.0.1:6379/7"),
        ("gw0", "redis://127.0.0.1:6379/7"),
        ("gw1", "redis://127.0.0.1:6379/8"),
        ("gw3", "redis://127.0.0.1:6379/10"),
    ],
)
def test_each_xdist_worker_has_the_redis_database_after_the_previous_ones(worker, url):
    assert worker_redis_url("redis://127.0.0.1:6379/7", worker) == url


def test_a_url_without_a_database_counts_from_0():
    assert (
        worker_redis_url("redis://:pw@redis.example:6380", "gw2")
        == "redis://:pw@redis.example:6380/2"
    )
