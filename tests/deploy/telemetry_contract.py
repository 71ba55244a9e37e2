"""What the dashboards and alert rules query, and what the Rust sources emit.

`referenced(sql)` pulls span names, attribute keys, tables and quoted columns out of GreptimeDB SQL;
`promql_refs(expr)` pulls metric names and labels out of PromQL.
`emitted(src_dir)` pulls span names, tracing field names, recorded attributes, resource attributes,
metric instruments (with their unit from `sync::metrics::SPECS`) and metric labels out of the Rust
sources (literal names, as written in the code).
`contract_problems(...)` compares the two, with metric names as GreptimeDB translates them. Where a
query names one span (`span_name = '…'`), one event (`body = '…'`, the event's message) or a metric
table, its attributes, log attributes or label columns must belong to that span, event or metric:
a field renamed in one place only (`drift_rows` is on a span, an event and a metric) is still caught.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# --- GreptimeDB tables and their fixed columns (TELEMETRY_FACTS §2.1 and §2.3) ------------------
TRACE_TABLE = "opentelemetry_traces"
LOG_TABLE = "opentelemetry_logs"
TRACE_COLUMNS = {
    "timestamp", "timestamp_end", "duration_nano", "trace_id", "span_id", "parent_span_id", "span_kind",
    "span_name", "span_status_code", "span_status_message", "trace_state", "scope_name", "scope_version",
    "service_name", "span_events", "span_links",
}
LOG_COLUMNS = {
    "timestamp", "trace_id", "span_id", "severity_text", "severity_number", "body", "log_attributes",
    "trace_flags", "scope_name", "scope_version", "scope_schema_url", "resource_schema_url",
    "scope_attributes", "resource_attributes",
}
METRIC_COLUMNS = {"greptime_value", "greptime_timestamp", "le"}
ATTRIBUTE_PREFIXES = ("span_attributes.", "resource_attributes.", "scope_attributes.")

# --- SQL extraction -------------------------------------------------------------------------------
_SPAN_ATTR = re.compile(r"span_attributes\.([A-Za-z_][A-Za-z0-9_.]*)")
_RES_ATTR_COL = re.compile(r"resource_attributes\.([A-Za-z_][A-Za-z0-9_.]*)")
_JSON_ATTR = re.compile(r"json_get_\w+\(\s*(log_attributes|resource_attributes)\s*,\s*'([^']+)'\s*\)")
_SPAN_NAME_EQ = re.compile(r"span_name\s*(?:=|<>|!=)\s*'([^']+)'")
_SPAN_NAME_IN = re.compile(r"span_name\s+(?:NOT\s+)?IN\s*\(([^)]*)\)", re.IGNORECASE)
_BODY_EQ = re.compile(r"\bbody\s*=\s*'([^']+)'")
_TABLE = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_\"`][A-Za-z0-9_.\"`]*)", re.IGNORECASE)
_QUOTED = re.compile(r"\"([^\"]+)\"|`([^`]+)`")
_STRING = re.compile(r"'(?:[^']|'')*'")


@dataclass
class Refs:
    span_names: set[str] = field(default_factory=set)
    span_attrs: set[str] = field(default_factory=set)
    log_attrs: set[str] = field(default_factory=set)
    resource_attrs: set[str] = field(default_factory=set)
    tables: set[str] = field(default_factory=set)
    quoted_columns: set[str] = field(default_factory=set)
    # log record bodies matched exactly: the message of the tracing event that wrote them
    bodies: set[str] = field(default_factory=set)

    def update(self, other: "Refs") -> None:
        for k in self.__dataclass_fields__:
            getattr(self, k).update(getattr(other, k))


def _json_path_key(path: str) -> str:
    """json_get_string(x, '["service.name"]') -> service.name; 'pipeline' -> pipeline."""
    m = re.fullmatch(r'\[\s*"(.+)"\s*\]', path)
    return m.group(1) if m else path


def referenced(sql: str) -> Refs:
    r = Refs()
    r.span_attrs.update(_SPAN_ATTR.findall(sql))
    r.resource_attrs.update(_RES_ATTR_COL.findall(sql))
    for col, key in _JSON_ATTR.findall(sql):
        (r.log_attrs if col == "log_attributes" else r.resource_attrs).add(_json_path_key(key))
    r.span_names.update(_SPAN_NAME_EQ.findall(sql))
    r.bodies.update(_BODY_EQ.findall(sql))
    for group in _SPAN_NAME_IN.findall(sql):
        r.span_names.update(re.findall(r"'([^']+)'", group))
    for t in _TABLE.findall(sql):
        r.tables.add(t.replace('"', "").replace("`", "").split(".")[-1])
    without_strings = _STRING.sub("''", sql)
    for dq, bt in _QUOTED.findall(without_strings):
        name = dq or bt
        if not name.startswith(ATTRIBUTE_PREFIXES):
            r.quoted_columns.add(name)
    return r


# --- where the SQL lives ----------------------------------------------------------------------------
def iter_panels(panels):
    for p in panels or []:
        yield p
        yield from iter_panels(p.get("panels"))


def dashboard_sql(dashboard: dict) -> list[str]:
    out = []
    for p in iter_panels(dashboard.get("panels")):
        for t in p.get("targets", []) or []:
            for key in ("rawSql", "rawQuery", "sql"):
                if isinstance(t.get(key), str):
                    out.append(t[key])
    for v in dashboard.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict) and isinstance(q.get("rawSql"), str):
            out.append(q["rawSql"])
        elif v.get("type") == "query" and isinstance(q, str):
            out.append(q)
    return out


def alert_sql(alerts: dict) -> list[str]:
    out = []
    for g in alerts.get("groups", []):
        for rule in g.get("rules", []):
            for d in rule.get("data", []):
                sql = d.get("model", {}).get("rawSql")
                if isinstance(sql, str):
                    out.append(sql)
    return out


def load_queries(dashboards_dir: Path) -> list[str]:
    sql = []
    for f in sorted(dashboards_dir.glob("*.json")):
        sql += dashboard_sql(json.loads(f.read_text(encoding="utf-8")))
    for f in sorted((dashboards_dir / "provisioning" / "alerting").glob("*.y*ml")):
        sql += alert_sql(yaml.safe_load(f.read_text(encoding="utf-8")))
    return sql


# --- Rust extraction --------------------------------------------------------------------------------
_SPAN_MACROS = r"(?:trace_span|debug_span|info_span|warn_span|error_span|span)"
_EVENT_MACROS = r"(?:trace|debug|info|warn|error|event)"
_MACRO_START = re.compile(r"\b(?:tracing::)?(" + _SPAN_MACROS + "|" + _EVENT_MACROS + r")!\s*\(")
_FIELD_ASSIGN = re.compile(r"(?:^|[,(])\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=(?![=>])")
_FIELD_SHORTHAND = re.compile(r"(?:^|[,(])\s*[%?]?([A-Za-z_][A-Za-z0-9_]*)\s*(?=[,)]|$)")
_RECORD = re.compile(r"\.record\(\s*\"([^\"]+)\"")
_KEYVALUE = re.compile(r"KeyValue::new\(\s*\"([^\"]+)\"")
_METRIC_FIELD = re.compile(r"\b(monotonic_counter|counter|histogram|gauge)\.([A-Za-z_][A-Za-z0-9_.]*)")
_STR_CONST = re.compile(r"\bconst\s+([A-Z][A-Z0-9_]*)\s*:\s*&str\s*=\s*\"([^\"]*)\"\s*;")
_SPEC = re.compile(
    r"Spec\s*\{\s*name:\s*(?:([A-Z][A-Z0-9_]*)|\"([^\"]*)\")\s*,\s*kind:\s*Kind::(\w+)\s*,\s*unit:\s*\"([^\"]*)\"")
_METER_API = re.compile(r"\b(?:u64|f64|i64)_(counter|histogram|up_down_counter|gauge)\(\s*\"([^\"]+)\"")
_RUST_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_RUST_COMMENT = re.compile(r"//[^\n]*")


def _macro_bodies(text: str):
    """Yields (macro_name, body) for tracing macros, with balanced parentheses."""
    for m in _MACRO_START.finditer(text):
        depth, i, start = 1, m.end(), m.end()
        in_str = False
        while i < len(text) and depth:
            ch = text[i]
            if in_str:
                if ch == "\\":
                    i += 1
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            i += 1
        yield m.group(1), text[start:i - 1]


# OTel unit -> Prometheus name suffix (the part of the translation table these metrics use).
_UNIT_SUFFIX = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "%": "percent"}


def prometheus_names(name: str, kind: str, unit: str) -> set[str]:
    """GreptimeDB's default `UnderscoreEscapingWithSuffixes` naming (TELEMETRY_FACTS §2.4): `.` -> `_`,
    the unit's suffix (none for `{annotation}` units; `1` on a gauge -> `_ratio`), `_total` on a
    monotonic sum, and `_bucket`/`_sum`/`_count` tables for a histogram."""
    base = re.sub(r"[^A-Za-z0-9_:]", "_", name)
    suffix = "" if re.fullmatch(r"\{[^}]*\}", unit) else _UNIT_SUFFIX.get(unit, "")
    if unit == "1" and kind == "gauge":
        suffix = "ratio"
    if suffix and not base.endswith(f"_{suffix}"):
        base += f"_{suffix}"
    if kind == "counter":
        return {base if base.endswith("_total") else f"{base}_total"}
    if kind == "histogram":
        return {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    return {base}


@dataclass
class Emitted:
    span_names: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    resource_attrs: set[str] = field(default_factory=set)
    counters: set[str] = field(default_factory=set)
    histograms: set[str] = field(default_factory=set)
    gauges: set[str] = field(default_factory=set)
    # instrument name -> (kind, unit) from `Spec { … }` in the sources
    specs: dict[str, tuple[str, str]] = field(default_factory=dict)
    # attributes of metric data points (the other fields of metric events): PromQL labels
    metric_labels: set[str] = field(default_factory=set)
    # span name -> fields declared when the span is created (tracing can only `record` declared fields)
    span_fields: dict[str, set[str]] = field(default_factory=dict)
    # event message (a literal; it becomes the log record's body) -> the fields of that event
    event_fields: dict[str, set[str]] = field(default_factory=dict)
    # instrument name -> the attributes its data points carry (its labels / tag columns)
    labels_of: dict[str, set[str]] = field(default_factory=dict)

    def instruments(self) -> dict[str, str]:
        out = {n: "counter" for n in self.counters}
        out.update({n: "histogram" for n in self.histograms})
        out.update({n: "gauge" for n in self.gauges})
        return out

    def metric_tables(self) -> set[str]:
        """The tables GreptimeDB creates for the instruments (which are also the PromQL metric names)."""
        tables = set()
        for name, kind in self.instruments().items():
            tables |= prometheus_names(name, kind, self.specs.get(name, (kind, ""))[1])
        return tables

    def table_labels(self) -> dict[str, set[str]]:
        """Metric table (or PromQL name) -> the label columns GreptimeDB gives it."""
        out: dict[str, set[str]] = {}
        for name, kind in self.instruments().items():
            for table in prometheus_names(name, kind, self.specs.get(name, (kind, ""))[1]):
                out.setdefault(table, set()).update(self.labels_of.get(name, set()))
        return out


def emitted(src_dir: Path) -> Emitted:
    e = Emitted()
    files = sorted(src_dir.rglob("*.rs"))
    if not files:
        raise FileNotFoundError(f"no Rust sources under {src_dir}")
    for f in files:
        text = _RUST_COMMENT.sub("", f.read_text(encoding="utf-8"))
        for macro, body in _macro_bodies(text):
            strings = _RUST_STRING.findall(body)
            plain = _RUST_STRING.sub('""', body)
            declared = set(_FIELD_ASSIGN.findall(plain)) | set(_FIELD_SHORTHAND.findall(plain))
            if macro.endswith("span") and strings:
                name = strings[0].strip('"')
                e.span_names.add(name)
                e.span_fields.setdefault(name, set()).update(declared)
            e.fields.update(declared)
            if not macro.endswith("span") and strings:
                # The message is the last literal argument (`"verify stream"`); a format string such as
                # `"{summary}"` is recorded too but no query can match it as a body.
                e.event_fields.setdefault(strings[-1][1:-1], set()).update(declared)
            metric_fields = _METRIC_FIELD.findall(plain)
            labels = {f for f in declared if "." not in f}
            for kind, name in metric_fields:
                {"histogram": e.histograms, "gauge": e.gauges}.get(kind, e.counters).add(name)
                e.labels_of.setdefault(name, set()).update(labels)
            if metric_fields:
                e.metric_labels.update(labels)
        e.fields.update(_RECORD.findall(text))
        e.resource_attrs.update(_KEYVALUE.findall(text))
        for kind, name in _METER_API.findall(text):
            {"histogram": e.histograms, "gauge": e.gauges}.get(kind, e.counters).add(name)
        consts = dict(_STR_CONST.findall(text))
        for const, literal, kind, unit in _SPEC.findall(text):
            name = consts.get(const, literal)
            e.specs[name] = ({"Counter": "counter", "Histogram": "histogram", "Gauge": "gauge"}.get(kind, kind), unit)
    return e


# --- PromQL extraction ------------------------------------------------------------------------------
_PROM_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_PROM_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_PROM_MATCHERS = re.compile(r"\{([^}]*)\}")
_PROM_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_PROM_IDENT = re.compile(r"(?<![A-Za-z0-9_$:.])([A-Za-z_:][A-Za-z0-9_:]*)\b(?!\s*\()")
_PROM_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                  "offset", "inf", "nan"}


@dataclass
class PromRefs:
    metrics: set[str] = field(default_factory=set)
    labels: set[str] = field(default_factory=set)


def promql_refs(expr: str) -> PromRefs:
    r = PromRefs()
    for body in _PROM_MATCHERS.findall(_PROM_STRING.sub('""', expr)):
        r.labels.update(_PROM_LABEL.findall(body))
    plain = _PROM_MATCHERS.sub(" ", _PROM_STRING.sub('""', expr))
    for group in _PROM_GROUPING.findall(plain):
        r.labels.update(x.strip() for x in group.split(",") if x.strip())
    plain = _PROM_GROUPING.sub(" ", plain)
    plain = re.sub(r"\[[^\]]*\]", " ", plain)  # range selectors such as [7d] or [$__range]
    r.metrics.update(i for i in _PROM_IDENT.findall(plain) if i.lower() not in _PROM_KEYWORDS)
    return r


def dashboard_promql(dashboard: dict) -> list[str]:
    return [t["expr"] for p in iter_panels(dashboard.get("panels")) for t in p.get("targets", []) or []
            if isinstance(t.get("expr"), str)]


_LEGEND_LABEL = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def legend_problems(dashboard: dict, em: Emitted) -> list[str]:
    """`{{label}}` in a PromQL target's legend must be a label of the metrics its expression reads."""
    out = []
    table_labels = em.table_labels()
    for p in iter_panels(dashboard.get("panels")):
        for t in p.get("targets", []) or []:
            if not isinstance(t.get("expr"), str):
                continue
            known = promql_refs(t["expr"]).metrics & set(table_labels)
            labels = set().union(*(table_labels[m] for m in known)) | PROM_BUILTIN_LABELS
            for label in _LEGEND_LABEL.findall(t.get("legendFormat") or ""):
                if label not in labels:
                    out.append(f"panel {p.get('title')!r}: legend label {label!r} is not a label of "
                               f"{', '.join(sorted(known)) or 'its metrics'} in src/")
    return out


def alert_promql(alerts: dict) -> list[str]:
    return [d["model"]["expr"] for g in alerts.get("groups", []) for rule in g.get("rules", [])
            for d in rule.get("data", []) if isinstance(d.get("model", {}).get("expr"), str)]


def load_promql(dashboards_dir: Path) -> list[str]:
    out = []
    for f in sorted(dashboards_dir.glob("*.json")):
        out += dashboard_promql(json.loads(f.read_text(encoding="utf-8")))
    for f in sorted((dashboards_dir / "provisioning" / "alerting").glob("*.y*ml")):
        out += alert_promql(yaml.safe_load(f.read_text(encoding="utf-8")))
    return out


# Labels GreptimeDB adds itself: the histogram bucket bound, and the promoted service resource attributes.
PROM_BUILTIN_LABELS = {"le", "job", "instance", "__name__"}


def promql_problems(exprs: list[str], em: Emitted) -> list[str]:
    out = []
    tables = em.metric_tables()
    table_labels = em.table_labels()
    for expr in exprs:
        r = promql_refs(expr)
        for m in sorted(r.metrics - tables):
            out.append(f"PromQL metric {m!r} is not a name GreptimeDB gives any instrument in src/ ({expr[:80]})")
        # Labels of the metrics this expression reads (all metric labels when it names none the code has).
        known = sorted(r.metrics & tables)
        allowed = set().union(*(table_labels[m] for m in known)) if known else em.metric_labels
        for label in sorted(r.labels - allowed - PROM_BUILTIN_LABELS):
            where = f"of {', '.join(known)}" if known else "of any metric"
            out.append(f"PromQL label {label!r} is not an attribute {where} in src/ ({expr[:80]})")
    for name, kind in sorted(em.instruments().items()):
        if name not in em.specs:
            out.append(f"metric {name!r} is emitted but has no Spec (unit) in src/")
        elif em.specs[name][0] != kind:
            out.append(f"metric {name!r} is emitted as a {kind} but its Spec says {em.specs[name][0]}")
    return out


# --- the comparison ---------------------------------------------------------------------------------
def contract_problems(sql_list: list[str], em: Emitted) -> list[str]:
    refs = all_refs(sql_list)
    out = []
    for n in sorted(refs.span_names - em.span_names):
        out.append(f"span name {n!r} is queried but no tracing span of that name exists in src/")
    missing_span_attrs = refs.span_attrs - em.fields
    for a in sorted(missing_span_attrs):
        out.append(f"span attribute {a!r} is queried but never set as a span field in src/")
    # Per span: a query on one span name may only use attributes declared on that span (tracing can
    # only record fields declared when the span is created).
    for sql in sql_list:
        r = referenced(sql)
        if len(r.span_names) == 1:
            (name,) = r.span_names
            declared = em.span_fields.get(name, set())
            for a in sorted(r.span_attrs - declared - missing_span_attrs):
                problem = f"span attribute {a!r} is queried on span {name!r}, which does not declare it in src/"
                if problem not in out:
                    out.append(problem)
    for a in sorted(refs.log_attrs - em.fields):
        out.append(f"log attribute {a!r} is queried but never set as an event field in src/")
    for b in sorted(refs.bodies - set(em.event_fields)):
        out.append(f"log body {b!r} is queried but no tracing event in src/ has that message")
    # Per event: a query on one log body may only read the fields of the event with that message.
    for sql in sql_list:
        r = referenced(sql)
        if len(r.bodies) == 1 and r.bodies <= set(em.event_fields):
            (body,) = r.bodies
            for a in sorted(r.log_attrs - em.event_fields[body] - refs.log_attrs.difference(em.fields)):
                problem = f"log attribute {a!r} is queried on event {body!r}, which does not set it in src/"
                if problem not in out:
                    out.append(problem)
    for a in sorted(refs.resource_attrs - em.resource_attrs - em.fields):
        out.append(f"resource attribute {a!r} is queried but never set in src/")
    allowed_tables = {TRACE_TABLE, LOG_TABLE} | em.metric_tables()
    for t in sorted(refs.tables - allowed_tables):
        out.append(f"table {t!r} is neither {TRACE_TABLE}/{LOG_TABLE} nor a metric table the code produces")
    # Quoted columns: the fixed columns of the OTel tables, plus the label columns of the metric tables
    # that query reads (each metric has its own labels).
    known_columns = TRACE_COLUMNS | LOG_COLUMNS | METRIC_COLUMNS
    table_labels = em.table_labels()
    for sql in sql_list:
        r = referenced(sql)
        labels = set().union(*(table_labels.get(t, set()) for t in r.tables))
        for c in sorted(r.quoted_columns - known_columns - labels):
            where = f"nor a label of {', '.join(sorted(r.tables & set(table_labels)))}" if labels else ""
            problem = f"quoted column {c!r} is not a column of the GreptimeDB OTel tables {where}".rstrip()
            if problem not in out:
                out.append(problem)
    return out


def all_refs(sql_list: list[str]) -> Refs:
    refs = Refs()
    for sql in sql_list:
        refs.update(referenced(sql))
    return refs
