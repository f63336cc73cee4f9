//! The base URL that a run sends to, checked once before any socket opens.

use std::fmt;
use url::Url;

/// A validated `http(s)://host[:port][/prefix]` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    url: Url,
    host: String,
    port: u16,
    base_path: String,
}

/// Why a target URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not a URL at all.
    #[error("`{url}` is not a URL ({reason}); expected e.g. http://127.0.0.1:8000")]
    Parse {
        /// The text given.
        url: String,
        /// The parser's reason.
        reason: String,
    },
    /// No scheme, as in `localhost:8000`: the http:// URL it most likely means.
    #[error("`{url}` has no scheme: did you mean {suggestion}?")]
    NoScheme {
        /// The text given.
        url: String,
        /// `http://` followed by the text.
        suggestion: String,
    },
    /// Any scheme other than http and https.
    #[error("`{url}`: unsupported scheme `{scheme}`; use an http:// or https:// URL")]
    Scheme {
        /// The text given.
        url: String,
        /// The scheme found.
        scheme: String,
    },
    /// A URL without a host, or with a query or fragment that would be ambiguous.
    #[error("`{url}`: {reason}")]
    Shape {
        /// The text given.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
}

impl Target {
    /// Parses and checks a target URL.
    pub fn parse(text: &str) -> Result<Self, TargetError> {
        // `localhost:8000` parses as the scheme `localhost`, `127.0.0.1:8000` not at all: both
        // mean http://, which is worth saying rather than complaining about a scheme. (A text
        // with credentials does not make a valid target, so it is never echoed here.)
        if !text.contains("://") {
            let suggestion = format!("http://{text}");
            if Self::parse(&suggestion).is_ok() {
                return Err(TargetError::NoScheme {
                    url: text.to_owned(),
                    suggestion,
                });
            }
        }
        // Messages show the URL with any `user:password@` hidden.
        let shown = crate::sources::auth::redact_url(text);
        let url = Url::parse(text).map_err(|e| TargetError::Parse {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TargetError::Scheme {
                url: shown,
                scheme: url.scheme().to_owned(),
            });
        }
        let shape = |reason| TargetError::Shape {
            url: shown.clone(),
            reason,
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(shape(
                "credentials in the target URL are not sent: remove `user:password@`",
            ));
        }
        let host = url.host_str().ok_or_else(|| shape("the URL has no host"))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(shape("a target cannot have a query or fragment"));
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let base_path = url.path().trim_end_matches('/').to_owned();
        Ok(Self {
            url,
            host,
            port,
            base_path,
        })
    }

    /// The host name or address to connect to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether requests go over TLS (`https://`).
    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The value of the `Host` header.
    pub fn authority(&self) -> String {
        match self.url.port() {
            Some(port) => format!("{}:{port}", self.url.host_str().unwrap_or(&self.host)),
            None => self.url.host_str().unwrap_or(&self.host).to_owned(),
        }
    }

    /// The path part of [`Target::request_target`]: without the query.
    pub fn request_path(&self, path: &str) -> String {
        let mut full = self.request_target(path);
        if let Some(query) = full.find('?') {
            full.truncate(query);
        }
        full
    }

    /// The request target for a scenario path: the target's own path prefix, then `path`
    /// (an empty result is `/`).
    pub fn request_target(&self, path: &str) -> String {
        let joined = format!("{}{path}", self.base_path);
        if joined.is_empty() {
            "/".to_owned()
        } else {
            joined
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str().trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_with_port_and_prefix() {
        let t = Target::parse("http://127.0.0.1:8000/prefix/").ok();
        let t = t.as_ref();
        assert_eq!(t.map(|t| t.port()), Some(8000));
        assert_eq!(t.map(|t| t.authority()).as_deref(), Some("127.0.0.1:8000"));
        assert_eq!(
            t.map(|t| t.request_target("/health")).as_deref(),
            Some("/prefix/health")
        );
    }

    #[test]
    fn an_empty_request_target_is_the_root() {
        let t = Target::parse("http://127.0.0.1:8000").ok();
        assert_eq!(t.map(|t| t.request_target("")).as_deref(), Some("/"));
    }

    #[test]
    fn a_missing_scheme_gets_a_suggestion() {
        for (given, meant) in [
            ("localhost:8000", "http://localhost:8000"),
            ("127.0.0.1:8000/base", "http://127.0.0.1:8000/base"),
        ] {
            let err = Target::parse(given).err().map(|e| e.to_string());
            assert_eq!(
                err,
                Some(format!("`{given}` has no scheme: did you mean {meant}?"))
            );
        }
    }

    #[test]
    fn accepts_https_on_its_default_port() {
        let t = Target::parse("https://example.test").ok();
        assert_eq!(t.as_ref().map(Target::port), Some(443));
        assert_eq!(t.as_ref().map(Target::is_https), Some(true));
    }

    #[test]
    fn refuses_credentials_without_echoing_them() {
        let err = Target::parse("https://u:hunter2@example.test")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("user:password@"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
