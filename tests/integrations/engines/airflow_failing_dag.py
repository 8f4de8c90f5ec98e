"""An Airflow DAG whose tool fails, for test_airflow.py (run by .venv-airflow's python): it gates
hr.lookup (allowed by policy), its tool task raises, and an `OutcomeOperator` records it.

    GATEKEEPER_URL=... GATEKEEPER_TOKEN=... python airflow_failing_dag.py THREAD_ID

Prints the DAG run's state.
"""

import os
import shutil
import sys
import tempfile

HERE = os.path.abspath(__file__)
if __name__ == "__main__":
    # Airflow reads its configuration as it is imported: a home of its own, set first.
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="gatekeeper-airflow-failing-")
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = (
        f"sqlite:///{os.environ['AIRFLOW_HOME']}/airflow.db"
    )
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = HERE
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

from airflow.sdk import DAG, task  # noqa: E402
from gatekeeper_client.airflow import GateOperator, OutcomeOperator  # noqa: E402

THREAD = "{{ dag_run.conf['thread_id'] }}"

with DAG("gatekeeper_failing_tool", schedule=None, catchup=False) as dag:

    @task(task_id="lookup")
    def lookup(verdict: dict) -> None:
        raise RuntimeError("the directory is down")

    gate = GateOperator(
        task_id="gate_lookup",
        workflow="hr-onboarding",
        step_index=0,
        tool="hr.lookup",
        args={"employee_id": 7},
        thread_id=THREAD,
    )
    lookup(gate.output) >> OutcomeOperator(
        task_id="lookup_outcome",
        step_index=0,
        gate_task_id="gate_lookup",
        tool_task_id="lookup",
        thread_id=THREAD,
    )


if __name__ == "__main__":
    from airflow.utils.db import initdb

    try:
        initdb()
        print(dag.test(run_conf={"thread_id": sys.argv[1]}).state, flush=True)
    finally:
        shutil.rmtree(os.environ["AIRFLOW_HOME"], ignore_errors=True)
