"""Evidence and sources files: read, validate against the framework, report every problem.

Column types and ranges are checked with a pandera schema built from the framework; cross-field
rules (what each kind needs, which indicator fits which tier) are vectorised pandas checks, so that
100 000 rows validate in well under a second or two. Every problem names the file, the CSV line,
the row id, the column, what was found and what was allowed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ..errors import EvidenceError, Problem, allowed_list, did_you_mean
from .spec import ANY_CHANNEL, EVIDENCE_KINDS, OBSERVATION_KINDS, Framework
from .text import TextProblem, read_csv_records

__all__ = [
    "EVIDENCE_COLUMNS",
    "REQUIRED_COLUMNS",
    "SOURCE_COLUMNS",
    "read_evidence",
    "read_sources",
    "validate_evidence",
]

EVIDENCE_COLUMNS = (
    "id", "observed", "target", "indicator", "tier", "kind", "value", "k", "n", "test",
    "sensitivity", "false_positive", "reliability", "package", "source", "note", "unit", "measure_unit",
)
REQUIRED_COLUMNS = ("id", "observed", "target", "indicator", "tier", "kind", "source")
NUMERIC_COLUMNS = ("value", "k", "n", "sensitivity", "false_positive", "reliability")
SOURCE_COLUMNS = ("key", "reference", "year", "url")
MAX_PROBLEMS = 200


def _read_csv(path: Path, columns: tuple[str, ...], required: tuple[str, ...]) -> tuple[pd.DataFrame, list[Problem]]:
    name = str(path)
    try:  # UTF-8 (BOM allowed), records numbered by the line they start on, structure checked
        records = read_csv_records(path, columns=columns)
    except TextProblem as exc:
        raise EvidenceError(exc.problems) from None
    frame = pd.DataFrame(records.rows, columns=records.header, dtype="str")
    for column in frame.columns:  # every cell stripped (vectorised)
        frame[column] = frame[column].str.strip()
    header_line = f"line {records.header_line}"
    problems = []
    for column in frame.columns:
        if column not in columns:
            problems.append(Problem(name, header_line, column,
                                    f"unknown column{did_you_mean(column, columns)}; allowed: {', '.join(columns)}"))
    for column in required:
        if column not in frame.columns:
            problems.append(Problem(name, header_line, column,
                                    f"missing required column; found columns: {', '.join(frame.columns)}"))
    if problems:
        raise EvidenceError(problems)
    for column in columns:
        if column not in frame.columns:
            frame[column] = pd.Series([""] * len(frame), dtype="str")
    frame = frame[list(columns)]
    frame.index = pd.Index(records.lines, dtype="int64", name="line")  # the line each row starts on
    return frame, problems


def read_sources(path: str | Path) -> pd.DataFrame:
    """Read the sources file (``key,reference,year,url``); keys must be unique and non-empty."""
    path = Path(path)
    frame, problems = _read_csv(path, SOURCE_COLUMNS, ("key", "reference"))
    keys = frame["key"]
    for line in frame.index[keys == ""]:
        problems.append(Problem(str(path), f"line {line}", "key", "empty key"))
    for line in frame.index[keys.duplicated() & (keys != "")]:
        problems.append(Problem(str(path), f"line {line}", "key", f"duplicated key {keys[line]!r}"))
    if problems:
        raise EvidenceError(problems)
    return frame.reset_index(drop=True)


def read_evidence(path: str | Path) -> pd.DataFrame:
    """Read an evidence CSV as text, with the CSV line number as index (not yet validated)."""
    frame, _ = _read_csv(Path(path), EVIDENCE_COLUMNS, REQUIRED_COLUMNS)
    return frame


def _schema(framework: Framework, sources: set[str]) -> pa.DataFrameSchema:
    targets = framework.channel_ids + framework.constraint_ids
    indicators = [i.id for i in framework.indicators]

    def isin(values, what):
        return pa.Check.isin(list(values), error=f"unknown {what}; allowed: {allowed_list(values)}")

    # text columns: no dtype check (every cell was read as text; checking that str is coercible to
    # object is a per-cell Python loop in pandera, half the validation time at 100 000 rows)
    text = dict(dtype=None, nullable=False)
    return pa.DataFrameSchema(
        {
            "id": pa.Column(**text, checks=pa.Check(lambda s: s != "", element_wise=False, error="empty id"),
                            unique=True),
            "target": pa.Column(**text, checks=isin(targets, "target")),
            "indicator": pa.Column(**text, checks=isin(indicators, "indicator")),
            "tier": pa.Column(**text, checks=isin(framework.tier_ids, "tier")),
            "kind": pa.Column(**text, checks=isin(EVIDENCE_KINDS, "kind")),
            "test": pa.Column(**text, checks=isin([""] + framework.test_ids, "test type (or empty)")),
            "source": pa.Column(**text, checks=isin(sorted(sources), "source key (from sources.csv)")),
            "reliability": pa.Column(float, nullable=True, checks=[
                pa.Check.gt(0, error="reliability must be in (0, 1]"),
                pa.Check.le(1, error="reliability must be in (0, 1]")]),
            "sensitivity": pa.Column(float, nullable=True, checks=[
                pa.Check.gt(0, error="sensitivity must be in (0, 1)"),
                pa.Check.lt(1, error="sensitivity must be in (0, 1)")]),
            "false_positive": pa.Column(float, nullable=True, checks=[
                pa.Check.gt(0, error="false_positive must be in (0, 1)"),
                pa.Check.lt(1, error="false_positive must be in (0, 1)")]),
            "k": pa.Column(float, nullable=True, checks=pa.Check.ge(0, error="counts must be >= 0")),
            "n": pa.Column(float, nullable=True, checks=pa.Check.gt(0, error="n must be > 0")),
        },
        strict=False,
    )


#: how similar (difflib's ratio) an unknown source key must be to a known one to be offered as a typo:
#: keys share years and prefixes ('nepra_2026' is 0.64 like 'wb_exports_2026'), a typo scores above 0.85
SOURCE_CUTOFF = 0.8

#: a measure further than this many scales from its indicator's baseline is refused. The catalogue's
#: baseline and scale are the corridor's reference value and one unit of typical variation, so a value
#: six units out is far likelier a unit or typing error (a percentage entered for a share lands hundreds
#: of scales out, millions for billions thousands) than evidence -- or, if genuine, a sign that the
#: reference points do not describe this corridor, which a person must revise (they are modelling
#: assumptions). Either way it must not reach the likelihood, where one row at z ~ Normal(lambda
#: logit(reach), 1) would pin its target's logit near z / lambda (README, "What is checked")
MAX_STANDARDISED = 6.0


def _far_measures(typed: pd.DataFrame, framework: Framework) -> pd.Series:
    """|standardised value| of the measure rows whose (value - baseline) / scale is beyond
    :data:`MAX_STANDARDISED` or not finite, indexed like ``typed``."""
    scaled = {i.id: i for i in framework.indicators if i.baseline is not None and i.scale}
    rows = typed[(typed["kind"] == "measure") & typed["value"].notna() & typed["indicator"].isin(list(scaled))]
    baseline = rows["indicator"].map({i: v.baseline for i, v in scaled.items()}).astype(float)
    scale = rows["indicator"].map({i: v.scale for i, v in scaled.items()}).astype(float)
    with np.errstate(all="ignore"):
        z = ((rows["value"].astype(float) - baseline) / scale).abs()
    return z[~(z <= MAX_STANDARDISED * (1 + 1e-12))]  # exactly 6 scales (1.1 for 0.2 +/- 0.15) is allowed


def _far_measure_message(raw: str, value: float, z: float, indicator) -> str:
    """What is wrong with a measure beyond the bound, the indicator's reference points and the likely fix."""
    unit = f", unit {indicator.unit!r}" if indicator.unit else ""
    message = (f"found {raw!r}, {z:.3g} scales from the baseline of indicator {indicator.id!r} (baseline "
               f"{indicator.baseline:g}, scale {indicator.scale:g}{unit}); allowed: within {MAX_STANDARDISED:g} "
               "scales of the baseline (further out a value is far likelier a unit or typing error than evidence)")

    def within(candidate: float) -> float | None:
        with np.errstate(all="ignore"):
            standardised = abs((candidate - indicator.baseline) / indicator.scale)
        return standardised if standardised <= MAX_STANDARDISED else None

    as_share, as_percent = within(value / 100), within(value * 100)
    expects_percent = "%" in (indicator.unit or "") or "percent" in (indicator.unit or "").lower()
    if as_share is not None and not expects_percent:
        return (message + f"; entered as a percentage? the catalogue expects a share ({indicator.unit or 'a share'}): "
                f"{value / 100:g} would give z = {as_share:.2g}")
    if as_percent is not None and expects_percent:
        return (message + f"; entered as a share? the catalogue expects a percentage ({indicator.unit}): "
                f"{value * 100:g} would give z = {as_percent:.2g}")
    return message + (f"; check the unit: the catalogue expects {indicator.unit!r}" if indicator.unit
                      else "; check the unit")


def _same_unit(a: str, b: str) -> bool:
    """Units compared as written, ignoring case and spacing ('Share of inputs' is 'share of  inputs')."""
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def validate_evidence(
    frame: pd.DataFrame,
    framework: Framework,
    *,
    sources: pd.DataFrame | None = None,
    file: str = "<evidence>",
    today: dt.date | None = None,
    sources_file: str = "sources.csv",
) -> pd.DataFrame:
    """Validate evidence rows (as read by :func:`read_evidence`) and return a typed copy.
    ``sources_file`` is where ``sources`` came from (an unknown source key is told to go there).

    Raises :class:`EvidenceError` listing every problem found.
    """
    today = today or dt.date.today()
    problems: list[Problem] = []
    ids = frame["id"]

    def add(lines, column, message_for):
        for line in lines:
            row_id = ids.get(line, "")
            where = f"line {line}" + (f" (id {row_id!r})" if row_id else "")
            problems.append(Problem(file, where, column, message_for(line)))

    typed = frame.copy()
    # --- numbers and dates -----------------------------------------------------------------
    for column in NUMERIC_COLUMNS:
        raw = frame[column]
        numbers = pd.to_numeric(raw.where(raw != "", None), errors="coerce").astype(float)
        bad = raw.index[(raw != "") & numbers.isna()]
        add(bad, column, lambda line, c=column: f"not a number: found {frame[c][line]!r}")
        infinite = raw.index[np.isinf(numbers)]  # 'inf', '-Infinity', '1e999'
        add(infinite, column, lambda line, c=column: f"not a finite number: found {frame[c][line]!r}; allowed: "
                                                     "a finite number")
        typed[column] = numbers.where(np.isfinite(numbers))  # reported above; later checks skip them
    # YYYY-MM-DD only: strptime's %m and %d also take '2026-11-5', which sorts and reads differently
    padded = frame["observed"].str.fullmatch(r"\d{4}-\d{2}-\d{2}", na=False)
    observed = pd.to_datetime(frame["observed"].where(padded, ""), format="%Y-%m-%d", errors="coerce")
    bad = frame.index[observed.isna()]
    add(bad, "observed", lambda line: f"not a date in YYYY-MM-DD form: found {frame['observed'][line]!r}")
    # compared as timestamps: ``.dt.date`` of a column with no valid date is datetime64, not dates
    future = frame.index[observed.notna() & (observed > pd.Timestamp(today))]
    add(future, "observed", lambda line: f"date {frame['observed'][line]} is in the future (today is {today})")
    typed["observed"] = pd.Series([None if pd.isna(when) else when.date() for when in observed],
                                  index=frame.index, dtype=object)

    # --- column-level checks (pandera) -----------------------------------------------------
    source_keys = set(sources["key"]) if sources is not None else set(frame["source"])
    try:
        _schema(framework, source_keys).validate(typed, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        for case in cases.itertuples(index=False):
            line, column = case.index, case.column
            if line is None or (isinstance(line, float) and np.isnan(line)):
                continue
            line = int(line)
            found = case.failure_case
            if case.check == "field_uniqueness":
                first = frame.index[(ids == found)][0]
                message = f"duplicated id {found!r} (first on line {first})"
                if line == first:
                    continue
            else:
                allowed = str(case.check)
                hint = ""
                if allowed.startswith("unknown "):
                    choices = {
                        "target": framework.channel_ids + framework.constraint_ids,
                        "indicator": [i.id for i in framework.indicators],
                        "tier": framework.tier_ids, "kind": list(EVIDENCE_KINDS),
                        "test": framework.test_ids, "source": sorted(source_keys),
                    }.get(column, [])
                    if column == "source":  # a new source is far likelier than a typo of another one
                        hint = did_you_mean(found, choices, cutoff=SOURCE_CUTOFF)
                        allowed = (f"unknown source key: add it to {sources_file} (columns key, reference, year, "
                                   f"url) before its first row; " + (f"the keys there: {allowed_list(choices)}" if choices
                                                                  else "it has no keys yet"))
                    else:
                        hint = did_you_mean(found, choices)
                if column in NUMERIC_COLUMNS:
                    if frame[column][line] == "":
                        continue
                    found = frame[column][line]  # as written ('-5', not -5.0)
                message = f"found {found!r}{hint}; {allowed}" if found != "" or allowed.startswith("unknown") else allowed
            add([line], column, lambda _l, m=message: m)

    # --- cross-field checks, vectorised ------------------------------------------------------
    channels, constraints = set(framework.channel_ids), set(framework.constraint_ids)
    tier_targets = {t.id: t.targets for t in framework.tiers}
    kind, tier, target = typed["kind"], typed["tier"], typed["target"]
    value, k, n = typed["value"], typed["k"], typed["n"]
    known_tier = tier.isin(list(tier_targets))
    wants = tier.map(tier_targets)
    target_type = np.where(target.isin(list(constraints)), "constraint",
                           np.where(target.isin(list(channels)), "channel", ""))
    typed["target_type"] = target_type
    mismatch = frame.index[known_tier & (target_type != "") & (wants != target_type)]
    add(mismatch, "target", lambda line: (
        f"tier {tier[line]!r} is about a {tier_targets[tier[line]]}, but {target[line]!r} is a "
        f"{'constraint' if target[line] in constraints else 'channel'}"))

    indicators = {i.id: i for i in framework.indicators}
    for ind_id, rows in typed.groupby("indicator", sort=False).groups.items():
        if ind_id not in indicators:
            continue
        ind = indicators[ind_id]
        sub = typed.loc[rows]
        if ind.target == ANY_CHANNEL:
            bad = sub.index[~sub["target"].isin(list(channels)) & sub["target"].isin(list(constraints))]
        else:
            bad = sub.index[(sub["target"] != ind.target) & sub["target"].isin(list(channels | constraints))]
        add(bad, "indicator", lambda line, ind=ind: (
            f"indicator {ind.id!r} is about {ind.target!r}, not {target[line]!r}"))
        bad = sub.index[sub["tier"].isin(list(tier_targets)) & ~sub["tier"].isin(ind.tiers)]
        add(bad, "tier", lambda line, ind=ind: (
            f"indicator {ind.id!r} is not observed at tier {tier[line]!r}; allowed: {', '.join(ind.tiers)}"))
        if ind.stage is not None:  # the row's channel must have the stage the indicator observes
            chains = {c: framework.chain(c) + _routes_of(framework, c) for c in channels}
            bad = sub.index[sub["target"].isin(list(channels))
                            & ~sub["target"].map(lambda c: ind.stage in chains.get(c, [])).astype(bool)]
            add(bad, "indicator", lambda line, ind=ind: (
                f"indicator {ind.id!r} observes stage {ind.stage!r}, which is not in the chain of "
                f"{target[line]!r} ({', '.join(chains[target[line]])})"))
            if ind.stage in _routes_of(framework, None) and "unit" in typed.columns:
                bad = sub.index[sub["unit"].astype(str) != ""]
                add(bad, "unit", lambda line, ind=ind: (
                    f"indicator {ind.id!r} observes the {ind.stage!r} route, which is a channel's, not a unit's; "
                    "allowed: an empty unit"))
        bad = sub.index[sub["kind"].isin(list(OBSERVATION_KINDS)) & ~sub["kind"].isin(ind.kinds)]
        add(bad, "kind", lambda line, ind=ind: (
            f"indicator {ind.id!r} cannot be a {kind[line]!r}; allowed: {', '.join(ind.kinds)}"))

    is_signal, is_count, is_measure, is_gap = kind == "signal", kind == "count", kind == "measure", kind == "gap"
    for column in ("value", "k", "n", "test", "sensitivity", "false_positive"):
        bad = frame.index[is_gap & (frame[column] != "")]
        add(bad, column, lambda line, c=column: f"a data gap records that no public data exist; it takes no {c} "
                                                "(record an observation as a signal, count or measure instead)")
    unit = frame["unit"]
    bad = frame.index[(unit != "") & (target_type == "constraint")]
    add(bad, "unit", lambda line: "a unit (e.g. one zone or province) belongs to a channel; context rows about "
                                  "a constraint take no unit")
    bad = frame.index[(unit != "") & ~unit.str.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-. ]*")]
    add(bad, "unit", lambda line: f"found {frame['unit'][line]!r}; allowed: a unit name that starts with an ASCII "
                                  "letter or digit and has only ASCII letters (A-Z, a-z, no accents), digits, '_', "
                                  "'-', '.' or spaces")
    indicator_of = typed["indicator"]
    numeric_ok = {c: (frame[c] == "") | typed[c].notna() for c in NUMERIC_COLUMNS}
    bad = frame.index[is_signal & numeric_ok["value"] & ~value.isin([0.0, 1.0])]
    add(bad, "value", lambda line: f"a signal's value must be 1 (positive clue) or 0 (negative clue); "
                                   f"found {frame['value'][line]!r}")
    bad = frame.index[is_measure & numeric_ok["value"] & value.isna()]
    add(bad, "value", lambda line: "a measure needs a numeric value; found an empty cell")
    far = _far_measures(typed, framework)
    add(far.index, "value", lambda line: _far_measure_message(frame["value"][line], float(value[line]),
                                                              abs(far[line]), indicators[indicator_of[line]]))
    measure_unit = frame["measure_unit"] if "measure_unit" in frame.columns else pd.Series("", index=frame.index)
    stated = measure_unit != ""
    add(frame.index[stated & ~is_measure & kind.isin(list(EVIDENCE_KINDS))], "measure_unit",
        lambda line: f"only measure rows take measure_unit (the unit of a measured value); this row is a "
                     f"{kind[line]!r}")
    for line in frame.index[stated & is_measure & indicator_of.isin(list(indicators))]:
        ind = indicators[indicator_of[line]]
        if not ind.unit:
            add([line], "measure_unit", lambda _l, ind=ind: (
                f"found {measure_unit[_l]!r}, but the catalogue states no unit for indicator {ind.id!r}; "
                "allowed: an empty cell (or add unit = ... to the indicator in the framework)"))
        elif not _same_unit(measure_unit[line], ind.unit):
            add([line], "measure_unit", lambda _l, ind=ind: (
                f"found {measure_unit[_l]!r}, but indicator {ind.id!r} is measured in {ind.unit!r} "
                f"(baseline {ind.baseline:g}, scale {ind.scale:g}); allowed: {ind.unit!r} -- convert the value "
                "to the catalogue's unit -- or an empty cell"))
    unrated = [i for i, v in indicators.items() if v.rate_converting is None or v.rate_not_converting is None]
    add(frame.index[is_count & indicator_of.isin(unrated)], "indicator", lambda line: (
        f"indicator {indicator_of[line]!r} has no rate_converting and rate_not_converting in the catalogue; "
        "allowed: a count of an indicator whose per-unit rates the framework states (a count is read "
        "against its indicator's own rates, never the tier's)"))
    for column in ("k", "n"):
        bad = frame.index[is_count & numeric_ok[column] & typed[column].isna()]
        add(bad, column, lambda line, c=column: f"a count needs {c}; found an empty cell")
        whole = typed[column].notna() & (typed[column] != np.floor(typed[column]))
        add(frame.index[whole], column, lambda line, c=column: f"{c} must be a whole number; found {frame[c][line]!r}")
    bad = frame.index[is_count & (k >= 0) & (n > 0) & (k > n)]  # only when k and n are each valid
    add(bad, "k", lambda line: f"k ({frame['k'][line]}) is larger than n ({frame['n'][line]})")
    for column in ("k", "n"):
        bad = frame.index[~is_count & ~is_gap & (frame[column] != "")]
        add(bad, column, lambda line, c=column: f"only count rows take {c}; this row is a {kind[line]!r}")
    bad = frame.index[is_count & (frame["value"] != "")]
    add(bad, "value", lambda line: "a count takes k and n, not value")
    has_s, has_f = typed["sensitivity"].notna(), typed["false_positive"].notna()
    add(frame.index[has_s != has_f], "sensitivity",
        lambda line: "give both sensitivity and false_positive, or neither")
    add(frame.index[has_s & has_f & (typed["sensitivity"] <= typed["false_positive"])], "sensitivity",
        lambda line: f"sensitivity ({frame['sensitivity'][line]}) must exceed false_positive "
                     f"({frame['false_positive'][line]})")
    for column in ("test", "sensitivity", "false_positive"):
        bad = frame.index[~is_signal & ~is_gap & kind.isin(list(EVIDENCE_KINDS)) & (frame[column] != "")]
        add(bad, column, lambda line, c=column: f"only signal rows take {c}; this row is a {kind[line]!r}")
    add(frame.index[(frame["test"] != "") & has_s], "test",
        lambda line: "give a test type or explicit sensitivity/false_positive, not both")

    if problems:
        shown = problems[:MAX_PROBLEMS]
        if len(problems) > MAX_PROBLEMS:
            shown.append(Problem(file, None, None, f"... and {len(problems) - MAX_PROBLEMS} more problems"))
        raise EvidenceError(shown)
    typed["reliability"] = typed["reliability"].fillna(1.0)
    typed["package"] = typed["package"].astype(str)
    # the stage of the chain each channel row observes (its indicator's), "" for context rows
    stage_of = {i.id: i.stage for i in framework.indicators}
    typed["stage"] = [
        (stage_of.get(ind) or framework.chain(t)[-1]) if t in channels else ""
        for ind, t in zip(typed["indicator"], typed["target"])]
    return typed.reset_index(names="line")


def _routes_of(framework, channel: str | None) -> list[str]:
    """The framework's route ids that apply to ``channel`` (its chain has both stages and one between;
    every route id for None)."""
    out = []
    for route in getattr(framework, "routes", []):
        if channel is None:
            out.append(route.id)
            continue
        chain = framework.chain(channel)
        stages = framework.stage_ids
        if route.after in chain and route.reaches in chain and any(
                stages.index(route.after) < stages.index(st) < stages.index(route.reaches) for st in chain):
            out.append(route.id)
    return out
