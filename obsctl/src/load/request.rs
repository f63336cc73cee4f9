//! Builds the HTTP request for a sequence number, as the bytes written on the connection:
//! method, rendered path and body, `Host`, the run's tags, the scenario's and the flags' headers.
//! Everything that does not change between requests is prepared once, as bytes: a request of a
//! kind with a constant path and no templated header costs one copy of its prepared head, the
//! `traceparent` line and the body.

use super::client::Outgoing;
use super::config::LoadConfig;
use super::tagging::{RUN_ID_HEADER, RunId};
use crate::scenario::header::{self, Header};
use crate::scenario::{RenderContext, RequestSpec, Target};
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Method, Uri};
use rand::Rng;
use std::sync::Arc;

/// One request kind, with its constant parts pre-built.
#[derive(Debug)]
struct Prepared {
    spec: RequestSpec,
    /// The request line when the path template has no placeholder.
    constant: Option<Vec<u8>>,
    /// The path its requests are counted under (see [`RequestFactory::template_path`]).
    template_path: Arc<str>,
    /// The header lines that never change: `host`, the run id, constant extras.
    fixed_headers: Vec<u8>,
    /// The body when the body template has no placeholder.
    constant_body: Option<Vec<u8>>,
    /// The body's `content-type`; `None` when a header of the kind sets it instead.
    content_type: Option<HeaderValue>,
    /// The kind's extra headers whose value is a template, rendered per request.
    templated: Vec<Header>,
    /// None when a constant part is not valid in a request (reported per request as `io`).
    valid: bool,
}

/// Makes requests for a run.
#[derive(Debug)]
pub(crate) struct RequestFactory {
    kinds: Vec<Prepared>,
    target: Target,
    run_id: RunId,
    run_id_text: String,
}

/// A request ready to send, and the path to account it under.
pub(crate) struct Built {
    /// None when the rendered values do not make a valid request (reported as an `io` error).
    pub request: Option<Outgoing>,
    /// The concrete path, without query; `None` for a constant path (see [`Sample::path`]).
    ///
    /// [`Sample::path`]: super::sample::Sample::path
    pub path: Option<Arc<str>>,
}

/// `name: value\r\n`.
fn header_line(out: &mut Vec<u8>, name: &HeaderName, value: &HeaderValue) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `METHOD target HTTP/1.1\r\n`.
fn request_line(method: &Method, target: &str) -> Vec<u8> {
    let mut line = Vec::with_capacity(method.as_str().len() + target.len() + 12);
    line.extend_from_slice(method.as_str().as_bytes());
    line.push(b' ');
    line.extend_from_slice(target.as_bytes());
    line.extend_from_slice(b" HTTP/1.1\r\n");
    line
}

impl RequestFactory {
    pub fn new(config: &LoadConfig) -> Self {
        let (target, run_id) = (&config.target, config.run_id);
        let run_id_text = run_id.to_string();
        let ctx = RenderContext {
            seq: 0,
            run_id: &run_id_text,
        };
        let host = HeaderValue::from_str(&target.authority()).ok();
        let run_id_value = HeaderValue::from_str(&run_id_text).ok();
        let kinds = config
            .scenario
            .requests
            .iter()
            .map(|spec| {
                let layers: [&[Header]; 3] =
                    [&config.scenario.headers, &spec.headers, &config.headers];
                let layered = header::layered(&layers);
                let sets_content_type = layered.iter().any(|h| h.name == CONTENT_TYPE);
                let mut valid = host.is_some() && run_id_value.is_some();
                let mut fixed_headers = Vec::new();
                if let (Some(host), Some(run)) = (&host, &run_id_value) {
                    header_line(&mut fixed_headers, &hyper::header::HOST, host);
                    header_line(
                        &mut fixed_headers,
                        &HeaderName::from_static(RUN_ID_HEADER),
                        run,
                    );
                }
                let mut templated = Vec::new();
                for h in layered {
                    if !h.value.is_constant() {
                        templated.push(h);
                        continue;
                    }
                    match h.render(ctx, &mut rand::rng()) {
                        Some(value) => header_line(&mut fixed_headers, &h.name, &value),
                        None => valid = false,
                    }
                }
                let constant = spec
                    .path
                    .is_constant()
                    .then(|| uri_and_path(target, &spec.path.render(ctx, &mut rand::rng())))
                    .flatten();
                let (constant, template_path) = match constant {
                    Some((uri, path)) => (Some(request_line(&spec.method, &uri)), path),
                    None => (None, Arc::from(target.request_path(spec.path.as_str()))),
                };
                Prepared {
                    constant,
                    template_path,
                    fixed_headers,
                    constant_body: spec
                        .body
                        .as_ref()
                        .filter(|b| b.is_constant())
                        .map(|b| b.render(ctx, &mut rand::rng()).into_bytes()),
                    content_type: HeaderValue::from_str(&spec.content_type)
                        .ok()
                        .filter(|_| !sets_content_type),
                    templated,
                    valid,
                    spec: spec.clone(),
                }
            })
            .collect();
        Self {
            kinds,
            target: target.clone(),
            run_id,
            run_id_text,
        }
    }

    /// The spec of request kind `index`.
    pub fn spec(&self, index: usize) -> Option<&RequestSpec> {
        self.kinds.get(index).map(|k| &k.spec)
    }

    /// The path under which the requests of kind `index` are counted: the constant path, or
    /// the path template as written (with the target's base path, without query), so that the
    /// counts do not grow with the concrete paths a template renders.
    pub fn template_path(&self, index: usize) -> Arc<str> {
        self.kinds
            .get(index)
            .map_or_else(|| Arc::from(""), |kind| Arc::clone(&kind.template_path))
    }

    /// The request of kind `index` for sequence number `seq`.
    pub fn build(&self, index: usize, seq: u64, rng: &mut impl Rng) -> Built {
        let Some(kind) = self.kinds.get(index) else {
            return Built {
                request: None,
                path: None,
            };
        };
        let ctx = RenderContext {
            seq,
            run_id: &self.run_id_text,
        };
        let rendered;
        let (line, path) = match &kind.constant {
            Some(line) => (Some(line.as_slice()), None),
            None => match uri_and_path(&self.target, &kind.spec.path.render(ctx, rng)) {
                Some((uri, path)) => {
                    rendered = request_line(&kind.spec.method, &uri);
                    (Some(rendered.as_slice()), Some(path))
                }
                None => (None, None),
            },
        };
        let request = line
            .filter(|_| kind.valid)
            .and_then(|line| self.assemble(kind, line, ctx, rng));
        Built { request, path }
    }

    /// The bytes of one request: its line, the prepared headers, the per-request ones, the body.
    fn assemble(
        &self,
        kind: &Prepared,
        line: &[u8],
        ctx: RenderContext<'_>,
        rng: &mut impl Rng,
    ) -> Option<Outgoing> {
        let rendered_body;
        let body = match (&kind.constant_body, &kind.spec.body) {
            (Some(body), _) => Some(body.as_slice()),
            (None, Some(template)) => {
                rendered_body = template.render(ctx, rng);
                Some(rendered_body.as_bytes())
            }
            (None, None) => None,
        };
        let length = line.len() + kind.fixed_headers.len() + 96 + body.map_or(0, <[u8]>::len);
        let mut bytes = Vec::with_capacity(length);
        bytes.extend_from_slice(line);
        bytes.extend_from_slice(&kind.fixed_headers);
        let span_id = rng.random::<u64>();
        bytes.extend_from_slice(b"traceparent: ");
        bytes.extend_from_slice(&self.run_id.traceparent_bytes(ctx.seq, span_id));
        bytes.extend_from_slice(b"\r\n");
        for header in &kind.templated {
            header_line(&mut bytes, &header.name, &header.render(ctx, rng)?);
        }
        let method = &kind.spec.method;
        match body {
            Some(body) => {
                if let Some(content_type) = &kind.content_type {
                    header_line(&mut bytes, &CONTENT_TYPE, content_type);
                }
                content_length(&mut bytes, body.len());
            }
            // A body-carrying method without a body still says so (411 otherwise).
            None if [Method::POST, Method::PUT, Method::PATCH].contains(method) => {
                content_length(&mut bytes, 0);
            }
            None => {}
        }
        bytes.extend_from_slice(b"\r\n");
        if let Some(body) = body {
            bytes.extend_from_slice(body);
        }
        Some(Outgoing {
            bytes,
            head: method == Method::HEAD,
            idempotent: method.is_idempotent(),
        })
    }
}

fn content_length(out: &mut Vec<u8>, length: usize) {
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(length.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The request target of a rendered path on `target`, checked as a URI, and the path sent
/// (without query), as the server sees it.
fn uri_and_path(target: &Target, rendered: &str) -> Option<(String, Arc<str>)> {
    let full = target.request_target(rendered);
    let uri = full.parse::<Uri>().ok()?;
    let path = Arc::from(uri.path());
    Some((full, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::config::Overrides;
    use crate::scenario::Scenario;
    use rand::SeedableRng;

    fn factory(source: &str, flags: &[&str]) -> RequestFactory {
        let scenario = Scenario::parse(source, std::path::Path::new("t.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        let overrides = Overrides {
            target: Some("http://127.0.0.1:1".to_owned()),
            headers: flags
                .iter()
                .map(|f| Header::parse_flag(f).unwrap_or_else(|e| panic!("{e}")))
                .collect(),
            ..Overrides::default()
        };
        let config = LoadConfig::new(scenario, overrides).unwrap_or_else(|e| panic!("{e}"));
        RequestFactory::new(&config)
    }

    const SCENARIO: &str = "name = \"t\"\n[headers]\nX-Const = \"c\"\n[[stages]]\nduration = \"1s\"\nrate = 1\n[[requests]]\nname = \"a\"\npath = \"/\"\nheaders = { X-Seq = \"s-{{seq}}\" }\n";

    /// The headers of `bytes`, parsed as a request, and its body.
    fn parsed(bytes: &[u8]) -> (String, Vec<(String, String)>, Vec<u8>) {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(n)) = request.parse(bytes) else {
            panic!("not a request: {:?}", String::from_utf8_lossy(bytes));
        };
        let line = format!(
            "{} {}",
            request.method.unwrap_or_default(),
            request.path.unwrap_or_default()
        );
        let headers = request
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        (line, headers, bytes[n..].to_vec())
    }

    #[test]
    fn constant_headers_are_built_once_and_templates_per_request() {
        let f = factory(SCENARIO, &["X-Flag: f"]);
        let templated: Vec<&str> = f.kinds[0]
            .templated
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        assert_eq!(templated, ["x-seq"]);
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let built = f.build(0, 41, &mut rng).request.expect("a valid request");
        let (line, headers, body) = parsed(&built.bytes);
        assert_eq!(line, "GET /");
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("x-seq"), Some("s-41"));
        assert_eq!(header("x-const"), Some("c"));
        assert_eq!(header("x-flag"), Some("f"));
        assert_eq!(header("host"), Some("127.0.0.1:1"));
        assert!(
            header("traceparent").is_some_and(|t| t.len() == 55 && t.contains("0000000000000029-"))
        );
        assert!(body.is_empty() && built.idempotent && !built.head);
    }

    #[test]
    fn bodies_carry_their_length_and_type_and_posts_without_one_say_zero() {
        let source = SCENARIO.replace(
            "path = \"/\"\n",
            "method = \"POST\"\npath = \"/u/{{seq}}?x=1\"\nbody = '{\"n\": {{seq}}}'\n[[requests]]\nname = \"b\"\nmethod = \"POST\"\npath = \"/e\"\n",
        );
        let f = factory(&source, &[]);
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let with_body = f.build(0, 7, &mut rng);
        assert_eq!(with_body.path.as_deref(), Some("/u/7"));
        let request = with_body.request.expect("valid");
        let (line, headers, body) = parsed(&request.bytes);
        assert_eq!(line, "POST /u/7?x=1");
        assert!(
            headers.contains(&("content-length".into(), "8".into())),
            "{headers:?}"
        );
        assert!(headers.contains(&("content-type".into(), "application/json".into())));
        assert_eq!(body, b"{\"n\": 7}");
        assert!(!request.idempotent);
        let empty = f.build(1, 8, &mut rng).request.expect("valid");
        let (_, headers, _) = parsed(&empty.bytes);
        assert!(
            headers.contains(&("content-length".into(), "0".into())),
            "{headers:?}"
        );
    }

    #[test]
    fn a_scenario_without_headers_prepares_none() {
        let plain = SCENARIO
            .replace("[headers]\nX-Const = \"c\"\n", "")
            .replace("headers = { X-Seq = \"s-{{seq}}\" }\n", "");
        assert!(factory(&plain, &[]).kinds[0].templated.is_empty());
    }
}
