"""The Sample tab's "Why this token" view for n-gram models: for a clicked token, which order answered, the counts
at every order, the discount or weights, the mass each order handed down, Kneser-Ney's continuation count, and the
formula of the model's smoothing, in words for a learner.

The numbers are engine.models.ngram_explain's (worked out from the counts, and checked there to recombine to the
model's probability). Looking them up scans count arrays, so it runs on a JobRunner, the latest click winning."""
from __future__ import annotations

from html import escape

from PySide6.QtWidgets import QTabWidget, QTextBrowser, QVBoxLayout, QWidget

from engine.models.ngram import NGramLM
from engine.models.ngram_explain import describe, explain_token, generation_context

from app.common.jobs import JobRunner

TITLE = "Why this token (n-gram)"
NOT_NGRAM = "Only an n-gram model's probabilities are counts that can be explained: train or load an n-gram model."
HOW_TO_READ = {
    True: "Each order j adds its own share A to B × the order below: P<sub>j</sub> = A + B · P<sub>j−1</sub>. "
          "B is the probability mass this order hands down to shorter contexts. c(h): how often the context was "
          "seen (followed by something); c(h w): followed by this token; N1+(h •): by how many different tokens.",
    False: "An order j answers with its own share A when it saw the n-gram; otherwise it hands down: "
           "P<sub>j</sub> = B · P<sub>j−1</sub>. “down” is the mass handed down: what it keeps for tokens it "
           "never saw after this context. c(h): how often the context was seen (followed by something); "
           "c(h w): followed by this token; N1+(h •): by how many different tokens.",
}
INTERPOLATED = ("add-k", "interpolation", "kneser-ney")


def _num(x: float) -> str:
    return f"{x:.3g}"


def _setting(o: dict) -> str:
    """The discount or weight this order used, as the formula names it."""
    if not o["context_seen"]:
        return "—"
    if "discount" in o:
        return f"D = {o['discount']:g}"
    if "weight" in o:
        return f"λ′ = {o['weight']:.3g}"
    if "k" in o:
        return f"k = {o['k']:g}"
    if "alpha" in o:
        return f"α = {o['alpha']:g}, Z = {o['Z']:.3g}"
    return "—"


def explanation_html(expl: dict, token_str) -> str:
    """The explanation as HTML: the answer in words, a table of the orders (longest context first, the order that
    answered in bold, unseen contexts grey), the formula and how to read the table."""
    lines = describe(expl, token_str)
    cont = expl["smoothing"] == "kneser-ney"
    settings = {_setting(o) for o in expl["orders"] if o["context_seen"]}
    interpolated = expl["smoothing"] in INTERPOLATED
    one_setting = len(settings) == 1    # the same discount at every order: said once, above the table
    rows = []
    for o in reversed(expl["orders"]):
        ctx = "".join(token_str(i) for i in o["context"]) or "(none)"
        style = "" if o["context_seen"] else ' style="color:#888"'
        bold = o["order"] == expl["ngram_order"] and expl["smoothing"] not in INTERPOLATED
        bold = bold or (expl["smoothing"] in INTERPOLATED and o["order"] == expl["order_used"])
        cells = [str(o["order"]), escape(ctx), f"{o['context_count']:,}", f"{o['count']:,}",
                 f"{o['followers']:,}", _setting(o), _num(o["A"]), _num(o["B"]), _num(o["mass_down"]), _num(o["p"])]
        if not o["context_seen"]:
            cells[6:9] = ["—", "1", "1"]
        if interpolated:
            del cells[8]      # the mass handed down is B itself
        if one_setting:
            del cells[5]
        td = "".join(f"<td>{'<b>' if bold else ''}{c.replace(' ', '&nbsp;')}{'</b>' if bold else ''}</td>"
                     for c in cells)
        rows.append(f"<tr{style}>{td}</tr>")
    heads = ["j", "context", "c(h)" + ("*" if cont else ""), "c(h w)" + ("*" if cont else ""),
             "N1+(h •)", "setting", "A", "B", "down", "P<sub>j</sub>"]
    if interpolated:
        del heads[8]
    if one_setting:
        del heads[5]
    heads = [h.replace(" ", "&nbsp;") for h in heads]
    same = (f"<p>{'Discount ' if 'D =' in next(iter(settings)) else ''}{escape(settings.pop())} at every "
            "order.</p>" if one_setting and settings != {"—"} else "")
    table = ('<table cellspacing="0" cellpadding="3" border="1" style="border-collapse:collapse">'
             f"<tr>{''.join(f'<th>{h}</th>' for h in heads)}</tr>{''.join(rows)}</table>")
    note = ("<p style='color:#555'>* below the top order, Kneser-Ney counts how many different tokens came before "
            "(continuation counts N1+(• h w)), not how often.</p>" if cont else "")
    words = "".join(f"<p>{escape(x)}</p>" for x in lines[1:len(lines) - len(expl["orders"]) - 1])
    return (f"<p><b>{escape(lines[0])}</b></p>{words}{same}{table}{note}"
            f"<p>{HOW_TO_READ[expl['smoothing'] in INTERPOLATED]}</p>"
            f"<p><b>Formula</b> ({escape(expl['smoothing'])}): {escape(expl['formula'])}</p>"
            "<p style='color:#555'>P is the model's own probability, before repetition penalty, temperature and "
            "truncation.</p>")


class NGramExplainView(QWidget):
    """Fed by the Sample panel: `start(handle, prompt)` when a generation starts, `show_token(view, index)` when
    a generated token is clicked (view: the panel's SampleView)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.text = QTextBrowser()
        self.text.setOpenLinks(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text)
        self.jobs = JobRunner(self)
        self.handle, self.prompt, self._request = None, "", 0
        self.expl: dict | None = None
        self.text.setHtml("<p>Generate from an n-gram model, then click a generated token to see which order "
                          "answered and the counts behind its probability.</p>")

    @property
    def usable(self) -> bool:
        return self.handle is not None and isinstance(self.handle.model, NGramLM)

    def start(self, handle, prompt: str) -> None:
        self.handle, self.prompt, self.expl = handle, prompt, None
        self._request += 1
        tabs = self._tabs()
        if tabs is not None:
            tabs.setTabEnabled(tabs.indexOf(self), self.usable)
            tabs.setTabToolTip(tabs.indexOf(self), "" if self.usable else NOT_NGRAM)
        hint = "Click a generated token to see why it got its probability." if self.usable else NOT_NGRAM
        self.text.setHtml(f"<p>{hint}</p>")

    def _tabs(self) -> QTabWidget | None:
        w = self.parentWidget()
        while w is not None and not isinstance(w, QTabWidget):
            w = w.parentWidget()
        return w

    def show_token(self, view, index: int) -> None:
        """Explain generated token `index` of `view` (its id and the ids before it, beam: on the text shown)."""
        if not self.usable:
            return
        _, token, _ = view.step_event(index)
        before = list(view._path[:index]) if view.beam else [e.token_id for e in view.events[:index]]
        model, tok, prompt = self.handle.model, self.handle.tokenizer, self.prompt
        self._request += 1
        request = self._request

        def job():
            return explain_token(model, generation_context(tok, prompt, before, model.config.order), token)

        self.jobs.run(job, lambda e: self._explained(request, e), lambda m: self._explained(request, None, m))

    def _explained(self, request: int, expl: dict | None, error: str = "") -> None:
        if request != self._request:
            return
        self.expl = expl
        if expl is None:
            self.text.setHtml(f"<p style='color:#b00020'>Could not explain this token: {escape(error)}</p>")
            return
        self.text.setHtml(explanation_html(expl, self.handle.tokenizer.token_str))

    def shutdown(self) -> None:
        self.jobs.wait()
