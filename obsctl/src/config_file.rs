//! `obsctl.toml`, the one file a CI job needs: the check levels (`strict`, `[checks]`, which
//! [`crate::check::policy`] takes), the sources to check with their credentials
//! (`[sources.target|prometheus|loki|tempo|grafana]`) and TLS (`[tls]`). It is found in the
//! working directory or given with `--config FILE`, parsed once, and every unknown key is an
//! error naming the key and its line.
//!
//! Secrets are named by environment variable (`token_env = "PROM_TOKEN"`, `user_env =
//! "LOKI_AUTH"` holding `USER:PASSWORD`) so that the file can be committed; written inline they
//! still work, with a [`ConfigWarning`]. Relative paths in `[tls]` are relative to the file.
//!
//! ```toml
//! [sources.prometheus]
//! url = "https://prometheus.example:9090"
//! token_env = "PROM_TOKEN"
//! [sources.loki]
//! url = "https://loki.example:3100"
//! tenant = "team-a"
//! user_env = "LOKI_AUTH"
//! [tls]
//! cacert = "ca.pem"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::sources::auth::{Auth, AuthError};
use crate::tls::{PemFile, TlsOptions};

/// The file looked for in the working directory when `--config` is not given.
pub const DEFAULT_FILE: &str = "obsctl.toml";

/// Why the file cannot be used. No variant carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// Not TOML of the expected shape (an unknown key, a wrong type, a syntax error).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Line, column and what is wrong (the offending line is not quoted: it may hold a
        /// secret).
        message: String,
    },
    /// A key that names an environment variable which is not set.
    #[error("{origin}: the environment variable {var} is not set (or is empty)")]
    MissingEnv {
        /// `obsctl.toml [sources.loki] user_env`.
        origin: String,
        /// The variable.
        var: String,
    },
    /// Both a key and its `_env` twin, or both `user` and `token`.
    #[error("{origin}: {reason}")]
    Conflict {
        /// Where.
        origin: String,
        /// What conflicts.
        reason: String,
    },
    /// Credentials that cannot be used.
    #[error("{origin}: {error}")]
    Auth {
        /// Where they were given.
        origin: String,
        /// What is wrong (never the secret itself).
        error: AuthError,
    },
}

/// Something in the file that works but should change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigWarning {
    /// A secret written in the file rather than named by environment variable.
    InlineSecret {
        /// `obsctl.toml [sources.prometheus] token`.
        origin: String,
        /// The `_env` key to use instead.
        instead: &'static str,
    },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InlineSecret { origin, instead } => write!(
                f,
                "{origin} is written in the file: use {instead} = \"VARIABLE\" and keep the secret in the environment"
            ),
        }
    }
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Deny everything, skips included (like `--strict`).
    #[serde(default)]
    pub strict: bool,
    /// Level per check id (`allow`, `warn`, `deny`).
    #[serde(default)]
    pub checks: BTreeMap<String, String>,
    /// The sources and their credentials.
    #[serde(default)]
    pub sources: SourcesSection,
    /// TLS for every source.
    #[serde(default)]
    pub tls: TlsSection,
}

/// `[sources.*]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesSection {
    /// The service: its base URL (`/metrics` is scraped) and /metrics credentials.
    pub target: Option<SourceSection>,
    /// Prometheus (or Mimir's Prometheus API).
    pub prometheus: Option<SourceSection>,
    /// Loki.
    pub loki: Option<SourceSection>,
    /// Tempo.
    pub tempo: Option<SourceSection>,
    /// Grafana.
    pub grafana: Option<SourceSection>,
}

/// One source: where it is and how to be let in.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    /// Base URL (userinfo is turned into basic auth).
    pub url: Option<String>,
    /// `USER:PASSWORD` inline (warned: prefer `user_env`).
    pub user: Option<String>,
    /// Environment variable holding `USER:PASSWORD`.
    pub user_env: Option<String>,
    /// Bearer token inline (warned: prefer `token_env`).
    pub token: Option<String>,
    /// Environment variable holding the bearer token.
    pub token_env: Option<String>,
    /// `X-Scope-OrgID` tenant.
    pub tenant: Option<String>,
}

impl fmt::Debug for SourceSection {
    /// Never prints an inline secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = |s: &Option<String>| s.as_ref().map(|_| "***");
        f.debug_struct("SourceSection")
            .field(
                "url",
                &self.url.as_deref().map(crate::sources::auth::redact_url),
            )
            .field("user", &secret(&self.user))
            .field("user_env", &self.user_env)
            .field("token", &secret(&self.token))
            .field("token_env", &self.token_env)
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// `[tls]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM CA certificates to trust besides the system's.
    pub cacert: Option<PathBuf>,
    /// PEM client certificate.
    pub cert: Option<PathBuf>,
    /// PEM key of the client certificate.
    pub key: Option<PathBuf>,
    /// Do not verify server certificates.
    pub insecure: Option<bool>,
}

/// A source as the file describes it, secrets read from the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSource {
    /// Its URL, as written (userinfo included, for the caller to split).
    pub url: Option<String>,
    /// Its credentials, when the file gives some.
    pub auth: Option<Auth>,
    /// Its tenant.
    pub tenant: Option<String>,
}

/// The file, parsed, with where it was read.
#[derive(Debug)]
pub struct LoadedFile {
    /// The file.
    pub path: PathBuf,
    /// Its content.
    pub file: ConfigFile,
}

/// Reads `explicit` (`--config FILE`), or [`DEFAULT_FILE`] in `dir` when it exists.
pub fn load(explicit: Option<&Path>, dir: &Path) -> Result<Option<LoadedFile>, ConfigFileError> {
    let path = match explicit {
        Some(path) => path.to_owned(),
        None => match Some(dir.join(DEFAULT_FILE)).filter(|p| p.is_file()) {
            Some(path) => path,
            None => return Ok(None),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|error| ConfigFileError::Read {
        path: path.clone(),
        error,
    })?;
    let file = parse(&text).map_err(|message| ConfigFileError::Parse {
        path: path.clone(),
        message,
    })?;
    Ok(Some(LoadedFile { path, file }))
}

/// Parses the file's text; the error says the line and column, without quoting the line.
pub fn parse(text: &str) -> Result<ConfigFile, String> {
    toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end();
        match e.span() {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!("line {line}, column {column}: {message}")
            }
            None => message.to_owned(),
        }
    })
}

impl LoadedFile {
    /// The directory the file is in (relative paths in it are relative to this).
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| Path::new("."))
    }

    fn origin(&self, section: &str, key: &str) -> String {
        format!("{} [{section}] {key}", self.path.display())
    }

    fn section(&self, name: &str) -> Option<&SourceSection> {
        let sources = &self.file.sources;
        match name {
            "target" => sources.target.as_ref(),
            "prometheus" => sources.prometheus.as_ref(),
            "loki" => sources.loki.as_ref(),
            "tempo" => sources.tempo.as_ref(),
            "grafana" => sources.grafana.as_ref(),
            _ => None,
        }
    }

    /// `[sources.NAME] url`, as written; reads no environment variable.
    pub fn url(&self, name: &str) -> Option<&str> {
        self.section(name)?.url.as_deref()
    }

    /// `[sources.NAME]` (`target`, `prometheus`, `loki`, `tempo`, `grafana`), its secrets read
    /// from the environment (`get_env` is `std::env::var` outside tests).
    pub fn source(
        &self,
        name: &str,
        get_env: impl Fn(&str) -> Option<String>,
    ) -> Result<FileSource, ConfigFileError> {
        let Some(section) = self.section(name) else {
            return Ok(FileSource::default());
        };
        let table = format!("sources.{name}");
        let secret = |key: &str, inline: &Option<String>, env: &Option<String>| match (inline, env)
        {
            (Some(_), Some(_)) => Err(ConfigFileError::Conflict {
                origin: self.origin(&table, key),
                reason: format!("give {key} or {key}_env, not both"),
            }),
            (Some(value), None) => Ok(Some((value.clone(), self.origin(&table, key)))),
            (None, Some(var)) => {
                let origin = self.origin(&table, &format!("{key}_env"));
                match get_env(var).filter(|v| !v.trim().is_empty()) {
                    Some(value) => Ok(Some((value, format!("{origin} ({var})")))),
                    None => Err(ConfigFileError::MissingEnv {
                        origin,
                        var: var.clone(),
                    }),
                }
            }
            (None, None) => Ok(None),
        };
        let user = secret("user", &section.user, &section.user_env)?;
        let token = secret("token", &section.token, &section.token_env)?;
        let auth = match (user, token) {
            (Some(_), Some(_)) => {
                return Err(ConfigFileError::Conflict {
                    origin: format!("{} [{table}]", self.path.display()),
                    reason: "give a user or a token, not both".to_owned(),
                });
            }
            (Some((raw, origin)), None) => {
                Some(Auth::basic(&raw).map_err(|error| ConfigFileError::Auth { origin, error })?)
            }
            (None, Some((raw, origin))) => {
                Some(Auth::bearer(&raw).map_err(|error| ConfigFileError::Auth { origin, error })?)
            }
            (None, None) => None,
        };
        Ok(FileSource {
            url: section.url.clone(),
            auth,
            tenant: section.tenant.clone(),
        })
    }

    /// `[tls]` as options, paths resolved against the file's directory and named by key.
    pub fn tls(&self) -> TlsOptions {
        let tls = &self.file.tls;
        let file = |path: &Option<PathBuf>, key: &str| {
            path.as_ref()
                .map(|p| PemFile::new(self.dir().join(p), self.origin("tls", key)))
        };
        TlsOptions {
            cacert: file(&tls.cacert, "cacert"),
            cert: file(&tls.cert, "cert"),
            key: file(&tls.key, "key"),
            insecure: tls.insecure.unwrap_or(false),
        }
    }

    /// What works but should change: secrets written inline.
    pub fn warnings(&self) -> Vec<ConfigWarning> {
        let sources = &self.file.sources;
        let named = [
            ("target", &sources.target),
            ("prometheus", &sources.prometheus),
            ("loki", &sources.loki),
            ("tempo", &sources.tempo),
            ("grafana", &sources.grafana),
        ];
        let mut warnings = Vec::new();
        for (name, section) in named {
            let Some(section) = section else { continue };
            let table = format!("sources.{name}");
            if section.user.is_some() {
                warnings.push(ConfigWarning::InlineSecret {
                    origin: self.origin(&table, "user"),
                    instead: "user_env",
                });
            }
            if section.token.is_some() {
                warnings.push(ConfigWarning::InlineSecret {
                    origin: self.origin(&table, "token"),
                    instead: "token_env",
                });
            }
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(text: &str) -> LoadedFile {
        LoadedFile {
            path: PathBuf::from("/ci/obsctl.toml"),
            file: parse(text).expect("valid"),
        }
    }

    #[test]
    fn unknown_keys_are_named_with_their_line_and_secrets_are_not_quoted() {
        let error = parse("[sources.loki]\nurl = \"http://l\"\ntokn = \"hunter2\"\n")
            .expect_err("unknown key");
        assert!(
            error.starts_with("line 3, column 1: unknown field `tokn`"),
            "{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");
        let error = parse("[sources.prometheus]\ntoken = \"hunter2\n").expect_err("syntax");
        assert!(!error.contains("hunter2"), "{error}");
        assert!(error.starts_with("line 2"), "{error}");
    }

    #[test]
    fn secrets_come_from_the_named_environment_variables() {
        let file = loaded(
            "[sources.loki]\nurl = \"https://loki:3100\"\ntenant = \"team-a\"\nuser_env = \"LOKI_AUTH\"\n[sources.prometheus]\ntoken_env = \"PROM_TOKEN\"\n",
        );
        let env = |var: &str| (var == "LOKI_AUTH").then(|| "svc:pw".to_owned());
        let loki = file.source("loki", env).expect("valid");
        assert_eq!(
            loki.auth,
            Some(Auth::Basic {
                user: "svc".into(),
                password: "pw".into()
            })
        );
        assert_eq!(loki.tenant.as_deref(), Some("team-a"));
        let error = file.source("prometheus", env).expect_err("unset");
        assert_eq!(
            error.to_string(),
            "/ci/obsctl.toml [sources.prometheus] token_env: the environment variable PROM_TOKEN is not set (or is empty)"
        );
        assert!(file.warnings().is_empty());
    }

    #[test]
    fn inline_secrets_work_and_are_warned_about() {
        let file = loaded("[sources.grafana]\nurl = \"http://g\"\ntoken = \"glsa_x\"\n");
        let grafana = file.source("grafana", |_| None).expect("valid");
        assert_eq!(grafana.auth, Some(Auth::Bearer("glsa_x".into())));
        let warnings: Vec<String> = file.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                "/ci/obsctl.toml [sources.grafana] token is written in the file: use token_env = \"VARIABLE\" and keep the secret in the environment"
            ]
        );
        let debug = format!("{:?}", file.file);
        assert!(!debug.contains("glsa_x"), "{debug}");
    }

    #[test]
    fn tls_paths_are_relative_to_the_file() {
        let file = loaded("[tls]\ncacert = \"ca.pem\"\ninsecure = true\n");
        let tls = file.tls();
        assert_eq!(
            tls.cacert.map(|f| (f.path, f.origin)),
            Some((
                PathBuf::from("/ci/ca.pem"),
                "/ci/obsctl.toml [tls] cacert".to_owned()
            ))
        );
        assert!(tls.insecure);
    }
}
