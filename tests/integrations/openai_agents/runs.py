"""Running a gated agent of the Agents SDK to its end, as its tests do."""

import asyncio

from agents import Runner


async def run_to_end(agent, approvals, thread_id: str, review=None):
    """Run `agent` to its end, answering its interruptions from Gatekeeper's decisions;
    `review()` runs (in a thread: it may block) each time the run is interrupted."""
    result = await Runner.run(agent, "onboard jdoe", context={"thread_id": thread_id})
    while result.interruptions:
        state = result.to_state()
        if review is not None:
            await asyncio.to_thread(review)
        assert await approvals.resolve(state, wait_timeout=90) == []
        result = await Runner.run(agent, state)
    return result


def outputs(result) -> list:
    """What the run's tool calls answered the model, in order."""
    return [item.output for item in result.new_items if hasattr(item, "output")]
