//! A Grafana dashboard's JSON as the dashboard checks read it: its uid, its panels (rows
//! flattened) with each panel's datasource and queries, and its template variables, plus the
//! substitution of Grafana's variables (`$__rate_interval`, `${job}`, `[[job]]`) in a query so
//! that Prometheus and Loki can evaluate it directly. Pure: no I/O but reading the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// The uid of the 8-panel dashboard that deploy/ provisions.
pub const DEFAULT_UID: &str = "fastapi-dashboard";

/// The 8 panel titles, in the dashboard's order.
pub const PART7_TITLES: [&str; 8] = [
    "Total Requests",
    "Requests Per Minute",
    "Errors Per Second",
    "Average Response Time",
    "Request Duration P60",
    "CPU Usage",
    "Memory Usage",
    "Logger Stream",
];

/// What Grafana's interval variables become: the dashboard's 1 m windows at a 5 s scrape.
const INTERVAL: &str = "1m";

/// Why a dashboard file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The file cannot be read.
    #[error("cannot read dashboard {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("dashboard {} is not JSON: {detail}", .path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's complaint, with line and column.
        detail: String,
    },
    /// JSON, but not a dashboard.
    #[error("{origin} is not a Grafana dashboard: {detail}")]
    Shape {
        /// Where the JSON came from (a file, a URL).
        origin: String,
        /// What did not fit.
        detail: String,
    },
}

/// The kind of datasource a panel queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasourceType {
    /// PromQL.
    Prometheus,
    /// LogQL.
    Loki,
    /// TraceQL.
    Tempo,
    /// Anything else, by its plugin type or reference.
    Other(String),
}

impl DatasourceType {
    /// From a plugin type (`prometheus`) or, failing that, a name or uid that mentions one
    /// (`Prometheus`, `${DS_PROMETHEUS}`).
    fn guess(text: &str) -> Self {
        let lower = text.to_ascii_lowercase();
        if lower.contains("prom") {
            Self::Prometheus
        } else if lower.contains("loki") {
            Self::Loki
        } else if lower.contains("tempo") {
            Self::Tempo
        } else {
            Self::Other(text.to_owned())
        }
    }

    /// Lower-case name, as Grafana spells plugin types.
    pub fn name(&self) -> &str {
        match self {
            Self::Prometheus => "prometheus",
            Self::Loki => "loki",
            Self::Tempo => "tempo",
            Self::Other(other) => other,
        }
    }
}

/// One panel: what it shows and what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panel {
    /// The title shown on the dashboard.
    pub title: String,
    /// The datasource its queries go to.
    pub datasource_type: DatasourceType,
    /// The datasource uid it names, when it names one.
    pub datasource_uid: Option<String>,
    /// The visible queries (`expr` of each target not hidden), as written.
    pub queries: Vec<String>,
}

/// A dashboard: identity, panels and template variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    /// The uid, when the JSON has one.
    pub uid: Option<String>,
    /// The title.
    pub title: String,
    /// Every panel but rows, rows' children included, in order.
    pub panels: Vec<Panel>,
    /// Template variables (name to current or default value).
    pub variables: BTreeMap<String, String>,
}

impl Dashboard {
    /// Reads a dashboard JSON file: the dashboard model itself, or an API answer / export
    /// that wraps it in `{"dashboard": ...}`.
    pub fn from_file(path: &Path) -> Result<Self, DashboardError> {
        let text = std::fs::read_to_string(path).map_err(|source| DashboardError::Read {
            path: path.to_owned(),
            source,
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| DashboardError::Json {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
        Self::from_json(&value, &path.display().to_string())
    }

    /// Reads a dashboard from JSON; `origin` names it in errors.
    pub fn from_json(value: &Value, origin: &str) -> Result<Self, DashboardError> {
        let shape = |detail: &str| DashboardError::Shape {
            origin: origin.to_owned(),
            detail: detail.to_owned(),
        };
        let model = match value.get("dashboard") {
            Some(inner) if inner.is_object() => inner,
            _ => value,
        };
        if !model.is_object() {
            return Err(shape("expected a JSON object"));
        }
        let panels = match model.get("panels") {
            Some(Value::Array(items)) => flatten_panels(items),
            Some(Value::Null) | None => return Err(shape("it has no \"panels\" array")),
            Some(_) => return Err(shape("\"panels\" is not an array")),
        };
        Ok(Self {
            uid: text(model, "uid").filter(|u| !u.is_empty()),
            title: text(model, "title").unwrap_or_default(),
            panels,
            variables: variables(model),
        })
    }

    /// The titles of every panel, in order.
    pub fn titles(&self) -> Vec<&str> {
        self.panels.iter().map(|p| p.title.as_str()).collect()
    }

    /// The dashboard's variables plus Grafana's built-in ones for a time range of `range`.
    pub fn variables_for(&self, range: Duration) -> BTreeMap<String, String> {
        let mut all = builtins(range);
        for (name, value) in &self.variables {
            all.entry(name.clone()).or_insert_with(|| value.clone());
        }
        all
    }
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Panels in order; a row contributes its collapsed children, not itself.
fn flatten_panels(items: &[Value]) -> Vec<Panel> {
    let mut out = Vec::new();
    for item in items {
        if item.get("type").and_then(Value::as_str) == Some("row") {
            if let Some(Value::Array(children)) = item.get("panels") {
                out.extend(flatten_panels(children));
            }
        } else {
            out.push(panel(item));
        }
    }
    out
}

fn panel(item: &Value) -> Panel {
    let targets: Vec<&Value> = item
        .get("targets")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter(|t| !is_hidden(t)).collect())
        .unwrap_or_default();
    // A target's own datasource wins over the panel's (mixed panels name one per target).
    let reference = targets
        .iter()
        .filter_map(|t| t.get("datasource"))
        .chain(item.get("datasource"))
        .find(|d| !d.is_null() && !is_mixed(d));
    let panel_type = item.get("type").and_then(Value::as_str).unwrap_or_default();
    Panel {
        title: text(item, "title").unwrap_or_default(),
        datasource_type: reference.map_or_else(|| by_panel_type(panel_type), datasource_type),
        datasource_uid: reference.and_then(|d| match d {
            Value::Object(_) => text(d, "uid"),
            Value::String(s) => Some(s.clone()),
            _ => None,
        }),
        queries: targets.iter().filter_map(|t| query_of(t)).collect(),
    }
}

fn is_hidden(target: &Value) -> bool {
    target.get("hide").and_then(Value::as_bool) == Some(true)
}

/// `-- Mixed --` and `-- Dashboard --` are pseudo datasources, not where queries go.
fn is_mixed(reference: &Value) -> bool {
    let uid = match reference {
        Value::Object(_) => text(reference, "uid").unwrap_or_default(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    uid.starts_with("-- ")
}

/// A datasource reference: `{"type": "prometheus", "uid": "..."}` or, in old dashboards, a name.
fn datasource_type(reference: &Value) -> DatasourceType {
    match reference {
        Value::Object(_) => text(reference, "type")
            .or_else(|| text(reference, "uid"))
            .map_or(DatasourceType::Prometheus, |t| DatasourceType::guess(&t)),
        Value::String(name) => DatasourceType::guess(name),
        _ => DatasourceType::Prometheus,
    }
}

/// No datasource named: Grafana uses the default one, Prometheus in deploy/, and Loki for a
/// logs panel.
fn by_panel_type(panel_type: &str) -> DatasourceType {
    match panel_type {
        "logs" => DatasourceType::Loki,
        "traces" => DatasourceType::Tempo,
        _ => DatasourceType::Prometheus,
    }
}

/// The query text of a target: `expr` (Prometheus, Loki) or `query` (Tempo), when not blank.
fn query_of(target: &Value) -> Option<String> {
    ["expr", "query"]
        .iter()
        .find_map(|key| target.get(*key).and_then(Value::as_str))
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(str::to_owned)
}

/// Template variables: name to the current value, or the first option, or the query of a
/// constant / text box / custom variable.
fn variables(model: &Value) -> BTreeMap<String, String> {
    model
        .pointer("/templating/list")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|v| Some((text(v, "name")?, variable_value(v)?)))
                .collect()
        })
        .unwrap_or_default()
}

fn variable_value(variable: &Value) -> Option<String> {
    let current = variable.pointer("/current/value");
    let option = variable
        .get("options")
        .and_then(Value::as_array)
        .and_then(|o| o.first())
        .and_then(|o| o.get("value"));
    if let Some(value) = current.or(option).and_then(format_value) {
        return Some(value);
    }
    let query = text(variable, "query")?;
    match variable.get("type").and_then(Value::as_str) {
        Some("custom") => query.split(',').next().map(|q| q.trim().to_owned()),
        Some("constant" | "textbox" | "interval") => Some(query),
        _ => None,
    }
}

/// A variable's value as Grafana interpolates it into PromQL: one value as is, several as a
/// regex alternation, "All" as `.*`.
fn format_value(value: &Value) -> Option<String> {
    let values: Vec<&str> = match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => return None,
    };
    match values.as_slice() {
        [] => None,
        ["$__all"] => Some(".*".to_owned()),
        [one] => Some((*one).to_owned()),
        many => Some(format!("({})", many.join("|"))),
    }
}

/// Grafana's built-in variables for a dashboard time range of `range`.
fn builtins(range: Duration) -> BTreeMap<String, String> {
    let seconds = range.as_secs().max(1);
    [
        ("__rate_interval", INTERVAL.to_owned()),
        ("__interval", INTERVAL.to_owned()),
        ("__interval_ms", "60000".to_owned()),
        ("__range", format!("{seconds}s")),
        ("__range_s", seconds.to_string()),
        ("__range_ms", (seconds * 1000).to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Replaces `$name`, `${name}`, `${name:format}` and `[[name]]` by the variable's value.
/// Unknown names stay as written, as Grafana leaves them (`$1` in `label_replace`, a regex `$`).
pub fn substitute(query: &str, variables: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(at) = rest.find(['$', '[']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let replaced =
            reference(tail).and_then(|(name, len)| variables.get(name).map(|value| (value, len)));
        match replaced {
            Some((value, len)) => {
                out.push_str(value);
                rest = &tail[len..];
            }
            None => {
                // `$` and `[` are one byte each.
                out.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The variable name a reference at the start of `tail` names, and the reference's length.
fn reference(tail: &str) -> Option<(&str, usize)> {
    if let Some(inner) = tail.strip_prefix("${") {
        let end = inner.find('}')?;
        let name = inner[..end].split([':', '.']).next()?;
        return is_name(name).then_some((name, end + 3));
    }
    if let Some(inner) = tail.strip_prefix("[[") {
        let end = inner.find("]]")?;
        let name = inner[..end].split(':').next()?;
        return is_name(name).then_some((name, end + 4));
    }
    let inner = tail.strip_prefix('$')?;
    let len = inner
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    (len > 0).then(|| (&inner[..len], len + 1))
}

fn is_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEPLOYED: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/dashboards/fastapi-dashboard.json"
    );

    fn deployed() -> Dashboard {
        Dashboard::from_file(Path::new(DEPLOYED)).expect("the deployed dashboard parses")
    }

    #[test]
    fn the_deployed_dashboard_has_the_eight_part7_panels() {
        let dashboard = deployed();
        assert_eq!(dashboard.uid.as_deref(), Some(DEFAULT_UID));
        assert_eq!(dashboard.titles(), PART7_TITLES.to_vec());
    }

    #[test]
    fn the_deployed_dashboard_has_seven_promql_panels_and_one_loki_panel() {
        let dashboard = deployed();
        for panel in &dashboard.panels {
            assert_eq!(panel.queries.len(), 1, "{}", panel.title);
            assert!(
                panel.queries.iter().all(|q| !q.is_empty()),
                "{}",
                panel.title
            );
        }
        let loki: Vec<&Panel> = dashboard
            .panels
            .iter()
            .filter(|p| p.datasource_type == DatasourceType::Loki)
            .collect();
        assert_eq!(loki.len(), 1);
        assert_eq!(loki[0].title, "Logger Stream");
        assert_eq!(loki[0].queries, vec![r#"{service="fastapi-backend"}"#]);
        assert_eq!(loki[0].datasource_uid.as_deref(), Some("loki"));
        let prometheus = dashboard
            .panels
            .iter()
            .filter(|p| p.datasource_type == DatasourceType::Prometheus)
            .count();
        assert_eq!(prometheus, 7);
    }

    #[test]
    fn an_api_answer_is_read_like_the_bare_model() {
        let model = json!({"uid": "u", "title": "T", "panels": [{"title": "A", "targets": [{"expr": "up"}]}]});
        let wrapped = json!({"dashboard": model.clone(), "meta": {"url": "/d/u/t"}});
        assert_eq!(
            Dashboard::from_json(&model, "m").expect("bare"),
            Dashboard::from_json(&wrapped, "w").expect("wrapped")
        );
    }

    #[test]
    fn rows_are_flattened_and_hidden_targets_ignored() {
        let model = json!({"panels": [
            {"type": "row", "title": "Row", "collapsed": true, "panels": [
                {"type": "timeseries", "title": "Inner", "targets": [
                    {"expr": "up", "hide": true}, {"expr": "  sum(up)  "}
                ]}
            ]},
            {"type": "text", "title": "Notes"}
        ]});
        let dashboard = Dashboard::from_json(&model, "test").expect("parses");
        assert_eq!(dashboard.titles(), vec!["Inner", "Notes"]);
        assert_eq!(dashboard.panels[0].queries, vec!["sum(up)"]);
        assert!(dashboard.panels[1].queries.is_empty());
    }

    #[test]
    fn datasource_type_comes_from_the_target_the_panel_or_the_panel_type() {
        let model = json!({"panels": [
            {"title": "a", "datasource": "${DS_LOKI}", "targets": [{"expr": "{a=\"b\"}"}]},
            {"title": "b", "datasource": {"type": "datasource", "uid": "-- Mixed --"},
             "targets": [{"datasource": {"type": "tempo", "uid": "t"}, "query": "{}"}]},
            {"title": "c", "type": "logs", "targets": [{"expr": "{a=\"b\"}"}]},
            {"title": "d", "targets": [{"expr": "up"}]}
        ]});
        let types: Vec<DatasourceType> = Dashboard::from_json(&model, "test")
            .expect("parses")
            .panels
            .into_iter()
            .map(|p| p.datasource_type)
            .collect();
        assert_eq!(
            types,
            vec![
                DatasourceType::Loki,
                DatasourceType::Tempo,
                DatasourceType::Loki,
                DatasourceType::Prometheus
            ]
        );
    }

    #[test]
    fn not_a_dashboard_is_a_clear_error() {
        for (value, needle) in [
            (json!([1, 2]), "expected a JSON object"),
            (json!({"title": "x"}), "no \"panels\""),
            (json!({"panels": {}}), "not an array"),
        ] {
            let error = Dashboard::from_json(&value, "f.json").expect_err("not a dashboard");
            let message = error.to_string();
            assert!(
                message.contains("f.json") && message.contains(needle),
                "{message}"
            );
        }
    }

    #[test]
    fn a_file_that_is_not_json_names_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("broken.json");
        std::fs::write(&path, "{\n  \"panels\": [,]\n}").expect("write");
        let message = Dashboard::from_file(&path).expect_err("broken").to_string();
        assert!(
            message.contains("broken.json") && message.contains("line 2"),
            "{message}"
        );
        let missing = dir.path().join("missing.json");
        assert!(matches!(
            Dashboard::from_file(&missing),
            Err(DashboardError::Read { .. })
        ));
    }

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut all = builtins(Duration::from_secs(900));
        all.extend(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        all
    }

    #[test]
    fn grafana_interval_variables_become_one_minute_and_the_range_the_window() {
        let v = vars(&[]);
        assert_eq!(
            substitute("rate(x[$__rate_interval]) + rate(y[$__interval])", &v),
            "rate(x[1m]) + rate(y[1m])"
        );
        assert_eq!(substitute("increase(x[$__range])", &v), "increase(x[900s])");
        assert_eq!(substitute("x / $__interval_ms", &v), "x / 60000");
    }

    #[test]
    fn template_variables_take_every_syntax_and_unknown_ones_stay() {
        let v = vars(&[("job", "fastapi-backend")]);
        assert_eq!(
            substitute(
                r#"up{job="$job"} + up{job="${job}"} + up{job="[[job]]"} + up{job="${job:raw}"}"#,
                &v
            ),
            r#"up{job="fastapi-backend"} + up{job="fastapi-backend"} + up{job="fastapi-backend"} + up{job="fastapi-backend"}"#
        );
        let untouched =
            r#"label_replace(up, "x", "$1", "instance", "(.*):.*$") + x[5m] + y{a=~"b$"}"#;
        assert_eq!(substitute(untouched, &v), untouched);
        assert_eq!(substitute("$ ${ [[ $", &v), "$ ${ [[ $");
    }

    #[test]
    fn variable_values_come_from_current_options_or_query() {
        let model = json!({"panels": [], "templating": {"list": [
            {"name": "job", "type": "query", "current": {"text": "api", "value": "fastapi-backend"}},
            {"name": "many", "type": "custom", "current": {"value": ["a", "b"]}},
            {"name": "all", "type": "query", "current": {"value": ["$__all"]}},
            {"name": "first", "type": "custom", "query": "x, y"},
            {"name": "opt", "type": "query", "options": [{"value": "o1"}, {"value": "o2"}]},
            {"name": "none", "type": "query"}
        ]}});
        let dashboard = Dashboard::from_json(&model, "test").expect("parses");
        let expected: BTreeMap<String, String> = [
            ("all", ".*"),
            ("first", "x"),
            ("job", "fastapi-backend"),
            ("many", "(a|b)"),
            ("opt", "o1"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(dashboard.variables, expected);
        let all = dashboard.variables_for(Duration::from_secs(60));
        assert_eq!(all.get("__range").map(String::as_str), Some("60s"));
        assert_eq!(all.get("job").map(String::as_str), Some("fastapi-backend"));
    }

    #[test]
    fn the_deployed_queries_need_no_substitution() {
        let dashboard = deployed();
        let all = dashboard.variables_for(Duration::from_secs(900));
        for query in dashboard.panels.iter().flat_map(|p| &p.queries) {
            assert_eq!(&substitute(query, &all), query);
        }
    }
}
