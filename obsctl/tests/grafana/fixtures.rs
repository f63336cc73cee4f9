//! Grafana's documented answers, and a fake Grafana that replays them, one route at a time
//! replaceable so that each test breaks exactly one thing.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::helpers::{FakeServer, Reply, deployed_dashboard};

// https://grafana.com/docs/grafana/latest/developers/http_api/other/#health-api
// (the documented example response, verbatim).
pub const HEALTH: &str = r#"{
  "commit": "087143285",
  "database": "ok",
  "version": "5.1.3"
}"#;

// https://grafana.com/docs/grafana/latest/developers/http_api/other/#health-api: "If the
// database cannot be accessed it will return http status code 503" (same body, database
// "failing", as Grafana's apiHealthHandler writes it).
pub const HEALTH_DB_FAILING: &str = r#"{
  "commit": "087143285",
  "database": "failing",
  "version": "5.1.3"
}"#;

// https://grafana.com/docs/grafana/latest/developers/http_api/data_source/#get-all-data-sources
// The documented example (an elasticsearch datasource; the comma the doc misses after "uid" is
// restored), followed by the three datasources deploy/grafana/provisioning/datasources defines,
// in the same documented shape.
pub const DATASOURCES: &str = r#"[
   {
     "id": 1,
     "orgId": 1,
     "uid": "H8joYFVGz",
     "name": "datasource_elastic",
     "type": "elasticsearch",
     "typeLogoUrl": "public/app/plugins/datasource/elasticsearch/img/elasticsearch.svg",
     "access": "proxy",
     "url": "http://mydatasource.com",
     "password": "",
     "user": "",
     "database": "grafana-dash",
     "basicAuth": false,
     "isDefault": false,
     "jsonData": {
         "esVersion": 5,
         "logLevelField": "",
         "logMessageField": "",
         "maxConcurrentShardRequests": 256,
         "timeField": "@timestamp"
     },
     "readOnly": false
   },
   {
     "id": 2, "orgId": 1, "uid": "prometheus", "name": "Prometheus", "type": "prometheus",
     "typeLogoUrl": "public/app/plugins/datasource/prometheus/img/prometheus_logo.svg",
     "access": "proxy", "url": "http://prometheus:9090", "password": "", "user": "",
     "database": "", "basicAuth": false, "isDefault": true,
     "jsonData": {"httpMethod": "POST", "timeInterval": "5s"}, "readOnly": true
   },
   {
     "id": 3, "orgId": 1, "uid": "loki", "name": "Loki", "type": "loki",
     "typeLogoUrl": "public/app/plugins/datasource/loki/img/loki_icon.svg",
     "access": "proxy", "url": "http://loki:3100", "password": "", "user": "",
     "database": "", "basicAuth": false, "isDefault": false,
     "jsonData": {"maxLines": 1000}, "readOnly": true
   },
   {
     "id": 4, "orgId": 1, "uid": "tempo", "name": "Tempo", "type": "tempo",
     "typeLogoUrl": "public/app/plugins/datasource/tempo/img/tempo_logo.svg",
     "access": "proxy", "url": "http://tempo:3200", "password": "", "user": "",
     "database": "", "basicAuth": false, "isDefault": false,
     "jsonData": {}, "readOnly": true
   }
]"#;

// `GET /api/datasources/uid/:uid/health` (Grafana 9+), listed at
// https://grafana.com/docs/grafana/latest/developers/http_api/data_source/ ; the body is
// `{"status", "message"}` as Grafana's pkg/api/plugins.go (checkDatasourceHealth) writes it:
// HTTP 200 when the status is OK, HTTP 400 with the same shape otherwise.
pub const DS_HEALTH_OK: &str =
    r#"{"message":"Successfully queried the Prometheus API.","status":"OK"}"#;
pub const DS_HEALTH_ERROR: &str = r#"{"message":"Unable to connect with Loki. Please check the server logs for more details.","status":"ERROR"}"#;

// What Grafana answers for a route it does not have (Grafana before 9 has no datasource health
// route) and for an unknown dashboard uid (status codes documented at
// https://grafana.com/docs/grafana/latest/developers/http_api/dashboard/#get-dashboard-by-uid).
pub const NOT_FOUND: &str = r#"{"message":"Not found"}"#;
pub const DASHBOARD_NOT_FOUND: &str = r#"{"message":"Dashboard not found"}"#;

// 401, documented for every endpoint (e.g.
// https://grafana.com/docs/grafana/latest/developers/http_api/dashboard/#get-dashboard-by-uid);
// the body as Grafana 10+ writes it.
pub const UNAUTHORIZED: &str = r#"{"extra":null,"message":"Unauthorized","messageId":"auth.unauthorized","statusCode":401,"traceID":""}"#;

// What an authenticating proxy (or Grafana's own /login redirect) serves instead of the API.
pub const LOGIN_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><title>Grafana</title></head>\
<body><form action=\"/login\" method=\"post\"><input name=\"user\"><input name=\"password\" \
type=\"password\"></form></body></html>";

// https://grafana.com/docs/grafana/latest/developers/http_api/dashboard/#get-dashboard-by-uid
// The documented envelope ({"dashboard": ..., "meta": ...}, the doc's `//deprecated` comment
// dropped since JSON has none) around `model`, the dashboard as provisioned.
pub fn dashboard_envelope(model: &Value) -> String {
    json!({
        "dashboard": model,
        "meta": {
            "isStarred": false,
            "url": "/d/fastapi-dashboard/fastapi-dashboard",
            "folderId": 0,
            "folderUid": "",
            "slug": "fastapi-dashboard",
            "provisioned": true
        }
    })
    .to_string()
}

/// The dashboard JSON that deploy/ provisions.
pub fn deployed_model() -> Value {
    let text = std::fs::read_to_string(deployed_dashboard()).expect("read the deployed dashboard");
    serde_json::from_str(&text).expect("the deployed dashboard is JSON")
}

/// What the fake Grafana answers on each route.
#[derive(Debug, Clone)]
pub struct Script {
    /// `/api/health`.
    pub health: Reply,
    /// `/api/datasources`.
    pub datasources: Reply,
    /// `/api/datasources/uid/{uid}/health` by uid; 404 for the others.
    pub datasource_health: BTreeMap<String, Reply>,
    /// The dashboard uid that exists; others are 404.
    pub dashboard_uid: String,
    /// `/api/dashboards/uid/{dashboard_uid}`.
    pub dashboard: Reply,
    /// When set, every request without exactly this `Authorization` header is 401.
    pub authorization: Option<String>,
}

impl Default for Script {
    /// A Grafana provisioned from deploy/, everything healthy.
    fn default() -> Self {
        let ok = Reply::json(DS_HEALTH_OK);
        Self {
            health: Reply::json(HEALTH),
            datasources: Reply::json(DATASOURCES),
            datasource_health: ["prometheus", "loki", "tempo", "H8joYFVGz"]
                .iter()
                .map(|uid| ((*uid).to_owned(), ok.clone()))
                .collect(),
            dashboard_uid: "fastapi-dashboard".to_owned(),
            dashboard: Reply::json(&dashboard_envelope(&deployed_model())),
            authorization: None,
        }
    }
}

impl Script {
    /// The same Grafana serving `model` as its dashboard.
    pub fn with_dashboard(mut self, model: &Value) -> Self {
        self.dashboard = Reply::json(&dashboard_envelope(model));
        self
    }

    fn answer(&self, path: &str) -> Reply {
        let not_found = || Reply::with(404, "application/json", NOT_FOUND);
        if path == "/api/health" {
            return self.health.clone();
        }
        if path == "/api/datasources" {
            return self.datasources.clone();
        }
        if let Some(uid) = path
            .strip_prefix("/api/datasources/uid/")
            .and_then(|rest| rest.strip_suffix("/health"))
        {
            return self
                .datasource_health
                .get(uid)
                .cloned()
                .unwrap_or_else(not_found);
        }
        match path.strip_prefix("/api/dashboards/uid/") {
            Some(uid) if uid == self.dashboard_uid => self.dashboard.clone(),
            Some(_) => Reply::with(404, "application/json", DASHBOARD_NOT_FOUND),
            None => not_found(),
        }
    }
}

/// A fake Grafana playing `script`.
pub async fn fake_grafana(script: Script) -> FakeServer {
    FakeServer::start(move |seen| {
        let authorized = script
            .authorization
            .as_ref()
            .is_none_or(|expected| seen.headers.get("authorization") == Some(expected));
        if authorized {
            script.answer(&seen.path)
        } else {
            Reply::with(401, "application/json", UNAUTHORIZED)
        }
    })
    .await
}
