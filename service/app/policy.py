"""Use case: apply a new SLA policy version to the open cases, each case its own append (issue 12, item 5)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Sequence

from service.app.commands import CommandStore, Submission, run_command
from service.domain.commands import CommandRules, CorrectDeadlines
from service.domain.events import DeadlinesCorrected
from service.domain.policy_change import PolicyChange
from service.domain.sla import SlaPolicy
from service.domain.workflow import Actor

SYSTEM = Actor(
    "sla-policy", "system"
)  # names the command; the event itself records no actor: no person caused it


async def correct_case(
    case_id: str, store: CommandStore, policy: SlaPolicy, from_version: str | None
) -> DeadlinesCorrected | None:
    """Append the case's correction, decided on its latest version (a lost race decides again); None: no change."""
    correct = Submission(CorrectDeadlines(policy, from_version), SYSTEM, case_id, logged=False)
    result = await run_command(correct, store, CommandRules(policy))
    return next((e for e in result.events if isinstance(e, DeadlinesCorrected)), None)


async def apply_policy(
    case_ids: AsyncIterable[Sequence[str]],
    store: CommandStore,
    policy: SlaPolicy,
    from_version: str | None,
    failed: Callable[[str, Exception], None],
    examples: int = 10,
) -> PolicyChange:
    """Correct every case named, batch by batch; a case that cannot be corrected is reported and skipped."""
    change = PolicyChange(from_version, policy.version, keep=examples)
    async for batch in case_ids:
        for case_id in batch:
            try:
                correction = await correct_case(case_id, store, policy, from_version)
            except Exception as e:  # one case never stops the others: reported by id, applied again next time
                change.fail(case_id)
                failed(case_id, e)
                continue
            change.add(correction)
    return change
