//! The base URL that a run sends to, checked once before any socket opens.

use std::fmt;
use url::Url;

/// A validated `http://host[:port][/prefix]` target.
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
    /// `https://`: TLS is not implemented yet.
    #[error("`{0}`: https targets are not supported yet; use an http:// URL")]
    Https(String),
    /// Any scheme other than http.
    #[error("`{url}`: unsupported scheme `{scheme}`; use an http:// URL")]
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
        let url = Url::parse(text).map_err(|e| TargetError::Parse {
            url: text.to_owned(),
            reason: e.to_string(),
        })?;
        match url.scheme() {
            "http" => {}
            "https" => return Err(TargetError::Https(text.to_owned())),
            other => {
                return Err(TargetError::Scheme {
                    url: text.to_owned(),
                    scheme: other.to_owned(),
                });
            }
        }
        let shape = |reason| TargetError::Shape {
            url: text.to_owned(),
            reason,
        };
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
    fn refuses_https_with_a_clear_reason() {
        let err = Target::parse("https://example.test")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.unwrap_or_default()
                .contains("https targets are not supported yet")
        );
    }
}
