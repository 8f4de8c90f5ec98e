"""The gateway: an MCP server whose every tool call is a Gatekeeper gate check.

Tools, resources and prompts of the upstream servers are served as their own (a tool's name
prefixed by its upstream's when the config asks). A `tools/call` is gated: allow forwards it;
block, rejection, expiry and termination answer an error result the model can act on;
require_approval waits, sending progress notifications, and forwards the approved args. After
forwarding, the outcome of the write is recorded: landed, failed, or indeterminate.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from ..aio import AsyncGatekeeperClient
from ..errors import GatekeeperError
from ..models import Approval, DryRunResult
from ..steps import why_blocked
from .config import Config, ToolHints
from .upstream import UpstreamBroken, UpstreamLink

log = logging.getLogger("gatekeeper_client.mcp")

WAITING = ("pending", "reconciling")
DRY_RUN_BATCH = 100  # the server's bound on checks per dry run
DRY_RUN_SECONDS = 5  # a listing waits no longer than this for Gatekeeper's notes


@dataclass(frozen=True)
class Route:
    """Where a served tool (or prompt) lives: its upstream and its name there."""

    link: UpstreamLink
    name: str
    tool: types.Tool | None = None


class Threads:
    """Which execution a call belongs to, and its step index (calls counted per execution)."""

    def __init__(self, fixed: str | None):
        self.fixed = fixed
        # stdio serves one client per process: the process is the session.
        self.process = f"mcp-{uuid.uuid4().hex}"
        self._counters: dict[str, itertools.count] = defaultdict(itertools.count)

    def thread_for(self, ctx: ServerRequestContext) -> str:
        if self.fixed is not None:
            return self.fixed
        request = ctx.request
        if request is None:
            return self.process
        session = getattr(request, "headers", {}).get("mcp-session-id")
        if session:
            return "mcp-" + "".join(c for c in session if c.isalnum() or c in "._:-")[:150]
        return f"mcp-{uuid.uuid4().hex}"  # a sessionless HTTP call is an execution of its own

    def next_index(self, thread_id: str) -> int:
        # No await between reading and bumping: concurrent calls get distinct indexes.
        return next(self._counters[thread_id])


def text_result(text: str, *, error: bool) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=error)


def labels_for(tool: types.Tool | None, hints: ToolHints) -> tuple[list[str], float | None]:
    """Risk labels (from the tool's annotations, overridden by the config) and score."""
    notes = tool.annotations if tool is not None and tool.annotations else None
    read_only = hints.read_only
    if read_only is None:
        read_only = bool(notes and notes.read_only_hint)
    destructive = hints.destructive
    if destructive is None:
        # The spec's default for a tool that is not read-only is destructive.
        destructive = not read_only and (notes is None or notes.destructive_hint is not False)
    labels = ["read_only"] if read_only else []
    if destructive and not read_only:
        labels.append("destructive")
    if notes and notes.open_world_hint:
        labels.append("open_world")
    labels.extend(label for label in hints.labels if label not in labels)
    return labels, hints.risk


class Gateway:
    """Serves the upstreams' tools through Gatekeeper; one instance serves any number of clients."""

    def __init__(self, config: Config, links: list[UpstreamLink], gk: AsyncGatekeeperClient):
        self.config = config
        self.links = links
        self.gk = gk
        self.threads = Threads(None if config.per_session else config.thread_id)
        self.tools: dict[str, Route] = {}
        self.prompts: dict[str, Route] = {}
        self.resources: dict[str, UpstreamLink] = {}

    # ---- catalogue -------------------------------------------------------------------------

    async def load_catalogue(self) -> None:
        """Ask every upstream for its tools, prompts and resources; names must not clash."""
        tools, prompts = {}, {}
        for link in self.links:
            for tool in await link.everything("list_tools", "tools"):
                name = link.upstream.exposed(tool.name)
                if name in tools:
                    raise ValueError(f"tool {name!r} is offered by two upstreams: set prefix")
                tools[name] = Route(link, tool.name, tool)
            for prompt in await link.everything("list_prompts", "prompts"):
                prompts[link.upstream.exposed(prompt.name)] = Route(link, prompt.name)
        self.tools, self.prompts = tools, prompts

    def risk_for(self, name: str, route: Route) -> dict[str, Any]:
        """The gate check's `risk` for a call of this tool: labels from its hints, score."""
        labels, score = labels_for(route.tool, self.config.tools.get(name, ToolHints()))
        risk: dict[str, Any] = {"labels": labels}
        if score is not None:
            risk["score"] = score
        return risk

    async def foreseen(self) -> dict[str, DryRunResult]:
        """What the gate would answer for a call of each tool (no args), by served name.

        A dry run of the policies, one request per listing; when it fails or is slow the
        listing goes on without it (empty), as tools/list must not depend on Gatekeeper.
        """
        names = list(self.tools)
        answers: dict[str, DryRunResult] = {}
        with anyio.move_on_after(DRY_RUN_SECONDS):
            try:
                for start in range(0, len(names), DRY_RUN_BATCH):
                    batch = names[start : start + DRY_RUN_BATCH]
                    actions = [
                        {"tool": name, "risk": self.risk_for(name, self.tools[name])}
                        for name in batch
                    ]
                    results = await self.gk.dry_run(
                        self.config.workflow, actions, owner=self.config.owner
                    )
                    answers.update(zip(batch, results, strict=True))
            except GatekeeperError as error:
                log.warning("tools/list without Gatekeeper's notes: its dry run failed: %s", error)
                return {}
            return answers
        log.warning("tools/list without Gatekeeper's notes: no dry run in %s s", DRY_RUN_SECONDS)
        return {}

    def served_tool(self, name: str, route: Route, foreseen: DryRunResult | None) -> types.Tool:
        tool = route.tool.model_copy(update={"name": name})
        note = gate_note(foreseen)
        if note:
            tool.description = f"{tool.description}\n\n{note}" if tool.description else note
        return tool

    # ---- MCP handlers ----------------------------------------------------------------------

    def server(self) -> Server:
        return Server(
            "gatekeeper-mcp",
            version="1",
            instructions=(
                "Tools served through Gatekeeper: each call is checked against policy and may "
                "wait for a human's approval. A refused call says why; do not retry it unchanged."
            ),
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
            on_list_prompts=self.list_prompts,
            on_get_prompt=self.get_prompt,
            on_list_resources=self.list_resources,
            on_list_resource_templates=self.list_resource_templates,
            on_read_resource=self.read_resource,
        )

    async def list_tools(self, ctx, params) -> types.ListToolsResult:
        foreseen = await self.foreseen()
        return types.ListToolsResult(
            tools=[
                self.served_tool(name, route, foreseen.get(name))
                for name, route in self.tools.items()
            ]
        )

    async def list_prompts(self, ctx, params) -> types.ListPromptsResult:
        prompts = []
        for link in self.links:
            for prompt in await link.everything("list_prompts", "prompts"):
                name = link.upstream.exposed(prompt.name)
                self.prompts[name] = Route(link, prompt.name)
                prompts.append(prompt.model_copy(update={"name": name}))
        return types.ListPromptsResult(prompts=prompts)

    async def get_prompt(self, ctx, params) -> types.GetPromptResult:
        route = self.prompts.get(params.name)
        if route is None:
            raise MCPError(types.INVALID_PARAMS, f"no prompt named {params.name!r}")
        return await route.link.request("get_prompt", route.name, params.arguments)

    async def list_resources(self, ctx, params) -> types.ListResourcesResult:
        resources = []
        for link in self.links:
            for resource in await link.everything("list_resources", "resources"):
                self.resources[str(resource.uri)] = link
                resources.append(resource)
        return types.ListResourcesResult(resources=resources)

    async def list_resource_templates(self, ctx, params) -> types.ListResourceTemplatesResult:
        templates = []
        for link in self.links:
            templates.extend(await link.everything("list_resource_templates", "resource_templates"))
        return types.ListResourceTemplatesResult(resource_templates=templates)

    async def read_resource(self, ctx, params) -> types.ReadResourceResult:
        uri = str(params.uri)
        known = self.resources.get(uri)
        error: MCPError | None = None
        # A URI not listed (a template's) is asked of each upstream in turn.
        for link in [known] if known else self.links:
            try:
                return await link.request("read_resource", uri)
            except MCPError as refused:
                error = refused
        raise error or MCPError(types.INVALID_PARAMS, f"no resource {uri!r}")

    async def call_tool(self, ctx, params) -> types.CallToolResult:
        name, args = params.name, dict(params.arguments or {})
        route = self.tools.get(name)
        if route is None:
            return text_result(f"There is no tool named {name!r}.", error=True)
        thread_id = self.threads.thread_for(ctx)
        index = self.threads.next_index(thread_id)
        try:
            decision = await self.gk.check(
                thread_id,
                self.config.workflow,
                index,
                name,
                name,
                args,
                risk=self.risk_for(name, route),
                owner=self.config.owner,
            )
        except GatekeeperError as error:
            return text_result(
                f"{name} was not called: Gatekeeper could not be asked ({error}). "
                "Nothing ran; try again later or tell the user.",
                error=True,
            )
        if decision.allowed:
            return await self.forward(route, name, args, thread_id, index)
        if decision.blocked or decision.approval is None:
            return refused(name, f"blocked by policy: {decision.reason}")
        try:
            approval = await self.decided(ctx, name, decision.approval)
        except GatekeeperError as error:
            return text_result(
                f"{name} was not called: waiting for its approval failed ({error}).", error=True
            )
        if approval.status == "re_review":
            return text_result(
                f"{name} was not called: the context it was approved on went stale before a "
                "reviewer decided (re-review). Read what you need again and call it anew.",
                error=True,
            )
        if approval.decision == "allow":
            edited = " (with args a reviewer edited)" if approval.edited else ""
            log.info("%s step %s: %s approved%s", thread_id, index, name, edited)
            return await self.forward(route, name, dict(approval.action.args), thread_id, index)
        if approval.decision == "skip":
            return text_result(
                f"{name} was not called again: a reviewer found its write had already "
                "happened. Carry on as if it succeeded.",
                error=False,
            )
        return refused(name, why_blocked(approval))

    async def decided(self, ctx, name: str, approval: Approval) -> Approval:
        """Wait for the reviewers, telling the client how long it has waited (progress)."""
        interval = self.config.progress_interval
        started, beat = time.monotonic(), 0
        while True:
            if approval.status in WAITING:
                await self.progress(ctx, beat, name, approval, time.monotonic() - started)
                beat += 1
                approval = await self.gk.wait(
                    approval.id,
                    timeout=interval,
                    poll=max(1, min(60, math.ceil(interval))),
                    while_in=(approval.status,),
                )
            elif approval.status == "superseded" and approval.superseded_by:
                approval = await self.gk.approval(approval.superseded_by)
            else:
                return approval

    async def progress(self, ctx, beat: int, name: str, approval: Approval, waited: float):
        message = (
            f"{name} is waiting for a human's approval ({approval.status}, {waited:.0f} s): "
            f"{approval.url}"
        )
        try:
            await ctx.session.report_progress(beat, None, message)
        except Exception as error:  # noqa: BLE001 - a client gone deaf must not fail the call
            log.debug("progress for %s not sent: %s", name, error)

    async def forward(
        self, route: Route, name: str, args: dict, thread_id: str, index: int
    ) -> types.CallToolResult:
        """Call the upstream tool, then record what happened to its write."""
        try:
            result = await route.link.request("call_tool", route.name, args)
        except UpstreamBroken as error:
            await self.outcome(thread_id, index, "indeterminate", {"error": str(error)})
            return text_result(
                f"{name} may or may not have taken effect: the connection to its server broke "
                "before it answered. Do not call it again; Gatekeeper will ask a human to "
                "find out whether it happened.",
                error=True,
            )
        except MCPError as error:
            await self.outcome(thread_id, index, "failed", {"error": error.message})
            return text_result(f"{name} failed: {error.message}", error=True)
        if result.is_error:
            await self.outcome(thread_id, index, "failed", {"error": summary(result)})
        else:
            await self.outcome(thread_id, index, "landed", None)
        return result

    async def outcome(self, thread_id: str, index: int, side_effect: str, detail) -> None:
        try:
            await self.gk.record_outcome(thread_id, index, side_effect, detail)
        except GatekeeperError as error:
            # The tool has run: its answer stands; Gatekeeper shows a no_outcome gap.
            log.warning(
                "outcome %s of %s step %s not recorded: %s", side_effect, thread_id, index, error
            )


def gate_note(foreseen: DryRunResult | None) -> str:
    """The sentence a tool's description ends with, from the dry run; none when unknown."""
    if foreseen is None or foreseen.decision == "allow":
        return ""
    which = f"policy {foreseen.policy.name}" if foreseen.policy else "no policy allows it"
    if foreseen.decision == "block":
        return f"Gatekeeper refuses calls to this tool ({which})."
    return f"Needs a human's approval ({which}) before it runs; the call waits for their decision."


def refused(name: str, why: str) -> types.CallToolResult:
    return text_result(
        f"{name} was not called: Gatekeeper refused it ({why}). Do not retry it unchanged; "
        "take another way or tell the user.",
        error=True,
    )


def summary(result: types.CallToolResult) -> str:
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    return (" ".join(texts) or json.dumps(result.structured_content, default=str))[:500]


async def serve_links(links: list[UpstreamLink], task_group: anyio.abc.TaskGroup) -> None:
    """Start every upstream link in `task_group`; returns once each has connected."""
    for link in links:
        await task_group.start(link.run)
