//! Credentials and tenants per source, through the obsctl binary over HTTPS: each server gets
//! its own basic auth or bearer token and `X-Scope-OrgID`, from flags, environment variables, a
//! URL's userinfo or obsctl.toml; and no secret ever shows in stdout, stderr, or the text, JSON
//! and JUnit reports.

use base64::Engine as _;

use crate::helpers::{Reply, Seen};
use crate::tls_support::{HttpsServer, Pki, obsctl, said};

const METRICS_TOKEN: &str = "metrics-s3cret-token";
const PROMETHEUS_PASSWORD: &str = "prom-s3cret-pw";
const LOKI_PASSWORD: &str = "loki-s3cret-pw";
const TEMPO_TOKEN: &str = "tempo-s3cret-token";
const GRAFANA_TOKEN: &str = "glsa_s3cret";

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// Every string that must never be printed: the secrets and their basic-auth encodings.
fn secrets() -> Vec<String> {
    vec![
        METRICS_TOKEN.to_owned(),
        PROMETHEUS_PASSWORD.to_owned(),
        LOKI_PASSWORD.to_owned(),
        TEMPO_TOKEN.to_owned(),
        GRAFANA_TOKEN.to_owned(),
        basic("prom", PROMETHEUS_PASSWORD),
        basic("svc", LOKI_PASSWORD),
    ]
}

/// The header `name` of every request a server saw.
fn headers(seen: &[Seen], name: &str) -> Vec<Option<String>> {
    seen.iter().map(|s| s.headers.get(name).cloned()).collect()
}

/// Asserts that `server` was asked, and always with `authorization` and `tenant`.
fn assert_carried(what: &str, seen: &[Seen], authorization: &str, tenant: Option<&str>) {
    assert!(!seen.is_empty(), "{what} was never asked");
    for value in headers(seen, "authorization") {
        assert_eq!(
            value.as_deref(),
            Some(authorization),
            "{what}: Authorization"
        );
    }
    for value in headers(seen, "x-scope-orgid") {
        assert_eq!(value.as_deref(), tenant, "{what}: X-Scope-OrgID");
    }
}

/// Documented answers, enough for each check to run.
fn stack_reply(seen: &Seen) -> Reply {
    match seen.path.as_str() {
        // https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries
        "/api/v1/query" | "/api/v1/query_range" => {
            Reply::json(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#)
        }
        // https://prometheus.io/docs/prometheus/latest/querying/api/#targets
        "/api/v1/targets" => {
            Reply::json(r#"{"status":"success","data":{"activeTargets":[],"droppedTargets":[]}}"#)
        }
        // https://grafana.com/docs/loki/latest/reference/loki-http-api/#query-labels
        p if p.starts_with("/loki/api/v1/label") => {
            Reply::json(r#"{"status":"success","data":[]}"#)
        }
        "/loki/api/v1/query_range" => {
            Reply::json(r#"{"status":"success","data":{"resultType":"streams","result":[]}}"#)
        }
        // https://grafana.com/docs/tempo/latest/api_docs/#search
        "/api/search" => Reply::json(r#"{"traces":[]}"#),
        // https://grafana.com/docs/grafana/latest/developers/http_api/other/#health-api
        "/api/health" => Reply::json(r#"{"commit":"abc","database":"ok","version":"11.2.0"}"#),
        "/api/datasources" => Reply::json("[]"),
        "/metrics" => Reply::with(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            "# TYPE up gauge\nup 1\n",
        ),
        _ => Reply::with(200, "text/plain", "ready"),
    }
}

/// The five servers of one run.
struct Stack {
    target: HttpsServer,
    prometheus: HttpsServer,
    loki: HttpsServer,
    tempo: HttpsServer,
    grafana: HttpsServer,
}

impl Stack {
    async fn start(pki: &Pki) -> Self {
        Self {
            target: HttpsServer::start(pki, false, stack_reply).await,
            prometheus: HttpsServer::start(pki, false, stack_reply).await,
            // Loki answers its label queries with an error whose evidence names its URL.
            loki: HttpsServer::start(pki, false, |seen| match seen.path.as_str() {
                p if p.starts_with("/loki/api/v1/label") => {
                    Reply::with(503, "text/plain", "too many outstanding requests")
                }
                _ => stack_reply(seen),
            })
            .await,
            tempo: HttpsServer::start(pki, false, stack_reply).await,
            grafana: HttpsServer::start(pki, false, stack_reply).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_source_gets_its_credentials_and_tenant_and_no_report_shows_them() {
    let pki = Pki::new();
    let ca = pki.ca.display().to_string();
    for format in ["text", "json", "junit"] {
        let stack = Stack::start(&pki).await;
        let loki = stack
            .loki
            .url()
            .replace("https://", &format!("https://svc:{LOKI_PASSWORD}@"));
        let prometheus_user = format!("prom:{PROMETHEUS_PASSWORD}");
        let out = obsctl(
            pki.dir.path(),
            &[
                "check",
                "--target",
                &stack.target.url(),
                "--metrics-token",
                METRICS_TOKEN,
                "--prometheus",
                &stack.prometheus.url(),
                "--prometheus-user",
                &prometheus_user,
                "--prometheus-tenant",
                "team-prom",
                "--loki",
                &loki,
                "--tempo",
                &stack.tempo.url(),
                "--tempo-tenant",
                "team-t",
                "--grafana",
                &stack.grafana.url(),
                "--grafana-token",
                GRAFANA_TOKEN,
                "--cacert",
                &ca,
                "--timeout",
                "0s",
                "--format",
                format,
            ],
            &[("LOKI_TENANT", "team-a"), ("TEMPO_TOKEN", TEMPO_TOKEN)],
        )
        .await;
        let output = said(&out);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{format}: the checks ran: {output}"
        );
        for secret in secrets() {
            assert!(
                !output.contains(&secret),
                "{format} shows {secret:?}:\n{output}"
            );
        }
        // Loki's error names it by its URL, the userinfo removed.
        assert!(output.contains(&stack.loki.url()), "{format}: {output}");
        assert_carried(
            "the target",
            &stack.target.seen(),
            &format!("Bearer {METRICS_TOKEN}"),
            None,
        );
        assert_carried(
            "Prometheus",
            &stack.prometheus.seen(),
            &basic("prom", PROMETHEUS_PASSWORD),
            Some("team-prom"),
        );
        assert_carried(
            "Loki",
            &stack.loki.seen(),
            &basic("svc", LOKI_PASSWORD),
            Some("team-a"),
        );
        assert_carried(
            "Tempo",
            &stack.tempo.seen(),
            &format!("Bearer {TEMPO_TOKEN}"),
            Some("team-t"),
        );
        assert_carried(
            "Grafana",
            &stack.grafana.seen(),
            &format!("Bearer {GRAFANA_TOKEN}"),
            None,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obsctl_toml_gives_sources_credentials_and_tls_and_flags_win() {
    let pki = Pki::new();
    let stack = Stack::start(&pki).await;
    // `cacert` is relative to the file, which lives beside ca.pem.
    let file = format!(
        "[checks]\nmetrics-cardinality = \"deny\"\n\
         [sources.prometheus]\nurl = \"{}\"\ntoken_env = \"CI_PROM_TOKEN\"\ntenant = \"file-tenant\"\n\
         [sources.loki]\nurl = \"{}\"\ntenant = \"team-a\"\nuser_env = \"CI_LOKI_AUTH\"\n\
         [sources.grafana]\nurl = \"{}\"\ntoken = \"{GRAFANA_TOKEN}\"\n\
         [tls]\ncacert = \"ca.pem\"\n",
        stack.prometheus.url(),
        stack.loki.url(),
        stack.grafana.url(),
    );
    std::fs::write(pki.dir.path().join("obsctl.toml"), file).expect("obsctl.toml is written");
    let loki_auth = format!("svc:{LOKI_PASSWORD}");
    let out = obsctl(
        pki.dir.path(),
        &[
            "check",
            "--prometheus-tenant",
            "flag-tenant",
            "--timeout",
            "0s",
            "--format",
            "json",
        ],
        &[
            ("CI_PROM_TOKEN", "prom-file-token"),
            ("CI_LOKI_AUTH", &loki_auth),
        ],
    )
    .await;
    let output = said(&out);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{output}");
    assert_carried(
        "Prometheus",
        &stack.prometheus.seen(),
        "Bearer prom-file-token",
        Some("flag-tenant"),
    );
    assert_carried(
        "Loki",
        &stack.loki.seen(),
        &basic("svc", LOKI_PASSWORD),
        Some("team-a"),
    );
    assert_carried(
        "Grafana",
        &stack.grafana.seen(),
        &format!("Bearer {GRAFANA_TOKEN}"),
        None,
    );
    assert!(stack.tempo.seen().is_empty(), "Tempo is in no layer");
    // The inline token works, and the file is told to name a variable instead.
    assert!(
        output.contains("[sources.grafana] token is written in the file: use token_env"),
        "{output}"
    );
    for secret in [GRAFANA_TOKEN, LOKI_PASSWORD, "prom-file-token"] {
        assert!(!output.contains(secret), "shows {secret:?}:\n{output}");
    }
}

/// A refused command line: its arguments, its environment, and the words of its error.
type BadCase = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_usage_errors_that_name_the_source_but_not_the_secret() {
    let pki = Pki::new();
    let dir = pki.dir.path();
    std::fs::write(
        dir.join("obsctl.toml"),
        "[sources.loki]\nurl = \"https://127.0.0.1:9\"\ntokn_env = \"X\"\n",
    )
    .expect("written");
    let out = obsctl(dir, &["check"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        said(&out).contains("line 3, column 1: unknown field `tokn_env`"),
        "{}",
        said(&out)
    );

    std::fs::write(
        dir.join("obsctl.toml"),
        "[sources.loki]\nurl = \"https://127.0.0.1:9\"\nuser_env = \"CI_UNSET_LOKI_AUTH\"\n",
    )
    .expect("written");
    let out = obsctl(dir, &["check"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        said(&out).contains(
            "[sources.loki] user_env: the environment variable CI_UNSET_LOKI_AUTH is not set"
        ),
        "{}",
        said(&out)
    );
    std::fs::remove_file(dir.join("obsctl.toml")).expect("removed");

    let cases: [BadCase; 3] = [
        (
            &[
                "check",
                "--prometheus",
                "http://127.0.0.1:9",
                "--prometheus-user",
                "nocolon-s3cret",
            ],
            &[],
            "--prometheus-user (or PROMETHEUS_AUTH) must be USER:PASSWORD",
        ),
        (
            &[
                "check",
                "--tempo",
                "http://127.0.0.1:9",
                "--tempo-user",
                "u:s3cret",
            ],
            &[("TEMPO_TOKEN", "tok-s3cret")],
            "--tempo-user (or TEMPO_AUTH) and --tempo-token (or TEMPO_TOKEN) are both given",
        ),
        (
            &["check", "--loki", "ftp://u:s3cret@127.0.0.1:9"],
            &[],
            "--loki \"ftp://***@127.0.0.1:9\" must be an http:// or https:// URL",
        ),
    ];
    for (args, env, expected) in cases {
        let out = obsctl(dir, args, env).await;
        let output = said(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {output}");
        assert!(output.contains(expected), "{args:?}: {output}");
        assert!(
            !output.contains("s3cret"),
            "{args:?} shows the secret: {output}"
        );
    }
}
