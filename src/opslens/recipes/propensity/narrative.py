"""The template narrative of a propensity run: funnel, split, features, models against the base rate.

It reads the typed facts (:class:`~opslens.recipes.propensity.facts.PropensityFacts`), so a
section the run does not hold is left out, never narrated from a default.

Example:
    >>> from opslens.recipes.propensity.facts import PropensityFacts
    >>> facts = PropensityFacts.model_validate({
    ...     "analysis": {"name": "shop", "recipe": "propensity", "source": "synthetic", "run_id": "r"},
    ...     "data-gen": {"events": 1000, "users": 50, "items": 20, "start": "a", "end": "b",
    ...         "event_counts": {"view": 990, "purchase": 10}, "users_reaching": {"view": 50,
    ...         "add_to_cart": 10, "purchase": 5}, "purchase_share": 0.01, "view_to_cart": 0.2,
    ...         "cart_to_purchase": 0.5, "unknown_event_types": {}, "personas": {}, "categories": 3},
    ...     "baselines": {"scores": [], "model_wins": True, "losses": [],
    ...         "verdict": "the model beats the base rate on held-out data"}})
    >>> n = propensity_narrative(facts, [])
    >>> n.sections[0].title
    'The funnel'
    >>> n.summary
    '1,000 events of 50 users analysed.'
"""

from __future__ import annotations

from opslens.core.baselines import plain_verdict
from opslens.core.narrative import Narrative, Section, Table
from opslens.explain.text import fmt, format_pct, headline, plural
from opslens.recipes.propensity.facts import (
    DataGenFacts,
    FeaturesFacts,
    PropensitySections,
    SessionizeFacts,
    SplitFacts,
    TrainFacts,
)

__all__ = ["propensity_narrative"]

_NAMES = {"logistic": "logistic regression (baseline)", "xgboost": "XGBoost"}


def _funnel(data: DataGenFacts, source: str | None, plots: list[str]) -> Section:
    reach = data.users_reaching
    paragraphs = [
        f"{plural(data.events, 'event')} of {plural(data.users, 'user')} on "
        f"{plural(data.items, 'item')} from {source or 'the source'}, "
        f"{data.start[:16]} to {data.end[:16]}.",
        f"Of the users who viewed an item, {format_pct(data.view_to_cart)} put one in the cart; of those, "
        f"{format_pct(data.cart_to_purchase)} bought. Purchases are {format_pct(data.purchase_share)} of all "
        "events: the class to predict is rare.",
    ]
    unknown = data.unknown_event_types
    if unknown:
        paragraphs.append(
            f"{plural(sum(unknown.values()), 'event')} of unknown type were left out: "
            + ", ".join(f"{k} ({fmt(v)})" for k, v in unknown.items())
            + "."
        )
    return Section(
        title="The funnel",
        paragraphs=paragraphs,
        table=Table(
            columns=["step", "events", "users"],
            rows=[
                [k, fmt(v), fmt(reach[k] if k in reach else None)]
                for k, v in data.event_counts.items()
            ],
        ),
        plots=[p for p in ("funnel",) if p in plots],
    )


def _sessions(ses: SessionizeFacts) -> Section:
    return Section(
        title="Sessions",
        paragraphs=[
            f"A gap of more than {fmt(ses.gap_minutes)} minutes starts a new session: "
            f"{plural(ses.sessions, 'session')}, {fmt(ses.events_per_session)} events each "
            f"on average, median length {fmt(ses.median_session_minutes)} minutes; "
            f"{plural(ses.sessions_with_purchase, 'session')} held a purchase."
        ],
    )


def _split(spl: SplitFacts) -> Section:
    return Section(
        title="The split",
        paragraphs=[
            "Train, validation and test are consecutive periods by date, so every model is judged "
            f"on days after those it learned from. Rule at the boundaries: {spl.rule} "
            f"({plural(spl.sessions_cut, 'session')} cut)."
        ],
        table=Table(
            columns=["split", "from", "to", "days", "events", "purchases"],
            rows=[
                [s.split, s.start[:10], s.end[:10], fmt(s.days), fmt(s.events), fmt(s.purchases)]
                for s in spl.splits
            ],
        ),
    )


def _features(feat: FeaturesFacts, tr: TrainFacts | None, plots: list[str]) -> Section:
    top = tr.top_features[:5] if tr is not None else []
    return Section(
        title="The features",
        paragraphs=[
            f"Every {fmt(feat.every_hours)} hours, each (user, item) pair with an event in the "
            f"previous {fmt(feat.lookback_days)} days is scored; the label is whether the user "
            f"buys the item within the next {fmt(feat.horizon_days)} days. Its "
            f"{fmt(feat.n_features)} features use only events strictly before that moment: "
            "recency of each event kind, counts in several windows, carts, removals and repeat views, "
            "the current session, the user's affinity to the item and its category, and the item's "
            "price, discount and popularity.",
        ],
        table=Table(
            columns=["split", "rows", "purchases (label 1)", "base rate"],
            rows=[
                [s, fmt(n), fmt(feat.positives[s]), format_pct(feat.base_rate[s])]
                for s, n in feat.rows.items()
                if s in feat.positives and s in feat.base_rate
            ],
        ),
        bullets=[f"{n}: {format_pct(v)} of XGBoost's gain" for n, v in top],
        plots=[p for p in ("feature_importance",) if p in plots],
    )


def _models(tr: TrainFacts, plots: list[str]) -> tuple[Section, str]:
    """The models section and the summary's sentence about the chosen model."""
    ks = tr.top_k
    test = {k: v.test for k, v in tr.results.items()}
    chosen = test[tr.chosen]
    base_rate = chosen.base_rate
    lift = (chosen.pr_auc or 0) / base_rate if base_rate else None
    name = _NAMES.get(tr.chosen, tr.chosen)
    paragraphs = [
        "PR-AUC (the area under the precision-recall curve: 1 when every buyer is ranked first, "
        "about the base rate for a guess) and ROC-AUC (the chance a buyer is ranked above a "
        "non-buyer: 0.5 for a guess) measure how well a model ranks.",
        f"On the test period {format_pct(base_rate)} of scored pairs were bought: a model that guesses has "
        f"a PR-AUC of about {fmt(base_rate)}. {name} was chosen by "
        f"{tr.chosen_by}; on test its PR-AUC is {fmt(chosen.pr_auc)} "
        f"({fmt(lift)} times the base rate) and its ROC-AUC {fmt(chosen.roc_auc)}.",
        "XGBoost weighs positives by scale_pos_weight "
        f"{fmt(tr.scale_pos_weight)}, so its probabilities run high: read them as a ranking, "
        "and the calibration curve for how far they are from observed rates.",
    ]
    if tr.negative_weight != 1.0 and tr.sample_rows is not None:
        paragraphs.append(
            f"The models learned from a sample of {plural(tr.sample_rows, 'training row')} of "
            f"{fmt(tr.train_rows)}: every purchase, and the other rows picked by a seeded hash "
            f"of user, item and time, each standing for {fmt(tr.negative_weight)} of them "
            "(params.models.max_train_rows)."
        )
    if tr.best_rule is not None:
        r = tr.best_rule
        paragraphs.append(
            f"The best single feature on the training rows is {r.feature} ({r.direction} values "
            f"buy more; ROC-AUC {fmt(r.train_auroc)} on train): the rule a practitioner would "
            "try first, compared with the model on test under 'Against the baselines'."
        )
    section = Section(
        title="The models against the base rate",
        paragraphs=paragraphs,
        table=Table(
            columns=[
                "model",
                "PR-AUC",
                "ROC-AUC",
                *(f"precision@{k}" for k in ks),
                *(f"recall@{k}" for k in ks),
            ],
            rows=[
                [
                    _NAMES.get(k, k),
                    fmt(v.pr_auc),
                    fmt(v.roc_auc),
                    *(fmt(v.at(k)[0]) for k in ks),
                    *(fmt(v.at(k)[1]) for k in ks),
                ]
                for k, v in test.items()
            ],
        ),
        plots=[p for p in ("pr_curve", "calibration") if p in plots],
    )
    k = ks[0] if ks else None
    precision = chosen.at(k)[0] if k is not None else None
    sentence = (
        f"Of the {k} user-item pairs the model ranks highest on the test period, {format_pct(precision)} "
        f"were bought (base rate {format_pct(base_rate)})."
        if precision is not None
        else f"On the test period {format_pct(base_rate)} of scored pairs were bought."
    )
    return section, sentence


def propensity_narrative(facts: PropensitySections, plots: list[str]) -> Narrative:
    """Sections of a propensity report, every number from the typed ``facts``."""
    data, tr = facts.data_gen, facts.train
    sections: list[Section] = []
    if data is not None:
        sections.append(_funnel(data, facts.analysis.source, plots))
    if facts.sessionize is not None:
        sections.append(_sessions(facts.sessionize))
    if facts.split is not None:
        sections.append(_split(facts.split))
    if facts.features is not None:
        sections.append(_features(facts.features, tr, plots))
    who = (
        f"{plural(data.events, 'event')} of {plural(data.users, 'user')}"
        if data is not None
        else "The events"
    )
    sentence = ""
    if tr is not None:
        section, sentence = _models(tr, plots)
        sections.append(section)
    summary = headline(f"{who} analysed.", sentence, plain_verdict(facts.baselines))
    sections.append(
        Section(
            title="Caveats",
            bullets=[
                "Only pairs with recent activity are scored: a purchase of an item never looked at before "
                "cannot be predicted here.",
                "Metrics hold for the test period; behaviour that changes later (seasons, campaigns) needs a retrain.",
            ],
        )
    )
    return Narrative(
        title=f"{facts.analysis.name}: who will buy what",
        summary=summary,
        sections=sections,
    )
