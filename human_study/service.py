"""What the rating app does, without the web page: who may enter, which item a rater sees, what an answer
must be, when a rater is done, and what the admin sees. ``human_study.app`` puts a Gradio page on it.

Entry (``RatingService.enter(params)``, from the URL's query parameters):

- ``?token=T``: an invite from ``pixart-bench study invite`` (one rater each).
- ``?key=K&PROLIFIC_PID=...`` (the parameter names are the study's ``entry_params``; the first one
  identifies the rater): a crowd platform's shared link. ``K`` is the study's entry key, so a link
  without it shows nothing; the participant id makes one rater, who resumes on every visit.
- ``?admin=A``: the admin token, for the live dashboard and the export.
Anything else gets a refusal that says nothing about the study.

A rater is bound to a slot of the plan on the first visit; every later visit (a reload, another day,
another browser) resumes at the first unanswered item. ``submit`` checks the ranks, commits the answer
and only then returns the next item, or the completion code once every item is answered.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from human_study.design import CRITERIA, Study
from human_study.errors import StudyError
from human_study.storage import Rater, StudyStore

LETTERS = "ABCDEFGH"
REFUSED = "This link is not valid. Please use the link you were given."


@dataclass(frozen=True)
class ItemView:
    """What the page shows for one item: the prompt and the opaque image ids in screen order."""

    position: int
    prompt: str
    images: list[str]
    answered: int
    total: int


@dataclass(frozen=True)
class Entry:
    """The result of ``enter``: a rater (with their item or their code), the admin, or a refusal."""

    kind: str  # "rater", "admin" or "refused"
    rater_id: int | None = None
    item: ItemView | None = None
    code: str | None = None  # completion code once finished
    message: str = ""


def check_admin_token(token: str) -> None:
    if len(token) < 8:
        raise StudyError(f"--admin-token must be at least 8 characters (it guards the unblinded export), got "
                         f"{len(token)}")


class RatingService:
    def __init__(self, study: Study, store: StudyStore, admin_token: str):
        check_admin_token(admin_token)
        self.study, self.store, self.admin_token = study, store, admin_token

    # --- entry -------------------------------------------------------------------------------------------
    def enter(self, params: dict[str, str]) -> Entry:
        params = {k: v for k, v in params.items() if isinstance(v, str) and v}
        if "admin" in params:
            ok = secrets.compare_digest(params["admin"].encode(), self.admin_token.encode())
            return Entry("admin") if ok else Entry("refused", message=REFUSED)
        rater = None
        if "token" in params:
            rater = self.store.rater_by_token(params["token"])
        else:
            pid_param = self.study.settings.entry_params[0]
            key = params.get("key", "")
            if params.get(pid_param) and key and secrets.compare_digest(key.encode(),
                                                                          self.store.secret("entry_key").encode()):
                pid = params[pid_param][:256]
                entry = {p: params[p][:256] for p in self.study.settings.entry_params if p in params}
                rater = self.store.rater_by_external(pid, entry)
        if rater is None:
            return Entry("refused", message=REFUSED)
        rater = self.store.bind_slot(rater, self.study.plan)
        return self._state(rater)

    def enter_rater(self, rater_id: int) -> Entry:
        """The state of a rater already in this page session."""
        rater = self.store.rater_by_id(rater_id)
        return Entry("refused", message=REFUSED) if rater is None else self._state(rater)

    def _state(self, rater: Rater) -> Entry:
        answered, total, position = self.store.progress(rater.id)
        if position is None:
            return Entry("rater", rater.id, code=self._finish(rater))
        return Entry("rater", rater.id, item=self.item(rater.id, position, answered, total))

    def item(self, rater_id: int, position: int, answered: int, total: int) -> ItemView:
        a = self.store.assignment(rater_id, position)
        return ItemView(position, self.study.prompts[a.prompt], a.images, answered, total)

    def _finish(self, rater: Rater) -> str:
        code = self.study.settings.completion_code or secrets.token_hex(4).upper()
        return self.store.finish(rater.id, code)

    # --- answers -------------------------------------------------------------------------------------------
    def check_ranks(self, ranks: dict[str, list]) -> dict[str, list[int]]:
        """The ranks as integers 1..K, one per image, for every criterion; StudyError saying what to fix."""
        k, out = len(self.study.models), {}
        for criterion in CRITERIA:
            given = list(ranks.get(criterion) or [])
            if len(given) != k or any(v in (None, "") for v in given):
                raise StudyError(f"{criterion}: give every image a rank")
            try:
                values = [int(v) for v in given]
            except (TypeError, ValueError):
                raise StudyError(f"{criterion}: ranks are whole numbers from 1 to {k}") from None
            if not all(1 <= v <= k for v in values):
                raise StudyError(f"{criterion}: ranks are whole numbers from 1 to {k}")
            if not self.study.settings.ties and sorted(values) != list(range(1, k + 1)):
                raise StudyError(f"{criterion}: give each image a different rank, from 1 (best) to {k}")
            if self.study.settings.ties and min(values) != 1:
                raise StudyError(f"{criterion}: the best image(s) get rank 1")
            out[criterion] = values
        return out

    def submit(self, rater_id: int, position: int, ranks: dict[str, list], session: str | None = None) -> Entry:
        """Commit the answer to the item at ``position`` (a repeated answer changes nothing), then return
        the rater's next item or completion code."""
        rater = self.store.rater_by_id(rater_id)
        if rater is None:
            return Entry("refused", message=REFUSED)
        self.store.submit(rater_id, position, self.check_ranks(ranks), session)
        return self._state(rater)

    # --- admin -----------------------------------------------------------------------------------------------
    def dashboard(self) -> str:
        """The live numbers as Markdown (counts only; no answers)."""
        c = self.store.counts()
        rated = self.store.item_ratings_per_prompt()  # counted by the database: no rows read on each refresh
        done_by_prompt = [rated.get(p, 0) for p in range(len(self.study.prompts))]
        target = self.study.settings.raters_per_prompt
        full = sum(n >= target for n in done_by_prompt)
        return "\n".join([
            f"### {self.study.settings.title}: live",
            f"- raters: {c['raters_started']} started, {c['raters_finished']} finished, "
            f"{self.study.planned_raters} planned",
            f"- answers: {c['answers']} of {c['items_assigned']} assigned items",
            f"- prompts with {target} ratings: {full} of {len(self.study.prompts)} "
            f"(fewest {min(done_by_prompt)}, most {max(done_by_prompt)})",
        ])

    def export(self) -> dict:
        """Every rater, item and answer, with the model names (unblinded): for the admin only."""
        rows = self.store.rows()
        for a in rows["assignments"]:
            a["model_names"] = [self.study.models[m] for m in a["models"]]
            a["prompt_text"] = self.study.prompts[a["prompt"]]
        return {"study_id": self.study.study_id, "models": self.study.models, **rows}
