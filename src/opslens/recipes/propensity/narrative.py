"""The template narrative of a propensity run: funnel, split, features, models against the base rate.

Example:
    >>> facts = {"analysis": {"name": "shop", "recipe": "propensity", "source": "synthetic"},
    ...          "data-gen": {"events": 1000, "users": 50, "items": 20, "start": "a", "end": "b",
    ...                       "event_counts": {"view": 990, "purchase": 10}, "users_reaching": {"view": 50,
    ...                       "add_to_cart": 10, "purchase": 5}, "purchase_share": 0.01,
    ...                       "view_to_cart": 0.2, "cart_to_purchase": 0.5}}
    >>> propensity_narrative(facts, []).sections[0].title
    'The funnel'
"""

from __future__ import annotations

from typing import Any

from opslens.core.narrative import Narrative, Section, Table
from opslens.explain.text import fmt, plural

__all__ = ["propensity_narrative"]

_NAMES = {"logistic": "logistic regression (baseline)", "xgboost": "XGBoost"}


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{100 * float(x):.2g}%"


def propensity_narrative(facts: dict[str, Any], plots: list[str]) -> Narrative:
    """Sections of a propensity report, every number from ``facts``."""
    a = facts.get("analysis", {})
    data = facts.get("data-gen", {})
    ses = facts.get("sessionize", {})
    spl = facts.get("split", {})
    feat = facts.get("features", {})
    tr = facts.get("train", {})
    sections: list[Section] = []
    reach = data.get("users_reaching", {})
    paragraphs = [
        f"{plural(data.get('events'), 'event')} of {plural(data.get('users'), 'user')} on "
        f"{plural(data.get('items'), 'item')} from {a.get('source', 'the source')}, "
        f"{str(data.get('start', ''))[:16]} to {str(data.get('end', ''))[:16]}.",
        f"Of the users who viewed an item, {_pct(data.get('view_to_cart'))} put one in the cart; of those, "
        f"{_pct(data.get('cart_to_purchase'))} bought. Purchases are {_pct(data.get('purchase_share'))} of all "
        "events: the class to predict is rare.",
    ]
    unknown = data.get("unknown_event_types") or {}
    if unknown:
        paragraphs.append(
            f"{plural(sum(unknown.values()), 'event')} of unknown type were left out: "
            + ", ".join(f"{k} ({fmt(v)})" for k, v in unknown.items())
            + "."
        )
    sections.append(
        Section(
            title="The funnel",
            paragraphs=paragraphs,
            table=Table(
                columns=["step", "events", "users"],
                rows=[
                    [k, fmt(v), fmt(reach.get(k))] for k, v in data.get("event_counts", {}).items()
                ],
            ),
            plots=[p for p in ("funnel",) if p in plots],
        )
    )
    if ses:
        sections.append(
            Section(
                title="Sessions",
                paragraphs=[
                    f"A gap of more than {fmt(ses.get('gap_minutes'))} minutes starts a new session: "
                    f"{plural(ses.get('sessions'), 'session')}, {fmt(ses.get('events_per_session'))} events each "
                    f"on average, median length {fmt(ses.get('median_session_minutes'))} minutes; "
                    f"{plural(ses.get('sessions_with_purchase'), 'session')} held a purchase."
                ],
            )
        )
    if spl:
        sections.append(
            Section(
                title="The split",
                paragraphs=[
                    "Train, validation and test are consecutive periods by date, so every model is judged "
                    f"on days after those it learned from. Rule at the boundaries: {spl.get('rule')} "
                    f"({plural(spl.get('sessions_cut'), 'session')} cut)."
                ],
                table=Table(
                    columns=["split", "from", "to", "days", "events", "purchases"],
                    rows=[
                        [
                            s.get("split"),
                            str(s.get("start"))[:10],
                            str(s.get("end"))[:10],
                            fmt(s.get("days")),
                            fmt(s.get("events")),
                            fmt(s.get("purchases")),
                        ]
                        for s in spl.get("splits", [])
                    ],
                ),
            )
        )
    if feat:
        rows, pos, base = feat.get("rows", {}), feat.get("positives", {}), feat.get("base_rate", {})
        top = tr.get("top_features", [])[:5]
        sections.append(
            Section(
                title="The features",
                paragraphs=[
                    f"Every {fmt(feat.get('every_hours'))} hours, each (user, item) pair with an event in the "
                    f"previous {fmt(feat.get('lookback_days'))} days is scored; the label is whether the user "
                    f"buys the item within the next {fmt(feat.get('horizon_days'))} days. Its "
                    f"{fmt(feat.get('n_features'))} features use only events strictly before that moment: "
                    "recency of each event kind, counts in several windows, carts, removals and repeat views, "
                    "the current session, the user's affinity to the item and its category, and the item's "
                    "price, discount and popularity.",
                ],
                table=Table(
                    columns=["split", "rows", "purchases (label 1)", "base rate"],
                    rows=[[s, fmt(rows.get(s)), fmt(pos.get(s)), _pct(base.get(s))] for s in rows],
                ),
                bullets=[f"{n}: {_pct(v)} of XGBoost's gain" for n, v in top],
                plots=[p for p in ("feature_importance",) if p in plots],
            )
        )
    summary = (
        f"{plural(data.get('events'), 'event')} of {plural(data.get('users'), 'user')} analysed."
    )
    if tr:
        results = tr.get("results", {})
        ks = tr.get("top_k", [])
        test: dict[str, dict[str, Any]] = {k: v.get("test", {}) for k, v in results.items()}
        base_rate = next(iter(test.values()), {}).get("base_rate")
        chosen = tr.get("chosen", "")
        ct = test.get(chosen, {})
        lift = (ct.get("pr_auc") or 0) / base_rate if base_rate else None
        sections.append(
            Section(
                title="The models against the base rate",
                paragraphs=[
                    f"On the test period {_pct(base_rate)} of scored pairs were bought: a model that guesses has "
                    f"a PR-AUC of about {fmt(base_rate)}. {_NAMES.get(chosen, chosen)} was chosen by "
                    f"{tr.get('chosen_by')}; on test its PR-AUC is {fmt(ct.get('pr_auc'))} "
                    f"({fmt(lift)} times the base rate) and its ROC-AUC {fmt(ct.get('roc_auc'))}.",
                    "XGBoost weighs positives by scale_pos_weight "
                    f"{fmt(tr.get('scale_pos_weight'))}, so its probabilities run high: read them as a ranking, "
                    "and the calibration curve for how far they are from observed rates.",
                ],
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
                            fmt(v.get("pr_auc")),
                            fmt(v.get("roc_auc")),
                            *(fmt(v.get(f"precision_at_{k}")) for k in ks),
                            *(fmt(v.get(f"recall_at_{k}")) for k in ks),
                        ]
                        for k, v in test.items()
                    ],
                ),
                plots=[p for p in ("pr_curve", "calibration") if p in plots],
            )
        )
        summary = (
            f"{plural(data.get('events'), 'event')} of {plural(data.get('users'), 'user')}; "
            f"{_NAMES.get(chosen, chosen)} ranks test-period purchases with PR-AUC {fmt(ct.get('pr_auc'))} "
            f"against a base rate of {_pct(base_rate)}."
        )
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
        title=f"{a.get('name', 'propensity')}: who will buy what",
        summary=summary,
        sections=sections,
    )
