#!/usr/bin/env python3
"""Gatekeeper's command line. Any python3 will do: it installs .venv on first use."""

import os
import sys


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from gatekeeper.bootstrap import main as bootstrap

    bootstrap(sys.argv)
    from gatekeeper.startup import start

    start(create_local_env=True)  # a fresh clone becomes a development machine here
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
