//! The Grafana HTTP API, read only: server health (`/api/health`), the datasources
//! (`/api/datasources`) and each one's own health check (`/api/datasources/uid/{uid}/health`,
//! Grafana 9 and later), and a dashboard by uid (`/api/dashboards/uid/{uid}`).
//!
//! Grafana answers 401 to API calls without credentials unless anonymous access is on: that is
//! [`GrafanaError::Unauthorized`], whose message says how to pass credentials. The dashboard is
//! returned as JSON; `check::dashboard` reads its panels.

use serde::Deserialize;
use serde_json::Value;

use super::auth::Auth;
use super::http::{Evidence, HttpClient, HttpResponse, SourceError, join};

/// How obsctl authenticates to Grafana: anonymous, a Grafana user (basic auth), or a
/// service-account token (bearer); the same credentials as every source's (see [`Auth`]).
pub type GrafanaAuth = Auth;

/// Why a Grafana call gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum GrafanaError {
    /// Transport, status or decoding failure (an HTML login page is [`SourceError::HtmlPage`]).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// HTTP 401: no credentials, or credentials Grafana refused.
    #[error("{}", unauthorized_message(.evidence, *.credentials_sent))]
    Unauthorized {
        /// The exchange.
        evidence: Evidence,
        /// Whether credentials were sent (then they were refused).
        credentials_sent: bool,
    },
    /// HTTP 403: the user may not read this.
    #[error("Grafana refused access to {url} (HTTP 403): the user lacks the permission to read it (Viewer role, or datasources:read / dashboards:read)", url = .0.url)]
    Forbidden(Evidence),
    /// No dashboard has this uid (HTTP 404).
    #[error("Grafana has no dashboard with uid {uid:?} (HTTP 404 from {url})", url = .evidence.url)]
    DashboardNotFound {
        /// The uid asked.
        uid: String,
        /// The exchange.
        evidence: Evidence,
    },
    /// The answer is JSON but not shaped as documented.
    #[error("unexpected Grafana answer from {url}: {detail}", url = .evidence.url)]
    Unexpected {
        /// What did not fit.
        detail: String,
        /// The exchange.
        evidence: Evidence,
    },
}

impl GrafanaError {
    /// Whether Grafana wants other credentials (401 or 403).
    pub fn is_auth(&self) -> bool {
        matches!(self, Self::Unauthorized { .. } | Self::Forbidden(_))
    }
}

fn unauthorized_message(evidence: &Evidence, credentials_sent: bool) -> String {
    if credentials_sent {
        format!(
            "Grafana refused the credentials given (HTTP 401 from {}): check --grafana-user USER:PASSWORD (GRAFANA_AUTH) or --grafana-token TOKEN (GRAFANA_TOKEN)",
            evidence.url
        )
    } else {
        format!(
            "Grafana requires a login (HTTP 401 from {}): pass --grafana-user USER:PASSWORD (or set GRAFANA_AUTH) or --grafana-token TOKEN (GRAFANA_TOKEN), or enable anonymous access",
            evidence.url
        )
    }
}

/// The answer of `/api/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Grafana's version, e.g. `11.2.0`.
    pub version: String,
    /// The build's commit.
    pub commit: String,
    /// `ok` when Grafana can use its database (`failing` otherwise, with HTTP 503).
    pub database: String,
    /// The exchange.
    pub evidence: Evidence,
}

impl Health {
    /// Whether Grafana reports its database usable.
    pub fn database_ok(&self) -> bool {
        self.database == "ok"
    }
}

/// One datasource as `/api/datasources` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Datasource {
    /// Stable identifier (empty on Grafana before 7, which had none).
    #[serde(default)]
    pub uid: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Plugin type: `prometheus`, `loki`, `tempo`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The URL Grafana reaches the backend at (as seen from Grafana).
    #[serde(default)]
    pub url: String,
}

/// The answer of `/api/datasources`.
#[derive(Debug, Clone)]
pub struct Datasources {
    /// Every datasource the user may read.
    pub list: Vec<Datasource>,
    /// The exchange.
    pub evidence: Evidence,
}

impl Datasources {
    /// The datasource of plugin type `kind`: the one whose uid is `kind` when several exist (as
    /// deploy/ provisions them), else the first.
    pub fn of_type(&self, kind: &str) -> Option<&Datasource> {
        let mut matching = self.list.iter().filter(|d| d.kind == kind);
        self.list
            .iter()
            .find(|d| d.kind == kind && d.uid == kind)
            .or_else(|| matching.next())
    }
}

/// What a datasource's health check says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthStatus {
    /// `"status": "OK"`: Grafana reached the backend and it answered as expected.
    Ok,
    /// Any other status (`ERROR`, `UNKNOWN`), as Grafana spelled it.
    Failing(String),
    /// No health endpoint (Grafana before 9, or a plugin without a health check): not a failure.
    Unknown,
}

/// The answer of `/api/datasources/uid/{uid}/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasourceHealth {
    /// The verdict.
    pub status: HealthStatus,
    /// Grafana's message (e.g. "Successfully queried the Prometheus API.").
    pub message: String,
    /// The exchange.
    pub evidence: Evidence,
}

/// The answer of `/api/dashboards/uid/{uid}`.
#[derive(Debug, Clone)]
pub struct DashboardDoc {
    /// The dashboard model (`panels`, `templating`, ...).
    pub dashboard: Value,
    /// Grafana's metadata (`url`, `folderUid`, `provisioned`, ...).
    pub meta: Value,
    /// The exchange.
    pub evidence: Evidence,
}

#[derive(Debug, Deserialize)]
struct HealthBody {
    #[serde(default)]
    version: String,
    #[serde(default)]
    commit: String,
    #[serde(default)]
    database: String,
}

#[derive(Debug, Deserialize)]
struct DatasourceHealthBody {
    status: String,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize)]
struct DashboardBody {
    dashboard: Value,
    #[serde(default)]
    meta: Value,
}

/// A Grafana server's HTTP API.
#[derive(Debug, Clone)]
pub struct Grafana {
    client: HttpClient,
    base: String,
    auth: GrafanaAuth,
}

impl Grafana {
    /// The API of the server at `base` (e.g. `http://127.0.0.1:3000`), without credentials.
    pub fn new(client: HttpClient, base: impl Into<String>) -> Self {
        Self {
            client,
            base: base.into(),
            auth: GrafanaAuth::Anonymous,
        }
    }

    /// The same API, authenticating with `auth`.
    pub fn with_auth(mut self, auth: GrafanaAuth) -> Self {
        self.auth = auth;
        self
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Server health: version and whether the database is usable (HTTP 503 when it is not).
    pub async fn health(&self) -> Result<Health, GrafanaError> {
        let response = self.fetch("/api/health").await?;
        let body: HealthBody = response.json()?;
        let evidence = response.evidence();
        if !response.is_success() && body.database.is_empty() {
            return Err(SourceError::Status(evidence).into());
        }
        Ok(Health {
            version: body.version,
            commit: body.commit,
            database: body.database,
            evidence,
        })
    }

    /// Every datasource the user may read.
    pub async fn datasources(&self) -> Result<Datasources, GrafanaError> {
        let response = self.fetch("/api/datasources").await?;
        let list = response.json_success::<Vec<Datasource>>()?;
        Ok(Datasources {
            list,
            evidence: response.evidence(),
        })
    }

    /// The health check of the datasource `uid` (Grafana asks the backend it points at).
    pub async fn datasource_health(&self, uid: &str) -> Result<DatasourceHealth, GrafanaError> {
        let path = format!("/api/datasources/uid/{}/health", encode_segment(uid));
        let response = self.fetch(&path).await?;
        let evidence = response.evidence();
        if response.status == 404 {
            return Ok(DatasourceHealth {
                status: HealthStatus::Unknown,
                message: "no health endpoint (Grafana before 9, or a plugin without health check)"
                    .to_owned(),
                evidence,
            });
        }
        // A failing check is HTTP 400 with the same body shape: read the body whatever the status.
        let body: DatasourceHealthBody = response.json()?;
        let status = if body.status.eq_ignore_ascii_case("ok") {
            HealthStatus::Ok
        } else {
            HealthStatus::Failing(body.status)
        };
        Ok(DatasourceHealth {
            status,
            message: body.message,
            evidence,
        })
    }

    /// The dashboard `uid`; [`GrafanaError::DashboardNotFound`] when there is none.
    pub async fn dashboard(&self, uid: &str) -> Result<DashboardDoc, GrafanaError> {
        let path = format!("/api/dashboards/uid/{}", encode_segment(uid));
        let response = self.fetch(&path).await?;
        let evidence = response.evidence();
        if response.status == 404 {
            return Err(GrafanaError::DashboardNotFound {
                uid: uid.to_owned(),
                evidence,
            });
        }
        let body: DashboardBody = response.json_success()?;
        if !body.dashboard.is_object() {
            return Err(GrafanaError::Unexpected {
                detail: "\"dashboard\" is not an object".to_owned(),
                evidence,
            });
        }
        Ok(DashboardDoc {
            dashboard: body.dashboard,
            meta: body.meta,
            evidence,
        })
    }

    /// GET an API path with the credentials; 401 and 403 become their own errors.
    async fn fetch(&self, path: &str) -> Result<HttpResponse, GrafanaError> {
        let authorization = self.auth.header();
        let headers: Vec<(&str, &str)> = authorization
            .as_deref()
            .map(|value| ("authorization", value))
            .into_iter()
            .collect();
        let response = self
            .client
            .get_with_headers(
                &join(&self.base, path),
                &[],
                Some("application/json"),
                &headers,
            )
            .await?;
        match response.status {
            401 => Err(GrafanaError::Unauthorized {
                evidence: response.evidence(),
                credentials_sent: !self.auth.is_anonymous(),
            }),
            403 => Err(GrafanaError::Forbidden(response.evidence())),
            _ => Ok(response),
        }
    }
}

/// Percent-encode a path segment (uids are `[a-zA-Z0-9_-]`, but a user may pass anything).
fn encode_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_keep_colons_in_the_password() {
        let auth = GrafanaAuth::basic("admin:s3:cret").expect("valid");
        assert_eq!(
            auth,
            GrafanaAuth::Basic {
                user: "admin".into(),
                password: "s3:cret".into()
            }
        );
        assert_eq!(auth.header().as_deref(), Some("Basic YWRtaW46czM6Y3JldA=="));
    }

    #[test]
    fn malformed_credentials_are_rejected_before_any_request() {
        assert!(GrafanaAuth::basic("admin").is_err());
        assert!(GrafanaAuth::basic(":pw").is_err());
        assert!(GrafanaAuth::bearer("  ").is_err());
        assert!(GrafanaAuth::bearer("tok\nen").is_err());
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let basic = format!("{:?}", GrafanaAuth::basic("admin:hunter2").expect("valid"));
        let bearer = format!("{:?}", GrafanaAuth::bearer("glsa_secret").expect("valid"));
        assert!(
            !basic.contains("hunter2") && basic.contains("admin"),
            "{basic}"
        );
        assert!(!bearer.contains("glsa_secret"), "{bearer}");
    }

    #[test]
    fn uids_are_encoded_as_one_path_segment() {
        assert_eq!(encode_segment("fastapi-dashboard"), "fastapi-dashboard");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
