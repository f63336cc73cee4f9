//! Credentials for a source's HTTP API: basic auth or a bearer token, and a tenant
//! (`X-Scope-OrgID`, which Loki, Tempo and Mimir read in multi-tenant mode). They are checked
//! when built (an HTTP header must be able to carry them), sent as sensitive headers, and never
//! printed: `Debug` shows `***`, and errors name the flag, not the value.

use std::fmt;

use base64::Engine as _;

/// The tenant header of Loki, Tempo, Mimir and Cortex.
pub const TENANT_HEADER: &str = "x-scope-orgid";

/// Why credentials cannot be used. No variant carries the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Basic credentials without the `:` between user and password.
    #[error("expected USER:PASSWORD, found no `:`")]
    NoColon,
    /// Basic credentials with nothing before the `:`.
    #[error("the user before `:` is empty")]
    EmptyUser,
    /// A blank token.
    #[error("the token is empty")]
    EmptyToken,
    /// A blank tenant.
    #[error("the tenant is empty")]
    EmptyTenant,
    /// Characters an HTTP header cannot carry (control characters, newlines).
    #[error("the value contains characters an HTTP header cannot carry")]
    Unsendable,
}

/// How obsctl authenticates to a source.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No credentials.
    #[default]
    Anonymous,
    /// HTTP basic authentication.
    Basic {
        /// The login.
        user: String,
        /// The password.
        password: String,
    },
    /// A token sent as `Authorization: Bearer` (a Grafana service-account token, a gateway's
    /// API token, ...).
    Bearer(String),
}

impl Auth {
    /// Basic credentials from `USER:PASSWORD` (the password may itself contain `:`).
    pub fn basic(raw: &str) -> Result<Self, AuthError> {
        let (user, password) = raw.split_once(':').ok_or(AuthError::NoColon)?;
        Self::basic_pair(user, password)
    }

    /// Basic credentials from a user and a password (as a URL's userinfo gives them).
    pub fn basic_pair(user: &str, password: &str) -> Result<Self, AuthError> {
        if user.is_empty() {
            return Err(AuthError::EmptyUser);
        }
        Self::checked(Self::Basic {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }

    /// A bearer token (surrounding whitespace, e.g. a file's newline, is dropped).
    pub fn bearer(token: &str) -> Result<Self, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::EmptyToken);
        }
        Self::checked(Self::Bearer(token.to_owned()))
    }

    /// Whether credentials are sent.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Self::Anonymous)
    }

    /// The bearer token, when that is the kind of credentials.
    pub fn bearer_token(&self) -> Option<&str> {
        match self {
            Self::Bearer(token) => Some(token),
            _ => None,
        }
    }

    /// The `Authorization` header value, if any.
    pub(crate) fn header(&self) -> Option<String> {
        match self {
            Self::Anonymous => None,
            Self::Basic { user, password } => {
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(format!("Basic {encoded}"))
            }
            Self::Bearer(token) => Some(format!("Bearer {token}")),
        }
    }

    /// Rejects credentials that an HTTP header cannot carry.
    fn checked(self) -> Result<Self, AuthError> {
        let header = self.header().unwrap_or_default();
        if reqwest::header::HeaderValue::from_str(&header).is_err() {
            return Err(AuthError::Unsendable);
        }
        Ok(self)
    }
}

impl fmt::Debug for Auth {
    /// Never prints a password or token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { user, .. } => write!(f, "Basic({user}:***)"),
            Self::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// Everything a source's requests carry to be let in: the `Authorization` and the tenant.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Basic auth, a bearer token, or nothing.
    pub auth: Auth,
    /// The `X-Scope-OrgID` tenant, when the source is multi-tenant.
    pub tenant: Option<String>,
}

impl Credentials {
    /// No credentials and no tenant.
    pub fn none() -> Self {
        Self::default()
    }

    /// `auth` and an optional `tenant`, checked.
    pub fn new(auth: Auth, tenant: Option<&str>) -> Result<Self, AuthError> {
        let tenant = match tenant.map(str::trim) {
            None => None,
            Some("") => return Err(AuthError::EmptyTenant),
            Some(t) if reqwest::header::HeaderValue::from_str(t).is_err() => {
                return Err(AuthError::Unsendable);
            }
            Some(t) => Some(t.to_owned()),
        };
        Ok(Self { auth, tenant })
    }

    /// Whether nothing is sent.
    pub fn is_empty(&self) -> bool {
        self.auth.is_anonymous() && self.tenant.is_none()
    }

    /// The headers every request to the source carries, values marked sensitive (so that
    /// neither reqwest nor hyper ever prints them).
    pub(crate) fn headers(
        &self,
    ) -> Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)> {
        let mut headers = Vec::new();
        let mut push = |name: reqwest::header::HeaderName, value: &str| {
            if let Ok(mut value) = reqwest::header::HeaderValue::from_str(value) {
                value.set_sensitive(true);
                headers.push((name, value));
            }
        };
        if let Some(value) = self.auth.header() {
            push(reqwest::header::AUTHORIZATION, &value);
        }
        if let Some(tenant) = &self.tenant {
            push(
                reqwest::header::HeaderName::from_static(TENANT_HEADER),
                tenant,
            );
        }
        headers
    }
}

impl fmt::Debug for Credentials {
    /// Shows the kind of credentials and the tenant, never a password or token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("auth", &self.auth)
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// A source to ask: its base URL (without userinfo or a trailing `/`) and its credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// The base URL, e.g. `https://loki.example:3100`.
    pub url: String,
    /// What its requests carry to be let in.
    pub credentials: Credentials,
}

impl Endpoint {
    /// The source at `url`, without credentials.
    pub fn new(url: impl Into<String>) -> Self {
        let url: String = url.into();
        Self {
            url: url.trim_end_matches('/').to_owned(),
            credentials: Credentials::none(),
        }
    }

    /// The same source, with `credentials`.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }
}

/// A URL with any `user:password@` removed, and those credentials: sources are asked without
/// userinfo (it would show in evidence), with basic auth instead. A URL that does not parse is
/// returned unchanged, for the caller's own validation to name.
pub fn split_userinfo(raw: &str) -> (String, Option<Result<Auth, AuthError>>) {
    let Ok(mut url) = url::Url::parse(raw) else {
        return (raw.to_owned(), None);
    };
    if url.username().is_empty() && url.password().is_none() {
        return (raw.to_owned(), None);
    }
    let user = decode(url.username());
    let password = decode(url.password().unwrap_or_default());
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let clean = url.as_str();
    // Url adds a `/` to a bare authority; keep the user's spelling otherwise.
    let clean = if raw.ends_with('/') || url.path() != "/" {
        clean.to_owned()
    } else {
        clean.trim_end_matches('/').to_owned()
    };
    (clean, Some(Auth::basic_pair(&user, &password)))
}

/// `raw` with any userinfo replaced by `***`, for messages about URLs that may not even parse.
pub fn redact_url(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return raw.to_owned();
    };
    let rest = &raw[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***@{}", &raw[..scheme_end + 3], &rest[at + 1..]),
        None => raw.to_owned(),
    }
}

/// Percent-decodes a URL's userinfo part (`+` stays `+`, unlike form decoding).
fn decode(part: &str) -> String {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_keep_colons_in_the_password() {
        let auth = Auth::basic("admin:s3:cret").expect("valid");
        assert_eq!(auth.header().as_deref(), Some("Basic YWRtaW46czM6Y3JldA=="));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let creds = Credentials::new(Auth::basic("admin:hunter2").expect("valid"), Some("team-a"))
            .expect("valid");
        let text = format!("{creds:?}");
        assert!(
            !text.contains("hunter2") && text.contains("admin"),
            "{text}"
        );
        assert!(text.contains("team-a"), "{text}");
        let bearer = format!("{:?}", Auth::bearer("glsa_secret").expect("valid"));
        assert!(!bearer.contains("glsa_secret"), "{bearer}");
    }

    #[test]
    fn userinfo_becomes_basic_auth_and_leaves_the_url() {
        let (url, auth) = split_userinfo("https://u:p%40s+s@prom.example:9090/prefix");
        assert_eq!(url, "https://prom.example:9090/prefix");
        assert_eq!(
            auth.and_then(Result::ok),
            Some(Auth::Basic {
                user: "u".into(),
                password: "p@s+s".into()
            })
        );
        let (url, auth) = split_userinfo("http://127.0.0.1:3100");
        assert_eq!(url, "http://127.0.0.1:3100");
        assert!(auth.is_none());
        let (url, _) = split_userinfo("http://u:p@127.0.0.1:3100");
        assert_eq!(url, "http://127.0.0.1:3100");
    }

    #[test]
    fn redaction_hides_userinfo_even_in_urls_that_do_not_parse() {
        assert_eq!(
            redact_url("https://u:secret@host:notaport/x@y"),
            "https://***@host:notaport/x@y"
        );
        assert_eq!(redact_url("http://host:1/a@b"), "http://host:1/a@b");
    }

    #[test]
    fn tenants_and_tokens_must_fit_a_header() {
        assert_eq!(Auth::bearer(" "), Err(AuthError::EmptyToken));
        assert_eq!(Auth::bearer("a\nb"), Err(AuthError::Unsendable));
        assert_eq!(
            Credentials::new(Auth::Anonymous, Some("")),
            Err(AuthError::EmptyTenant)
        );
        assert!(Credentials::new(Auth::Anonymous, Some("team-a|team-b")).is_ok());
    }
}
