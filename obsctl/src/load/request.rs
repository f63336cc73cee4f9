//! Builds the HTTP request for a sequence number: method, rendered path and body, `Host`, the
//! run's tags, the scenario's and the flags' headers. Everything that does not change between
//! requests is prepared once: a request kind without header templates costs no more per request
//! than one without headers.

use super::config::LoadConfig;
use super::tagging::{RUN_ID_HEADER, RunId};
use crate::scenario::header::{self, Header};
use crate::scenario::{RenderContext, RequestSpec, Target};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Uri};
use rand::Rng;
use std::sync::Arc;

/// The `traceparent` header.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The run id header.
const RUN_ID: HeaderName = HeaderName::from_static(RUN_ID_HEADER);

/// One request kind, with its constant parts pre-built.
#[derive(Debug)]
struct Prepared {
    spec: RequestSpec,
    /// The request target and path when the path template has no placeholder.
    constant: Option<(Uri, Arc<str>)>,
    /// The path its requests are counted under (see [`RequestFactory::template_path`]).
    template_path: Arc<str>,
    /// The body when the body template has no placeholder.
    constant_body: Option<Bytes>,
    /// The body's `content-type`; `None` when a header of the kind sets it instead.
    content_type: Option<HeaderValue>,
    /// The kind's extra headers (scenario-wide, its own, the flags', layered).
    headers: Vec<Extra>,
}

/// One extra header of a request kind: its value built once when constant, rendered per
/// request otherwise.
#[derive(Debug)]
struct Extra {
    name: HeaderName,
    value: ExtraValue,
}

#[derive(Debug)]
enum ExtraValue {
    /// `None` when the text is not a header value, which validation rules out.
    Constant(Option<HeaderValue>),
    Template(Header),
}

impl Extra {
    fn new(header: Header, ctx: RenderContext<'_>) -> Self {
        let value = if header.value.is_constant() {
            ExtraValue::Constant(header.render(ctx, &mut rand::rng()))
        } else {
            ExtraValue::Template(header.clone())
        };
        Self {
            name: header.name,
            value,
        }
    }

    fn value(&self, ctx: RenderContext<'_>, rng: &mut impl Rng) -> Option<HeaderValue> {
        match &self.value {
            ExtraValue::Constant(value) => value.clone(),
            ExtraValue::Template(header) => header.render(ctx, rng),
        }
    }
}

/// Makes requests for a run.
#[derive(Debug)]
pub(crate) struct RequestFactory {
    kinds: Vec<Prepared>,
    target: Target,
    host: Option<HeaderValue>,
    run_id: RunId,
    run_id_text: String,
    run_id_value: Option<HeaderValue>,
}

/// A request ready to send, and the path to account it under.
pub(crate) struct Built {
    /// None when the rendered values do not make a valid request (reported as an `io` error).
    pub request: Option<Request<Full<Bytes>>>,
    /// The concrete path, without query.
    pub path: Arc<str>,
}

impl RequestFactory {
    pub fn new(config: &LoadConfig) -> Self {
        let (target, run_id) = (&config.target, config.run_id);
        let run_id_text = run_id.to_string();
        let ctx = RenderContext {
            seq: 0,
            run_id: &run_id_text,
        };
        let kinds = config
            .scenario
            .requests
            .iter()
            .map(|spec| {
                let layers: [&[Header]; 3] =
                    [&config.scenario.headers, &spec.headers, &config.headers];
                let headers: Vec<Extra> = header::layered(&layers)
                    .into_iter()
                    .map(|h| Extra::new(h, ctx))
                    .collect();
                let sets_content_type = headers.iter().any(|h| h.name == CONTENT_TYPE);
                let constant = spec
                    .path
                    .is_constant()
                    .then(|| uri_and_path(target, &spec.path.render(ctx, &mut rand::rng())))
                    .flatten();
                let template_path = match &constant {
                    Some((_, path)) => Arc::clone(path),
                    None => Arc::from(target.request_path(spec.path.as_str())),
                };
                Prepared {
                    constant,
                    template_path,
                    constant_body: spec
                        .body
                        .as_ref()
                        .filter(|b| b.is_constant())
                        .map(|b| Bytes::from(b.render(ctx, &mut rand::rng()))),
                    content_type: HeaderValue::from_str(&spec.content_type)
                        .ok()
                        .filter(|_| !sets_content_type),
                    headers,
                    spec: spec.clone(),
                }
            })
            .collect();
        Self {
            kinds,
            target: target.clone(),
            host: HeaderValue::from_str(&target.authority()).ok(),
            run_id,
            run_id_value: HeaderValue::from_str(&run_id_text).ok(),
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
                path: Arc::from(""),
            };
        };
        let ctx = RenderContext {
            seq,
            run_id: &self.run_id_text,
        };
        let (uri, path) = match &kind.constant {
            Some((uri, path)) => (Some(uri.clone()), Arc::clone(path)),
            None => match uri_and_path(&self.target, &kind.spec.path.render(ctx, rng)) {
                Some((uri, path)) => (Some(uri), path),
                None => (None, Arc::from("")),
            },
        };
        let body = match (&kind.constant_body, &kind.spec.body) {
            (Some(body), _) => Some(body.clone()),
            (None, Some(template)) => Some(Bytes::from(template.render(ctx, rng))),
            (None, None) => None,
        };
        let span_id = rng.random::<u64>();
        let request = uri.and_then(|uri| self.assemble(kind, uri, body, ctx, span_id, rng));
        Built { request, path }
    }

    fn assemble(
        &self,
        kind: &Prepared,
        uri: Uri,
        body: Option<Bytes>,
        ctx: RenderContext<'_>,
        span_id: u64,
        rng: &mut impl Rng,
    ) -> Option<Request<Full<Bytes>>> {
        let traceparent = self.run_id.traceparent_bytes(ctx.seq, span_id);
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.method_mut() = kind.spec.method.clone();
        *request.uri_mut() = uri;
        if !kind.headers.is_empty() {
            // Room for obsctl's four and the extras at once, rather than growing on the way.
            *request.headers_mut() = HeaderMap::with_capacity(4 + kind.headers.len());
        }
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone()?);
        headers.insert(TRACEPARENT, HeaderValue::from_bytes(&traceparent).ok()?);
        headers.insert(RUN_ID, self.run_id_value.clone()?);
        for extra in &kind.headers {
            headers.insert(extra.name.clone(), extra.value(ctx, rng)?);
        }
        if let Some(body) = body {
            if let Some(content_type) = &kind.content_type {
                headers.insert(CONTENT_TYPE, content_type.clone());
            }
            *request.body_mut() = Full::new(body);
        }
        Some(request)
    }
}

/// The request target of a rendered path on `target`, and the path sent (without query), as
/// the server sees it.
fn uri_and_path(target: &Target, rendered: &str) -> Option<(Uri, Arc<str>)> {
    let full = target.request_target(rendered);
    let uri = full.parse::<Uri>().ok()?;
    let path = Arc::from(uri.path());
    Some((uri, path))
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

    #[test]
    fn constant_headers_are_built_once_and_templates_per_request() {
        let f = factory(SCENARIO, &["X-Flag: f"]);
        let kinds: Vec<(&str, bool)> = f.kinds[0]
            .headers
            .iter()
            .map(|h| {
                let constant = matches!(h.value, ExtraValue::Constant(Some(_)));
                (h.name.as_str(), constant)
            })
            .collect();
        assert_eq!(
            kinds,
            vec![("x-const", true), ("x-seq", false), ("x-flag", true)]
        );
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let built = f.build(0, 41, &mut rng).request;
        let header = |name: &str| {
            built
                .as_ref()
                .and_then(|r| r.headers().get(name))
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(header("x-seq").as_deref(), Some("s-41"));
        assert_eq!(header("x-const").as_deref(), Some("c"));
        assert_eq!(header("x-flag").as_deref(), Some("f"));
    }

    #[test]
    fn a_scenario_without_headers_prepares_none() {
        let plain = SCENARIO
            .replace("[headers]\nX-Const = \"c\"\n", "")
            .replace("headers = { X-Seq = \"s-{{seq}}\" }\n", "");
        assert!(factory(&plain, &[]).kinds[0].headers.is_empty());
    }
}
