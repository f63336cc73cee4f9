//! Builds the HTTP request for a sequence number: method, rendered path and body, `Host`, the
//! run's tags. Everything that does not change between requests is prepared once.

use super::tagging::{RUN_ID_HEADER, RunId};
use crate::scenario::{RenderContext, RequestSpec, Target};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
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
    /// The path a request that never started is counted under (see [`RequestFactory::unsent_path`]).
    unsent: Arc<str>,
    /// The body when the body template has no placeholder.
    constant_body: Option<Bytes>,
    content_type: Option<HeaderValue>,
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
    pub fn new(specs: &[RequestSpec], target: &Target, run_id: RunId) -> Self {
        let run_id_text = run_id.to_string();
        let ctx = RenderContext {
            seq: 0,
            run_id: &run_id_text,
        };
        let kinds = specs
            .iter()
            .map(|spec| {
                let constant = spec
                    .path
                    .is_constant()
                    .then(|| uri_and_path(target, &spec.path.render(ctx, &mut rand::rng())))
                    .flatten();
                let unsent = match &constant {
                    Some((_, path)) => Arc::clone(path),
                    None => Arc::from(target.request_target(spec.path.as_str())),
                };
                Prepared {
                    constant,
                    unsent,
                    constant_body: spec
                        .body
                        .as_ref()
                        .filter(|b| b.is_constant())
                        .map(|b| Bytes::from(b.render(ctx, &mut rand::rng()))),
                    content_type: HeaderValue::from_str(&spec.content_type).ok(),
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

    /// The path under which a request of kind `index` that never started is counted: the
    /// constant path, or the path template as written.
    pub fn unsent_path(&self, index: usize) -> Arc<str> {
        self.kinds
            .get(index)
            .map_or_else(|| Arc::from(""), |kind| Arc::clone(&kind.unsent))
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
        let request = uri.and_then(|uri| self.assemble(kind, uri, body, seq, span_id));
        Built { request, path }
    }

    fn assemble(
        &self,
        kind: &Prepared,
        uri: Uri,
        body: Option<Bytes>,
        seq: u64,
        span_id: u64,
    ) -> Option<Request<Full<Bytes>>> {
        let traceparent = self.run_id.traceparent_bytes(seq, span_id);
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.method_mut() = kind.spec.method.clone();
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone()?);
        headers.insert(TRACEPARENT, HeaderValue::from_bytes(&traceparent).ok()?);
        headers.insert(RUN_ID, self.run_id_value.clone()?);
        if let Some(body) = body {
            headers.insert(CONTENT_TYPE, kind.content_type.clone()?);
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
