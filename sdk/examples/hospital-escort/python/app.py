"""hospital-escort, in Python: the same plugin as the SDK README's Rust example.

Plans a hospital escort for people in care who need medical care, due within `window_days`
of the occurrence (from the plugin's configuration), and reviews the escort's report.
"""

import json
from datetime import datetime, timedelta

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import (
    Action as ActionInfo,
    AnswerKind,
    ChecklistItem,
    FollowUp,
    Names,
    PlanResult,
    PluginInfo,
    Priority,
    Requirements,
    ReviewOutcome_Accepted,
    ReviewOutcome_FollowUp,
    ReviewOutcome_Rejected,
    Severity,
    Target_Person,
    TargetKind,
    TaskDraft,
)

CONFIG_SCHEMA = json.dumps({
    "type": "object",
    "additionalProperties": False,
    "properties": {"window_days": {"type": "integer", "minimum": 1, "maximum": 31}},
})

YES = {"yes", "true", "是", "1", "y"}


def settings() -> dict:
    """The configuration with its defaults (the host has checked it against the schema)."""
    try:
        given = json.loads(host.config() or "{}")
    except ValueError as e:
        # A polite error: the host reports it; the plugin is not at fault for a bad call.
        raise Err(f"the configuration is not JSON: {e}")
    return {"window_days": 14, **given}


class Action(exports.Action):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            id="hospital-escort",
            version="1.0.0",
            names=Names(zh="就医陪护", en="Hospital escort"),
            actions=[
                ActionInfo(
                    id="escort",
                    names=Names(zh="就医陪护", en="Escort to hospital"),
                    default_cron="0 9 1 * *",
                    target_kind=TargetKind.PERSON,
                    categories=["special_difficulty_elder"],
                )
            ],
            config_schema=CONFIG_SCHEMA,
        )

    def plan(self, occurrence, targets) -> PlanResult:
        window = settings()["window_days"]
        at = datetime.fromisoformat(occurrence.scheduled_at)
        checklist = [
            ChecklistItem(id="seen", question=Names(zh="是否已就诊？", en="Seen by a doctor?"),
                          kind=AnswerKind.YES_NO, choices=[], choice_labels=[], required=True,
                          required_when=None),
            ChecklistItem(id="advice", question=Names(zh="医嘱", en="Doctor's advice"),
                          kind=AnswerKind.TEXT, choices=[], choice_labels=[], required=False,
                          required_when=None),
        ]
        drafts = []
        for i, target in enumerate(targets):
            if not isinstance(target, Target_Person):
                continue
            p = target.value
            if "medical" not in p.needs:
                continue
            drafts.append(TaskDraft(
                target=i,
                kind="escort",
                title=Names(zh="陪同就医", en="Escort to hospital"),
                due_start=at.isoformat(),
                due_end=(at + timedelta(days=window)).isoformat(),
                priority=Priority.HIGH if p.age >= 80 else Priority.NORMAL,
                requirements=Requirements(skills=["driving"], clearances=[], team_size=1,
                                          gender=None, max_distance_km=None, languages=[],
                                          roles=[]),
                checklist=0,
            ))
        host.log(host.Level.INFO, f"{len(drafts)} escorts for {len(targets)} people")
        return PlanResult(checklists=[checklist], drafts=drafts)

    def review(self, task, report):
        if not report.reached:
            return ReviewOutcome_FollowUp(FollowUp(severity=Severity.ROUTINE,
                                                   reason="not reached: arrange the escort again"))
        answers = {a.item: a.value.strip() for a in report.answers}
        missing = [c.id for c in task.checklist if c.required and not answers.get(c.id)]
        if missing:
            return ReviewOutcome_Rejected(missing)
        if answers.get("seen", "").lower() in YES:
            return ReviewOutcome_Accepted()
        return ReviewOutcome_FollowUp(FollowUp(severity=Severity.ROUTINE,
                                               reason="not seen by a doctor yet"))
