"""What each outcome means for the step, said one way: in the result of an action, in the
packet page's preview of what approving would do, and in the record's summaries."""

STEP_RUNS = "the step may run"
STEP_BLOCKED = "the step is blocked"
STEP_SKIPPED = "the write happened, so the step is skipped"
WRITE_MAY_HAVE_HAPPENED = "the write may already have happened"
AGENT_MUST_REFRESH = "the agent must refresh it"
DEADLINE_PASSED = "the decision deadline passed"
