//! Where each source is and how to be let in, resolved before any I/O. Each source's credential
//! flags are declared once, by `credential_flags!`: `--NAME-user USER:PASSWORD` (basic auth),
//! `--NAME-token TOKEN` (bearer) and, for the multi-tenant stores, `--NAME-tenant TENANT`
//! (`X-Scope-OrgID`), each with an environment fallback whose value `--help` never shows.
//!
//! Layers, the first one that gives a value winning: the flags (or their environment
//! variables), the URL's own `user:password@` (turned into basic auth and removed from the URL),
//! then `obsctl.toml`'s `[sources.NAME]`. No secret is ever put in a message.

use std::fmt;

use anyhow::Context as _;

use crate::config_file::LoadedFile;
use crate::sources::auth::{self, Auth, Credentials, Endpoint};

/// The `--help` heading of every credential flag.
const HEADING: &str = "Source credentials (each flag, or its environment variable)";

/// One source's credential flags as given, with their names for messages.
#[derive(Clone, Copy)]
pub struct Given<'a> {
    /// The source's name in `[sources.NAME]` and in its flags.
    pub source: &'static str,
    /// `--NAME-user`, and its environment variable.
    pub user: (Option<&'a str>, &'static str),
    /// `--NAME-token`, and its environment variable.
    pub token: (Option<&'a str>, &'static str),
    /// `--NAME-tenant`, and its environment variable (`None` for sources without tenants).
    pub tenant: Option<(Option<&'a str>, &'static str)>,
}

/// Declares the credential flags of one source: a clap `Args` struct to flatten, whose `Debug`
/// hides the secrets, and its [`Given`].
macro_rules! credential_flags {
    (
        $(#[$doc:meta])*
        $name:ident, $source:literal, $what:literal {
            user: $user:ident = $user_env:literal,
            token: $token:ident = $token_env:literal
            $(, tenant: $tenant:ident = $tenant_env:literal)? $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Default, clap::Args)]
        pub struct $name {
            #[doc = concat!($what, " login, sent as basic auth.")]
            #[arg(
                long,
                env = $user_env,
                hide_env_values = true,
                value_name = "USER:PASSWORD",
                help = concat!($what, ": basic auth login"),
                help_heading = HEADING
            )]
            pub $user: Option<String>,
            #[doc = concat!($what, " bearer token.")]
            #[arg(
                long,
                env = $token_env,
                hide_env_values = true,
                value_name = "TOKEN",
                help = concat!($what, ": bearer token (Authorization: Bearer TOKEN)"),
                help_heading = HEADING
            )]
            pub $token: Option<String>,
            $(
                #[doc = concat!($what, " tenant.")]
                #[arg(
                    long,
                    env = $tenant_env,
                    hide_env_values = true,
                    value_name = "TENANT",
                    help = concat!($what, ": tenant, sent as X-Scope-OrgID (multi-tenant Loki, Tempo, Mimir)"),
                    help_heading = HEADING
                )]
                pub $tenant: Option<String>,
            )?
        }

        impl fmt::Debug for $name {
            /// Says which credentials were given, never their values.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let shown = |v: &Option<String>| v.as_ref().map(|_| "***");
                f.debug_struct(stringify!($name))
                    .field(stringify!($user), &shown(&self.$user))
                    .field(stringify!($token), &shown(&self.$token))
                    $(.field(stringify!($tenant), &self.$tenant))?
                    .finish()
            }
        }

        impl $name {
            /// The flags as given, for [`endpoint`].
            pub fn given(&self) -> Given<'_> {
                let tenant: Option<(Option<&str>, &'static str)> =
                    None $(.or(Some((self.$tenant.as_deref(), $tenant_env))))?;
                Given {
                    source: $source,
                    user: (self.$user.as_deref(), $user_env),
                    token: (self.$token.as_deref(), $token_env),
                    tenant,
                }
            }
        }
    };
}

credential_flags! {
    /// Credentials of the service's /metrics (`--target`).
    MetricsCredentials, "target", "The service's /metrics" {
        user: metrics_user = "METRICS_AUTH",
        token: metrics_token = "METRICS_TOKEN",
    }
}

credential_flags! {
    /// Credentials of `--prometheus` (Prometheus, or Mimir's Prometheus API with a tenant).
    PrometheusCredentials, "prometheus", "Prometheus" {
        user: prometheus_user = "PROMETHEUS_AUTH",
        token: prometheus_token = "PROMETHEUS_TOKEN",
        tenant: prometheus_tenant = "PROMETHEUS_TENANT",
    }
}

credential_flags! {
    /// Credentials of `--loki`.
    LokiCredentials, "loki", "Loki" {
        user: loki_user = "LOKI_AUTH",
        token: loki_token = "LOKI_TOKEN",
        tenant: loki_tenant = "LOKI_TENANT",
    }
}

credential_flags! {
    /// Credentials of `--tempo`.
    TempoCredentials, "tempo", "Tempo" {
        user: tempo_user = "TEMPO_AUTH",
        token: tempo_token = "TEMPO_TOKEN",
        tenant: tempo_tenant = "TEMPO_TENANT",
    }
}

credential_flags! {
    /// Credentials of `--grafana` (anonymous access when none is given).
    GrafanaCredentials, "grafana", "Grafana" {
        user: grafana_user = "GRAFANA_AUTH",
        token: grafana_token = "GRAFANA_TOKEN",
    }
}

/// Where a source's URL may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlFrom {
    /// The flag, else `[sources.NAME] url` (`obsctl check`).
    FlagOrFile,
    /// The flag only (`obsctl verify`, whose spawned service the file's stack does not watch);
    /// the file's credentials still apply to a source the flag names.
    FlagOnly,
}

/// The source given by `url_flag` (e.g. `--loki`, value `url`) or the file, with its
/// credentials; `None` when neither names it. A URL that is not http(s), or credentials that
/// cannot be used, are errors naming the flag or the file's key.
pub fn endpoint(
    url_flag: &str,
    url: Option<&str>,
    given: Given<'_>,
    file: Option<&LoadedFile>,
    from: UrlFrom,
) -> anyhow::Result<Option<Endpoint>> {
    let file_url = file.and_then(|f| f.url(given.source));
    let (origin, raw) = match (url, file_url, file) {
        (Some(raw), _, _) => (url_flag.to_owned(), raw),
        (None, Some(raw), Some(file)) if from == UrlFrom::FlagOrFile => {
            let origin = format!("{} [sources.{}] url", file.path.display(), given.source);
            (origin, raw)
        }
        _ => return Ok(None),
    };
    super::common::validate_url(&origin, raw)?;
    let (url, from_url) = auth::split_userinfo(raw);
    let from_url = from_url
        .transpose()
        .with_context(|| format!("{origin}: the URL's user:password"))?;
    let from_file = match file {
        Some(file) => file.source(given.source, |var| std::env::var(var).ok())?,
        None => Default::default(),
    };
    let auth = flag_auth(&given)?
        .or(from_url)
        .or(from_file.auth)
        .unwrap_or_default();
    let credentials = credentials(&given, auth, from_file.tenant)?;
    Ok(Some(Endpoint::new(url).with_credentials(credentials)))
}

/// The credentials the flags alone give (for a source whose URL obsctl makes itself, such as
/// the service `verify` starts).
pub fn flag_credentials(given: Given<'_>) -> anyhow::Result<Credentials> {
    let auth = flag_auth(&given)?.unwrap_or_default();
    credentials(&given, auth, None)
}

/// `auth` with the flag's tenant, else `file_tenant`.
fn credentials(
    given: &Given<'_>,
    auth: Auth,
    file_tenant: Option<String>,
) -> anyhow::Result<Credentials> {
    let (tenant, origin) = match given.tenant {
        Some((Some(tenant), env)) => (
            Some(tenant.to_owned()),
            flag_name(given.source, "tenant", env),
        ),
        _ => (file_tenant, format!("[sources.{}] tenant", given.source)),
    };
    Credentials::new(auth, tenant.as_deref()).with_context(|| format!("{origin} cannot be sent"))
}

/// The credentials the flags give, if any; both a user and a token is an error.
fn flag_auth<'a>(given: &Given<'a>) -> anyhow::Result<Option<Auth>> {
    let user_flag = flag_name(given.source, "user", given.user.1);
    let token_flag = flag_name(given.source, "token", given.token.1);
    let nonempty = |v: Option<&'a str>| v.filter(|v| !v.is_empty());
    match (nonempty(given.user.0), nonempty(given.token.0)) {
        (Some(_), Some(_)) => {
            anyhow::bail!("{user_flag} and {token_flag} are both given: choose one")
        }
        (Some(raw), None) => Auth::basic(raw)
            .map(Some)
            .with_context(|| format!("{user_flag} must be USER:PASSWORD")),
        (None, Some(raw)) => Auth::bearer(raw)
            .map(Some)
            .with_context(|| format!("{token_flag} cannot be sent")),
        (None, None) => Ok(None),
    }
}

/// `--loki-user (or LOKI_AUTH)`: the flag of a source's credential, for messages.
fn flag_name(source: &str, what: &str, env: &str) -> String {
    let flag = if source == "target" {
        "metrics"
    } else {
        source
    };
    format!("--{flag}-{what} (or {env})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given<'a>(
        user: Option<&'a str>,
        token: Option<&'a str>,
        tenant: Option<&'a str>,
    ) -> Given<'a> {
        Given {
            source: "loki",
            user: (user, "LOKI_AUTH"),
            token: (token, "LOKI_TOKEN"),
            tenant: Some((tenant, "LOKI_TENANT")),
        }
    }

    #[test]
    fn userinfo_is_basic_auth_and_flags_win_over_it() {
        let from_url = endpoint(
            "--loki",
            Some("https://svc:pw@loki.example:3100/"),
            given(None, None, Some("team-a")),
            None,
            UrlFrom::FlagOrFile,
        )
        .expect("valid")
        .expect("given");
        assert_eq!(from_url.url, "https://loki.example:3100");
        assert_eq!(
            from_url.credentials.auth,
            Auth::basic("svc:pw").expect("valid")
        );
        assert_eq!(from_url.credentials.tenant.as_deref(), Some("team-a"));
        let flagged = endpoint(
            "--loki",
            Some("https://svc:pw@loki.example:3100"),
            given(None, Some("tok"), None),
            None,
            UrlFrom::FlagOrFile,
        )
        .expect("valid")
        .expect("given");
        assert_eq!(flagged.credentials.auth, Auth::Bearer("tok".into()));
    }

    #[test]
    fn errors_name_the_flag_and_never_the_secret() {
        let error = endpoint(
            "--loki",
            Some("http://l"),
            given(Some("nocolonhunter2"), None, None),
            None,
            UrlFrom::FlagOrFile,
        )
        .expect_err("no colon");
        let text = format!("{error:#}");
        assert!(
            text.contains("--loki-user (or LOKI_AUTH) must be USER:PASSWORD"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        let error = endpoint(
            "--loki",
            Some("ftp://u:hunter2@l"),
            given(None, None, None),
            None,
            UrlFrom::FlagOrFile,
        )
        .expect_err("not http");
        assert!(!format!("{error:#}").contains("hunter2"), "{error:#}");
    }

    #[test]
    fn debug_output_hides_flag_secrets() {
        let flags = LokiCredentials {
            loki_user: Some("svc:hunter2".into()),
            loki_token: None,
            loki_tenant: Some("team-a".into()),
        };
        let text = format!("{flags:?}");
        assert!(
            !text.contains("hunter2") && text.contains("team-a"),
            "{text}"
        );
    }
}
