"""`pip install ./client` alone: an agent's environment gets `gatekeeper_client`, no Django.

`agent_python` (conftest) is such an environment: client/ copied out of the repository and
installed into an empty virtualenv of Python 3.10 when this machine has one.
"""

import json
import subprocess
import sys

from approvals.models import GateCheck
from tests.client.conftest import run_as_agent


def test_the_client_installs_alone_with_nothing_else(agent_python):
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", agent_python, "list", "--format", "json"]
        + ["--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [package["name"] for package in json.loads(listed.stdout)] == ["gatekeeper-client"]


def test_it_imports_where_django_is_not_installed(agent_python):
    out = run_as_agent(
        agent_python,
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('django') is None, 'django is installed'\n"
        "import gatekeeper_client\n"
        "assert gatekeeper_client.__file__.startswith(sys.prefix), gatekeeper_client.__file__\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('django', 'httpx')]\n"
        "print(gatekeeper_client.GatekeeperClient('http://h', 't'))",
    )
    assert out == "GatekeeperClient('http://h')"


def test_the_installed_client_gates_a_step_on_the_server(agent_python, live_server, gk_account):
    out = run_as_agent(
        agent_python,
        "import os\n"
        "from gatekeeper_client import GatekeeperClient\n"
        "gk = GatekeeperClient(os.environ['GATEKEEPER_URL'], os.environ['GATEKEEPER_TOKEN'])\n"
        "decision = gk.check('onboard-9', 'hr-onboarding', 0, 'lookup', 'hr.read', {'id': 7})\n"
        "print(decision.decision, decision.check_id)",
        GATEKEEPER_URL=live_server.url,
        GATEKEEPER_TOKEN=gk_account[1],
    )
    decision, check_id = out.split()
    assert decision == "require_approval"
    assert str(GateCheck.objects.get().id) == check_id


def test_the_async_client_names_the_extra_it_needs(agent_python):
    out = run_as_agent(
        agent_python,
        "try:\n"
        "    from gatekeeper_client import AsyncGatekeeperClient\n"
        "except ImportError as error:\n"
        "    print(error)",
    )
    assert out == 'AsyncGatekeeperClient needs httpx: pip install "gatekeeper-client[async]"'
