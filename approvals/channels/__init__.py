"""Ways to reach a person or an orchestrator. A new one is a module here that registers a
Channel (see base.py), imported in ApprovalsConfig.ready with the others."""
