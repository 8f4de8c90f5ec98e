"""Tools that record the args they ran with: no Django here, so a framework's own environment
(CrewAI's) can import them too."""


class RecordingTools:
    """hr_lookup and iam_grant made into a framework's tools by `decorate` (LangChain's `tool`,
    the Agents SDK's `function_tool`, ...), recording the args they ran with; `grant_error` is
    raised once by the grant."""

    def __init__(self, decorate, *, lookup_answer: str, grant_error=None):
        self.calls = []
        self.grant_error = grant_error

        def hr_lookup(employee_id: int) -> str:
            """Look an employee up."""
            self.calls.append(("hr.lookup", {"employee_id": employee_id}))
            return lookup_answer

        def iam_grant(user: str, role: str) -> str:
            """Grant a role."""
            self.calls.append(("iam.grant", {"user": user, "role": role}))
            if self.grant_error is not None:
                error, self.grant_error = self.grant_error, None
                raise error
            return "granted"

        self.tools = [decorate(hr_lookup), decorate(iam_grant)]
