"""From the stored answers to the tables the aggregation reads: one row per (ranking, model), and one per
rater with their attention-check record.

Screen positions are mapped back to models through each item's logged screen order, so nothing
downstream sees the screen. Attention-check items are scored, not aggregated: a rater passes a check
when the decoy (the image of another prompt) has a strictly worse alignment rank than every other
image; a rater who fails ``exclude_after`` checks or more is marked ``excluded``.
"""

from __future__ import annotations

import pandas as pd

from human_study.design import CRITERIA, Study

JUDGEMENT_COLUMNS = ["rater", "prompt", "position", "criterion", "model", "rank"]
RATER_COLUMNS = ["rater", "excluded", "failed_checks", "n_checks", "finished", "answers"]


def check_passed(alignment: list[int], decoy: int) -> bool:
    """True when the decoy's alignment rank is worse than every other image's."""
    return all(alignment[decoy] > r for i, r in enumerate(alignment) if i != decoy)


def rater_name(row: dict) -> str:
    """A stable, non-identifying name for a rater in result files (their slot, else their row id)."""
    return f"r{row['slot']:04d}" if row.get("slot") is not None else f"id{row['id']}"


def tables(study: Study, rows: dict[str, list[dict]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(judgements, raters) from ``StudyStore.rows()``."""
    items = {(a["rater_id"], a["position"]): a for a in rows["assignments"]}
    names = {r["id"]: rater_name(r) for r in rows["raters"]}
    judgements, checks, answered = [], {}, {}
    for ans in rows["answers"]:
        item = items.get((ans["rater_id"], ans["position"]))
        if item is None:
            continue
        rater = names[ans["rater_id"]]
        answered[rater] = answered.get(rater, 0) + 1
        if item["kind"] == "check":
            checks.setdefault(rater, []).append(check_passed(ans["ranks"]["alignment"], item["decoy"]))
            continue
        for criterion in CRITERIA:
            for screen, rank in enumerate(ans["ranks"][criterion]):
                judgements.append((rater, item["prompt"], item["position"], criterion,
                                   study.models[item["models"][screen]], float(rank)))
    raters = []
    for r in rows["raters"]:
        if r.get("slot") is None:
            continue  # invited, never came
        name = names[r["id"]]
        passed = checks.get(name, [])
        failed = sum(not p for p in passed)
        raters.append((name, failed >= study.settings.exclude_after, failed, len(passed),
                       r.get("finished_at") is not None, answered.get(name, 0)))
    return (pd.DataFrame(judgements, columns=JUDGEMENT_COLUMNS),
            pd.DataFrame(raters, columns=RATER_COLUMNS))
