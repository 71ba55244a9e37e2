"""What the dashboards and alert rules query, and what the Rust sources emit.

`referenced(sql)` pulls span names, attribute keys, tables and quoted columns out of GreptimeDB SQL.
`emitted(src_dir)` pulls span names, tracing field names, recorded attributes, resource attributes
and metric instrument names out of the Rust sources (literal names, as written in the code).
`contract_problems(...)` compares the two.
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
_METRIC_FIELD = re.compile(r"\b(monotonic_counter|counter|histogram)\.([A-Za-z_][A-Za-z0-9_]*)")
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


@dataclass
class Emitted:
    span_names: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    resource_attrs: set[str] = field(default_factory=set)
    counters: set[str] = field(default_factory=set)
    histograms: set[str] = field(default_factory=set)
    # span name -> fields declared when the span is created (tracing can only `record` declared fields)
    span_fields: dict[str, set[str]] = field(default_factory=dict)

    def metric_tables(self) -> set[str]:
        """GreptimeDB's Prometheus-compatible names (TELEMETRY_FACTS §2.4): monotonic sum -> _total,
        histogram -> _bucket/_sum/_count (no unit suffix: the instruments carry no unit)."""
        tables = {f"{c}_total" for c in self.counters}
        for h in self.histograms:
            tables |= {f"{h}_bucket", f"{h}_sum", f"{h}_count"}
        return tables


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
            for kind, name in _METRIC_FIELD.findall(plain):
                (e.histograms if kind == "histogram" else e.counters).add(name)
        e.fields.update(_RECORD.findall(text))
        e.resource_attrs.update(_KEYVALUE.findall(text))
        for kind, name in _METER_API.findall(text):
            (e.histograms if kind == "histogram" else e.counters).add(name)
    return e


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
    for a in sorted(refs.resource_attrs - em.resource_attrs - em.fields):
        out.append(f"resource attribute {a!r} is queried but never set in src/")
    allowed_tables = {TRACE_TABLE, LOG_TABLE} | em.metric_tables()
    for t in sorted(refs.tables - allowed_tables):
        out.append(f"table {t!r} is neither {TRACE_TABLE}/{LOG_TABLE} nor a metric table the code produces")
    known_columns = TRACE_COLUMNS | LOG_COLUMNS | METRIC_COLUMNS
    for c in sorted(refs.quoted_columns - known_columns):
        out.append(f"quoted column {c!r} is not a column of the GreptimeDB OTel tables")
    return out


def all_refs(sql_list: list[str]) -> Refs:
    refs = Refs()
    for sql in sql_list:
        refs.update(referenced(sql))
    return refs
