//! What obsctl's OTLP receiver keeps of the spans it receives, within a byte budget:
//!
//! - every span, counted by its [`SpanShape`] (service, kind, name, error, HTTP fields): what
//!   the checks judge of span contents, in memory that grows with distinct shapes, not spans;
//! - for the run being followed ([`SpanStore::follow_run`]), per request whether its trace has
//!   a span and a SERVER span (8 bytes a request: accounting stays exact however long the run),
//!   and the links of the newest traces (span id, parent id, shape: 24 bytes a span, the newest
//!   3 MiB), so that the trees, SERVER spans and ids of those requests can be judged;
//! - optionally, every span as a [`ReceivedSpan`] record ([`SpanRecords`]), for tests and tools
//!   that read spans one by one.
//!
//! Every string is bounded ([`bounded`]) before it is copied out of the request, and shared once
//! kept. A span that would take the store past its budget or span cap is dropped whole (it is in
//! none of the three) and counted. [`SpanSnapshot`] freezes what the checks judge.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::mem::size_of;
use std::sync::{Arc, Mutex, MutexGuard};

use super::otlp_wire::{KeyValueRef, ResourceSpansRef, SpanRef, WireError, WireValue};
use super::otlp_wire::{resource_spans, validate};
use super::span::{
    AttrValue, Attributes, CHECKED_ATTRIBUTES, HttpFields, ReceivedSpan, Resource, ShapeCounts,
    SpanId, SpanKind, SpanShape, SpanStatus, TraceId, ValueRef, bounded,
};

/// Which spans are kept as [`ReceivedSpan`] records, besides the counts and links every mode
/// keeps for the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanRecords {
    /// No records: only what the checks read (`obsctl verify`, whose memory must not grow with
    /// every request).
    None,
    /// Each span with only the attributes checks read ([`CHECKED_ATTRIBUTES`]) and the
    /// resource's `service.name`.
    Checked,
    /// Each span with every attribute and resource attribute (tests read `db.system`,
    /// `user_id`, ...).
    All,
}

/// The limits of a [`SpanStore`].
#[derive(Debug, Clone)]
pub struct StoreLimits {
    /// Approximate bytes the store may hold; past them, spans are dropped and counted.
    pub budget_bytes: usize,
    /// Most spans kept, whatever their size.
    pub max_spans: u64,
    /// Which spans are kept as records.
    pub records: SpanRecords,
    /// Longest string kept (names, keys, values); longer ones are cut with a marker.
    pub max_value_bytes: usize,
    /// Most attributes read per span or resource (the OpenTelemetry SDKs' default limit).
    pub max_attributes: usize,
}

/// Bytes charged per distinct string kept: the `Arc` counts, the set's slot, the allocator's.
const STRING_OVERHEAD: usize = 48;

/// Bytes charged per distinct shape: the shape, its `Arc`, its count and its index slot.
const SHAPE_BYTES: usize = size_of::<SpanShape>() + 64;

/// What one export request left in the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Spans kept.
    pub kept: u64,
    /// Spans dropped: the budget or the span cap was reached.
    pub dropped: u64,
}

/// The spans received, as far as they are kept; see the module docs.
pub struct SpanStore {
    limits: StoreLimits,
    /// Approximate bytes held.
    used: usize,
    strings: HashSet<Arc<str>>,
    shape_ids: HashMap<Arc<SpanShape>, u32>,
    shapes: Vec<(Arc<SpanShape>, u64)>,
    records: Vec<ReceivedSpan>,
    /// The resource of the last batch: exporters send the same one with every batch.
    last_resource: Option<Arc<Resource>>,
    run: Option<RunIndex>,
    kept: u64,
    dropped: u64,
}

/// The resource of one `ResourceSpans`, as kept.
struct Batch {
    service: Option<Arc<str>>,
    /// Only when records are kept.
    resource: Option<Arc<Resource>>,
}

impl SpanStore {
    /// An empty store.
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            limits,
            used: 0,
            strings: HashSet::new(),
            shape_ids: HashMap::new(),
            shapes: Vec::new(),
            records: Vec::new(),
            last_resource: None,
            run: None,
            kept: 0,
            dropped: 0,
        }
    }

    /// Approximate bytes held (at most the budget plus one span's records).
    pub fn stored_bytes(&self) -> usize {
        self.used
    }

    /// Spans kept.
    pub fn span_count(&self) -> u64 {
        self.kept
    }

    /// Spans dropped because the budget or the span cap was reached.
    pub fn dropped_spans(&self) -> u64 {
        self.dropped
    }

    /// Spans received, kept or dropped.
    pub fn received_spans(&self) -> u64 {
        self.kept + self.dropped
    }

    /// The records kept, in arrival order (none with [`SpanRecords::None`]).
    pub fn records(&self) -> &[ReceivedSpan] {
        &self.records
    }

    /// Each distinct shape kept, with how many spans had it.
    pub fn shapes(&self) -> impl Iterator<Item = (&SpanShape, u64)> {
        self.shapes.iter().map(|(s, n)| (&**s, *n))
    }

    /// Whether a SERVER span of `service` was kept.
    pub fn has_server_span_of(&self, service: &str) -> bool {
        self.shapes()
            .any(|(shape, n)| n > 0 && shape.is_server_of(service))
    }

    /// How many traces of the followed run have a span kept (0 when no run is followed).
    pub fn run_trace_count(&self) -> u64 {
        self.run.as_ref().map_or(0, |run| run.traces)
    }

    /// Follows the run whose trace ids start with `prefix` (its 16-hex-digit run id): from now
    /// on the links of its traces are kept, and those of the records already kept are added.
    /// False when `prefix` is not a run id. Following another run forgets the previous one.
    pub fn follow_run(&mut self, prefix: &str) -> bool {
        if self.run.as_ref().is_some_and(|run| run.prefix == prefix) {
            return true;
        }
        let Some(mut run) = RunIndex::new(prefix) else {
            return false;
        };
        let earlier: Vec<(u64, SpanId, Option<SpanId>, SpanShape)> = self
            .records
            .iter()
            .filter_map(|r| {
                Some((
                    run.seq(&r.trace_id)?,
                    r.span_id,
                    r.parent_span_id,
                    r.shape(),
                ))
            })
            .collect();
        for (seq, span_id, parent, shape) in earlier {
            let server = shape.kind == SpanKind::Server;
            let shape = self.shape_index(shape, 0);
            run.add(seq, span_id, parent, shape, server);
        }
        let released = self.run.replace(run).map_or(0, |old| old.bytes);
        self.used = self.used.saturating_sub(released) + self.run.as_ref().map_or(0, |r| r.bytes);
        true
    }

    /// Adds the spans of an encoded `ExportTraceServiceRequest`. A malformed request changes
    /// nothing.
    pub fn ingest(&mut self, request: &[u8]) -> Result<Ingested, WireError> {
        validate(request)?;
        let (kept, dropped) = (self.kept, self.dropped);
        for resource_spans in resource_spans(request) {
            let batch = self.batch(&resource_spans);
            for scope in resource_spans.scopes() {
                if self.is_full() {
                    // Counted without reading: a flood costs no more than its bytes.
                    self.dropped += scope.span_count();
                    continue;
                }
                let scope_name = match self.limits.records {
                    SpanRecords::None => Arc::from(""),
                    _ => self.intern(&bounded(scope.name, self.limits.max_value_bytes)),
                };
                for span in scope.spans() {
                    if self.is_full() {
                        self.dropped += 1;
                    } else {
                        self.keep(&span, &batch, &scope_name);
                    }
                }
            }
        }
        Ok(Ingested {
            kept: self.kept - kept,
            dropped: self.dropped - dropped,
        })
    }

    fn is_full(&self) -> bool {
        self.used >= self.limits.budget_bytes || self.kept >= self.limits.max_spans
    }

    /// The service name and (for records) the resource of one `ResourceSpans`.
    fn batch(&mut self, resource_spans: &ResourceSpansRef<'_>) -> Batch {
        let max_attributes = self.limits.max_attributes;
        let attributes = || resource_spans.attributes().take(max_attributes);
        let service = attributes()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| match kv.value {
                WireValue::Str(s) => Some(s),
                _ => None,
            });
        let service = service.map(|s| self.intern(&bounded(s, self.limits.max_value_bytes)));
        let keep_all = match self.limits.records {
            SpanRecords::None => {
                return Batch {
                    service,
                    resource: None,
                };
            }
            SpanRecords::Checked => false,
            SpanRecords::All => true,
        };
        let kept: Vec<KeyValueRef<'_>> = attributes()
            .filter(|kv| keep_all || kv.key == "service.name")
            .collect();
        let resource = Resource::new(self.attributes(kept.into_iter()));
        let resource = match &self.last_resource {
            Some(last) if **last == resource => Arc::clone(last),
            _ => {
                self.used += resource.bytes();
                let resource = Arc::new(resource);
                self.last_resource = Some(Arc::clone(&resource));
                resource
            }
        };
        Batch {
            service,
            resource: Some(resource),
        }
    }

    /// Keeps one span: counts its shape, links it into the followed run, records it.
    fn keep(&mut self, span: &SpanRef<'_>, batch: &Batch, scope_name: &Arc<str>) {
        let max = self.limits.max_value_bytes;
        let name = self.intern(&bounded(span.name, max));
        let values = span
            .attributes()
            .take(self.limits.max_attributes)
            .map(|kv| (kv.key, value_ref(kv.value)));
        let http = HttpFields::from_attributes(values, &mut |s| self.intern(&bounded(s, max)));
        let shape = SpanShape {
            service: batch.service.clone(),
            kind: SpanKind::from_otlp(span.kind),
            name: Arc::clone(&name),
            error: span.status_code == 2,
            http,
        };
        let server = shape.kind == SpanKind::Server;
        let shape = self.shape_index(shape, 1);
        let trace_id = TraceId::from_bytes(span.trace_id).unwrap_or(TraceId::ZERO);
        let span_id = SpanId::from_bytes(span.span_id).unwrap_or(SpanId::ZERO);
        let parent = SpanId::from_bytes(span.parent_span_id).filter(|p| !p.is_zero());
        if let Some(run) = &mut self.run
            && let Some(seq) = run.seq(&trace_id)
        {
            let before = run.bytes;
            run.add(seq, span_id, parent, shape, server);
            self.used = self.used.saturating_sub(before) + run.bytes;
        }
        if let Some(resource) = &batch.resource {
            let record = ReceivedSpan {
                trace_id,
                span_id,
                parent_span_id: parent,
                name,
                kind: SpanKind::from_otlp(span.kind),
                status: SpanStatus::from_otlp(span.status_code, &bounded(span.status_message, max)),
                resource: Arc::clone(resource),
                scope_name: Arc::clone(scope_name),
                attributes: self.span_attributes(span),
                start_unix_nanos: span.start_unix_nanos,
                end_unix_nanos: span.end_unix_nanos,
            };
            self.used += record_bytes(&record);
            self.records.push(record);
        }
        self.kept += 1;
    }

    /// The attributes a record keeps of `span`.
    fn span_attributes(&mut self, span: &SpanRef<'_>) -> Attributes {
        let keep_all = self.limits.records == SpanRecords::All;
        let kept: Vec<KeyValueRef<'_>> = span
            .attributes()
            .take(self.limits.max_attributes)
            .filter(|kv| keep_all || CHECKED_ATTRIBUTES.contains(&kv.key))
            .collect();
        self.attributes(kept.into_iter())
    }

    /// Key-values as kept: keys shared, strings bounded, other values rendered as bounded text.
    fn attributes<'a>(&mut self, kvs: impl Iterator<Item = KeyValueRef<'a>>) -> Attributes {
        let max = self.limits.max_value_bytes;
        let mut kept = Vec::new();
        for kv in kvs {
            let key = self.intern(&bounded(kv.key, max));
            let value = match kv.value {
                WireValue::Str(s) => AttrValue::Str(bounded(s, max).into_owned()),
                WireValue::Int(i) => AttrValue::Int(i),
                WireValue::Double(d) => AttrValue::Double(d),
                WireValue::Bool(b) => AttrValue::Bool(b),
                other => AttrValue::Other(other.render(max)),
            };
            kept.push((key, value));
        }
        kept.into_iter().collect()
    }

    /// The shared copy of `s`, made (and charged) the first time it is seen.
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(s) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(s);
        self.used += s.len() + STRING_OVERHEAD;
        self.strings.insert(Arc::clone(&shared));
        shared
    }

    /// The index of `shape`, added (and charged) the first time; its count grows by `count`.
    fn shape_index(&mut self, shape: SpanShape, count: u64) -> u32 {
        if let Some(&index) = self.shape_ids.get(&shape) {
            if let Some(entry) = self.shapes.get_mut(index as usize) {
                entry.1 += count;
            }
            return index;
        }
        let index = self.shapes.len() as u32;
        let shape = Arc::new(shape);
        self.shape_ids.insert(Arc::clone(&shape), index);
        self.shapes.push((shape, count));
        self.used += SHAPE_BYTES;
        index
    }
}

impl fmt::Debug for SpanStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanStore")
            .field("limits", &self.limits)
            .field("used", &self.used)
            .field("kept", &self.kept)
            .field("dropped", &self.dropped)
            .field("shapes", &self.shapes.len())
            .field("records", &self.records.len())
            .finish_non_exhaustive()
    }
}

fn value_ref(value: WireValue<'_>) -> ValueRef<'_> {
    match value {
        WireValue::Str(s) => ValueRef::Str(s),
        WireValue::Int(i) => ValueRef::Int(i),
        _ => ValueRef::Other,
    }
}

/// Approximate bytes a record holds besides what it shares (names, keys, the resource).
fn record_bytes(record: &ReceivedSpan) -> usize {
    let message = match &record.status {
        SpanStatus::Error { message } => message.capacity(),
        _ => 0,
    };
    size_of::<ReceivedSpan>() + record.attributes.heap_bytes() + message
}

/// "No link": the end of a trace's chain, or a trace without spans.
const NO_LINK: u32 = u32::MAX;

/// Links per allocation: 96 KiB, so that growing never copies the links already kept.
const LINKS_PER_CHUNK: usize = 4096;

/// Chunks of links kept (3 MiB, about 131,000 spans: the newest 30,000 requests or more of a
/// service that sends up to 4 spans a request, as many as the log buffer keeps request lines).
/// Older chunks are released: their traces are no longer judged whole, but each trace's
/// counters ([`RunIndex::traces`], [`RunIndex::with_server`]) stay exact, so memory stops
/// growing with the run while accounting stays exact.
const WINDOW_CHUNKS: usize = 32;

/// How far past the highest request number a trace may be and still get a slot of the dense
/// table; the rest (not requests of the run, in practice) go to a map.
const DENSE_SLACK: u64 = 1 << 16;

/// Bytes charged per trace in the sparse map.
const FAR_ENTRY_BYTES: usize = 40;

/// One span of the followed run: enough to rebuild its trace's tree.
#[derive(Debug, Clone, Copy)]
struct Link {
    span_id: [u8; 8],
    /// All zeros for a root span.
    parent: [u8; 8],
    /// The previous span of the same trace, or [`NO_LINK`].
    prev: u32,
    /// Index into the store's shapes.
    shape: u32,
}

/// One request's trace: its latest link, and what its spans were.
#[derive(Debug, Clone, Copy)]
struct Head {
    link: u32,
    /// A SERVER span arrived.
    server: bool,
}

const NO_HEAD: Head = Head {
    link: NO_LINK,
    server: false,
};

/// The spans of the traces one run started, linked per trace. The run's trace ids are its run id
/// followed by the request's number, so a trace's latest span is found by that number. Only the
/// newest [`WINDOW_CHUNKS`] chunks of links are kept.
#[derive(Debug)]
struct RunIndex {
    /// The run id, 16 lowercase hex digits.
    prefix: String,
    run: [u8; 8],
    /// Per request number: its trace's latest link.
    heads: Vec<Head>,
    /// Request numbers far past the others.
    far: HashMap<u64, Head>,
    /// The chunks of links kept, oldest first; the first is chunk number `first_chunk`.
    links: VecDeque<Vec<Link>>,
    first_chunk: usize,
    len: u32,
    /// Traces with at least one span.
    traces: u64,
    /// Traces with a SERVER span.
    with_server: u64,
    /// Approximate bytes held.
    bytes: usize,
}

impl RunIndex {
    fn new(prefix: &str) -> Option<Self> {
        let lower = prefix
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let run = SpanId::from_hex(prefix).filter(|_| lower)?;
        Some(Self {
            prefix: prefix.to_owned(),
            run: *run.as_bytes(),
            heads: Vec::new(),
            far: HashMap::new(),
            links: VecDeque::new(),
            first_chunk: 0,
            len: 0,
            traces: 0,
            with_server: 0,
            bytes: 0,
        })
    }

    /// The request number of `trace`, when it is one of the run's traces.
    fn seq(&self, trace: &TraceId) -> Option<u64> {
        let (run, seq) = trace.as_bytes().split_at(8);
        let seq: [u8; 8] = seq.try_into().ok()?;
        (run == self.run).then(|| u64::from_be_bytes(seq))
    }

    /// The index of the oldest link kept.
    fn base(&self) -> usize {
        self.first_chunk * LINKS_PER_CHUNK
    }

    /// Adds a span of request `seq`'s trace (`server` when it is a SERVER span).
    fn add(&mut self, seq: u64, span_id: SpanId, parent: Option<SpanId>, shape: u32, server: bool) {
        if self.len == NO_LINK {
            return;
        }
        let index = self.len;
        let Some(head) = self.head_mut(seq) else {
            return;
        };
        let prev = std::mem::replace(&mut head.link, index);
        let first_server = server && !head.server;
        head.server |= server;
        self.traces += u64::from(prev == NO_LINK);
        self.with_server += u64::from(first_server);
        if self
            .links
            .back()
            .is_none_or(|chunk| chunk.len() == LINKS_PER_CHUNK)
        {
            if self.links.len() == WINDOW_CHUNKS && self.links.pop_front().is_some() {
                self.first_chunk += 1;
                self.bytes -= LINKS_PER_CHUNK * size_of::<Link>();
            }
            self.links.push_back(Vec::with_capacity(LINKS_PER_CHUNK));
            self.bytes += LINKS_PER_CHUNK * size_of::<Link>();
        }
        if let Some(chunk) = self.links.back_mut() {
            chunk.push(Link {
                span_id: *span_id.as_bytes(),
                parent: *parent.unwrap_or(SpanId::ZERO).as_bytes(),
                prev,
                shape,
            });
        }
        self.len += 1;
    }

    /// The head of request `seq`'s trace, made if needed.
    fn head_mut(&mut self, seq: u64) -> Option<&mut Head> {
        let dense = self.heads.len() as u64;
        if !self.far.contains_key(&seq) && seq < dense + DENSE_SLACK {
            let slot = usize::try_from(seq).ok()?;
            if seq >= dense {
                self.heads.resize(slot + 1, NO_HEAD);
                self.bytes += (slot + 1 - dense as usize) * size_of::<Head>();
            }
            return self.heads.get_mut(slot);
        }
        if !self.far.contains_key(&seq) {
            self.bytes += FAR_ENTRY_BYTES;
        }
        Some(self.far.entry(seq).or_insert(NO_HEAD))
    }

    fn head(&self, seq: u64) -> u32 {
        self.head_of(seq).link
    }

    /// Request `seq`'s head: its latest link and whether a SERVER span arrived.
    fn head_of(&self, seq: u64) -> Head {
        if let Some(head) = self.far.get(&seq) {
            return *head;
        }
        usize::try_from(seq)
            .ok()
            .and_then(|i| self.heads.get(i))
            .copied()
            .unwrap_or(NO_HEAD)
    }

    /// The link at `index`, unless it was never added or is no longer kept.
    fn link(&self, index: u32) -> Option<&Link> {
        let index = (index as usize).checked_sub(self.base())?;
        self.links
            .get(index / LINKS_PER_CHUNK)?
            .get(index % LINKS_PER_CHUNK)
    }

    /// The links of the trace whose latest link is `head`, below `upto`, oldest first; `None`
    /// when some of them are no longer kept (a partial trace is not judged).
    fn chain(&self, head: u32, upto: u32) -> Option<Vec<Link>> {
        let mut out = Vec::new();
        let mut next = head;
        while next != NO_LINK {
            let link = self.link(next)?;
            if next < upto {
                out.push(*link);
            }
            next = link.prev;
        }
        out.reverse();
        Some(out)
    }

    /// Every request number with a span, dense ones in order, then the far ones in order.
    fn seqs(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        let mut far: Vec<(u64, u32)> = self.far.iter().map(|(s, h)| (*s, h.link)).collect();
        far.sort_unstable();
        self.heads
            .iter()
            .enumerate()
            .filter(|(_, head)| head.link != NO_LINK)
            .map(|(seq, head)| (seq as u64, head.link))
            .chain(far)
    }
}

/// One span of a trace of the followed run, as the checks of trees and ids read it.
#[derive(Debug, Clone, Copy)]
pub struct TraceSpan<'a> {
    /// The span id.
    pub span_id: SpanId,
    /// The parent's span id; `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// What else the checks read of it.
    pub shape: &'a SpanShape,
}

/// One trace of the followed run, with its spans in arrival order.
#[derive(Debug, Clone)]
pub struct RunTrace<'a> {
    /// The trace id.
    pub trace_id: TraceId,
    /// Its spans (at least one).
    pub spans: Vec<TraceSpan<'a>>,
}

/// What arrived of one trace id; see [`RunTraces::follow`].
#[derive(Debug, Clone)]
pub enum Followed<'a> {
    /// Not a trace of the followed run (obsctl did not start it), or not a trace id at all.
    NotRun,
    /// One of the run's traces, of which no span arrived.
    NoSpan,
    /// One of the run's traces, with spans but no SERVER span.
    NoServerSpan,
    /// Its SERVER span arrived, and its spans are still kept.
    Kept(RunTrace<'a>),
    /// Its SERVER span arrived; its spans are no longer kept (older than the newest traces).
    Counted,
}

/// The traces of the followed run as of a snapshot; see [`SpanSnapshot::with_run`].
pub struct RunTraces<'a> {
    index: &'a RunIndex,
    shapes: &'a [(Arc<SpanShape>, u64)],
    upto: u32,
}

impl<'a> RunTraces<'a> {
    /// The run's trace-id prefix (its run id).
    pub fn prefix(&self) -> &str {
        &self.index.prefix
    }

    /// Traces of the run with at least one span, whether their links are still kept or not.
    pub fn trace_count(&self) -> u64 {
        self.index.traces
    }

    /// Traces of the run with a SERVER span, whether their links are still kept or not.
    pub fn with_server_count(&self) -> u64 {
        self.index.with_server
    }

    /// Every trace of the run whose spans are all still kept (the newest ones), in order of
    /// request number. Fewer than [`RunTraces::trace_count`] once the run's links
    /// outgrew the window (about the newest 30,000 requests).
    pub fn traces(&self) -> impl Iterator<Item = RunTrace<'a>> + '_ {
        self.index
            .seqs()
            .filter_map(|(seq, head)| self.trace_at(seq, head))
    }

    /// What arrived of the trace `trace_id` (32 lowercase hex digits): whether it is one of the
    /// run's, has spans and a SERVER span, and its spans when their links are still kept.
    pub fn follow(&self, trace_id: &str) -> Followed<'a> {
        let Some(id) = TraceId::from_hex(trace_id).filter(|id| *id == trace_id) else {
            return Followed::NotRun;
        };
        let Some(seq) = self.index.seq(&id) else {
            return Followed::NotRun;
        };
        let head = self.index.head_of(seq);
        if head.link == NO_LINK {
            return Followed::NoSpan;
        }
        if !head.server {
            return Followed::NoServerSpan;
        }
        match self.trace_at(seq, head.link) {
            Some(trace) => Followed::Kept(trace),
            None => Followed::Counted,
        }
    }

    /// The trace `trace_id` (32 lowercase hex digits), when it is one of the run's and has a
    /// span.
    pub fn trace(&self, trace_id: &str) -> Option<RunTrace<'a>> {
        let id = TraceId::from_hex(trace_id).filter(|id| *id == trace_id)?;
        let seq = self.index.seq(&id)?;
        self.trace_at(seq, self.index.head(seq))
    }

    fn trace_at(&self, seq: u64, head: u32) -> Option<RunTrace<'a>> {
        let spans: Vec<TraceSpan<'a>> = self
            .index
            .chain(head, self.upto)?
            .into_iter()
            .filter_map(|link| {
                Some(TraceSpan {
                    span_id: SpanId::from_bytes(&link.span_id)?,
                    parent_span_id: SpanId::from_bytes(&link.parent).filter(|p| !p.is_zero()),
                    shape: self.shapes.get(link.shape as usize)?.0.as_ref(),
                })
            })
            .collect();
        if spans.is_empty() {
            return None;
        }
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.index.run);
        bytes[8..].copy_from_slice(&seq.to_be_bytes());
        Some(RunTrace {
            trace_id: TraceId::from_bytes(&bytes)?,
            spans,
        })
    }
}

/// The spans as the checks judge them, frozen at one moment: spans that arrive later are in
/// none of its answers. Taking one copies the shape counts only; the run's traces are read
/// from the store, up to the point the snapshot was taken.
#[derive(Clone)]
pub struct SpanSnapshot {
    shapes: ShapeCounts,
    kept: u64,
    dropped: u64,
    /// The store, the followed run's prefix and how many of its links existed.
    run: Option<(Arc<Mutex<SpanStore>>, String, u32)>,
}

impl SpanSnapshot {
    /// What `store` holds now.
    pub fn take(store: &Arc<Mutex<SpanStore>>) -> Self {
        let held = lock(store);
        Self {
            shapes: ShapeCounts::from_counts(
                held.shapes
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(s, n)| (Arc::clone(s), *n))
                    .collect(),
            ),
            kept: held.kept,
            dropped: held.dropped,
            run: held
                .run
                .as_ref()
                .map(|run| (Arc::clone(store), run.prefix.clone(), run.len)),
        }
    }

    /// Every span kept, counted by shape.
    pub fn shapes(&self) -> &ShapeCounts {
        &self.shapes
    }

    /// Spans kept.
    pub fn span_count(&self) -> u64 {
        self.kept
    }

    /// Spans the receiver dropped past its budget or span cap.
    pub fn dropped_spans(&self) -> u64 {
        self.dropped
    }

    /// The prefix of the run the receiver followed, if any.
    pub fn run_prefix(&self) -> Option<&str> {
        self.run.as_ref().map(|(_, prefix, _)| prefix.as_str())
    }

    /// Calls `judge` with the followed run's traces (the store is locked meanwhile: keep it
    /// short and synchronous); `None` when the receiver followed no run, or another one since.
    pub fn with_run<T>(&self, judge: impl FnOnce(&RunTraces<'_>) -> T) -> Option<T> {
        let (store, prefix, upto) = self.run.as_ref()?;
        let held = lock(store);
        let index = held.run.as_ref().filter(|run| run.prefix == *prefix)?;
        Some(judge(&RunTraces {
            index,
            shapes: &held.shapes,
            upto: *upto,
        }))
    }
}

impl fmt::Debug for SpanSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanSnapshot")
            .field("kept", &self.kept)
            .field("dropped", &self.dropped)
            .field("shapes", &self.shapes)
            .field("run", &self.run_prefix())
            .finish()
    }
}

/// The store, whatever a panicking holder left: its counters and tables stay consistent
/// between spans.
pub(crate) fn lock(store: &Mutex<SpanStore>) -> MutexGuard<'_, SpanStore> {
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message as _;

    use super::*;

    const RUN: &str = "00000000000000ab";

    fn limits(records: SpanRecords, budget_bytes: usize) -> StoreLimits {
        StoreLimits {
            budget_bytes,
            max_spans: u64::MAX,
            records,
            max_value_bytes: 256,
            max_attributes: 128,
        }
    }

    /// Span `id` of request `seq` of the run, child of `parent` (0: the caller's span).
    fn span(seq: u64, id: u8, parent: u8, kind: i32) -> Span {
        let trace = [[0, 0, 0, 0, 0, 0, 0, 0xab], seq.to_be_bytes()].concat();
        Span {
            trace_id: trace,
            span_id: vec![id; 8],
            parent_span_id: vec![if parent == 0 { 0xcc } else { parent }; 8],
            name: format!("span {id}"),
            kind,
            ..Default::default()
        }
    }

    fn encoded(spans: Vec<Span>) -> Vec<u8> {
        let service = KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("svc".into())),
            }),
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![service],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    fn ids(trace: &RunTrace<'_>) -> Vec<String> {
        trace.spans.iter().map(|s| s.span_id.hex()).collect()
    }

    #[test]
    fn a_snapshot_sees_the_run_as_it_was_when_taken() {
        let store = Arc::new(Mutex::new(SpanStore::new(limits(
            SpanRecords::None,
            1 << 20,
        ))));
        assert!(lock(&store).follow_run(RUN));
        let far = 1 << 40;
        let first = encoded(vec![span(0, 2, 1, 1), span(0, 1, 0, 2), span(far, 1, 0, 2)]);
        lock(&store).ingest(&first).expect("a well-formed request");
        let snapshot = SpanSnapshot::take(&store);
        let later = encoded(vec![span(0, 3, 1, 3), span(1, 1, 0, 2)]);
        lock(&store).ingest(&later).expect("a well-formed request");

        let seen = snapshot.with_run(|run| {
            let traces: Vec<(String, Vec<String>)> =
                run.traces().map(|t| (t.trace_id.hex(), ids(&t))).collect();
            (traces, run.trace(&format!("{RUN}{:016x}", 1)).is_some())
        });
        let (traces, second_visible) = seen.expect("the store follows the run");
        assert_eq!(
            traces,
            [
                (
                    format!("{RUN}{:016x}", 0),
                    vec!["0202020202020202".to_owned(), "0101010101010101".to_owned()]
                ),
                (
                    format!("{RUN}{far:016x}"),
                    vec!["0101010101010101".to_owned()]
                ),
            ]
        );
        assert!(
            !second_visible,
            "a trace that began after the snapshot is not in it"
        );
        assert_eq!(snapshot.span_count(), 3);
        assert_eq!(lock(&store).run_trace_count(), 3);
        let now = SpanSnapshot::take(&store)
            .with_run(|run| run.traces().map(|t| t.spans.len()).sum::<usize>());
        assert_eq!(now, Some(5));
    }

    #[test]
    fn a_long_run_keeps_exact_trace_counts_and_the_links_of_its_newest_traces_only() {
        let store = Arc::new(Mutex::new(SpanStore::new(limits(
            SpanRecords::None,
            1 << 30,
        ))));
        assert!(lock(&store).follow_run(RUN));
        // Two spans a request (a SERVER span and its child), except every 10th request, whose
        // SERVER span never arrives: far more links than the window holds.
        let requests = ((WINDOW_CHUNKS * LINKS_PER_CHUNK) as u64).div_ceil(1_000) * 1_000;
        let mut peak = 0;
        for first in (0..requests).step_by(1_000) {
            let spans = (first..first + 1_000)
                .flat_map(|seq| {
                    let server = (seq % 10 != 0).then(|| span(seq, 1, 0, 2));
                    server.into_iter().chain([span(seq, 2, 1, 3)])
                })
                .collect();
            lock(&store).ingest(&encoded(spans)).expect("well-formed");
            peak = peak.max(lock(&store).stored_bytes());
        }
        let (traces, with_server, whole, newest) = SpanSnapshot::take(&store)
            .with_run(|run| {
                let whole: Vec<RunTrace<'_>> = run.traces().collect();
                let newest = run.trace(&format!("{RUN}{:016x}", requests - 1)).is_some();
                let oldest = run.trace(&format!("{RUN}{:016x}", 1)).is_some();
                assert!(!oldest, "the oldest traces are released");
                (
                    run.trace_count(),
                    run.with_server_count(),
                    whole.len() as u64,
                    newest,
                )
            })
            .expect("the store follows the run");
        assert_eq!((traces, with_server), (requests, requests - requests / 10));
        assert!(newest);
        assert!(whole > 10_000 && whole < requests, "{whole} whole traces");
        // The window and 8 bytes per request, never the links of every span.
        let links = WINDOW_CHUNKS * LINKS_PER_CHUNK * size_of::<Link>();
        let heads = requests as usize * size_of::<Head>();
        assert!(peak <= links + heads + (1 << 16), "{peak} bytes held");
    }

    #[test]
    fn following_a_run_catches_up_from_the_records_kept() {
        let store = Arc::new(Mutex::new(SpanStore::new(limits(
            SpanRecords::Checked,
            1 << 20,
        ))));
        lock(&store)
            .ingest(&encoded(vec![span(4, 1, 0, 2), span(4, 2, 1, 1)]))
            .expect("a well-formed request");
        assert!(!lock(&store).follow_run("not a run id"));
        assert!(lock(&store).follow_run(RUN));
        let trace = SpanSnapshot::take(&store).with_run(|run| {
            let trace = run
                .trace(&format!("{RUN}{:016x}", 4))
                .expect("request 4's trace");
            (ids(&trace), trace.spans[1].parent_span_id.map(|p| p.hex()))
        });
        assert_eq!(
            trace,
            Some((
                vec!["0101010101010101".to_owned(), "0202020202020202".to_owned()],
                Some("0101010101010101".to_owned())
            ))
        );
    }

    #[test]
    fn past_the_budget_whole_spans_are_dropped_and_the_rest_add_up() {
        let mut store = SpanStore::new(limits(SpanRecords::All, 64 * 1024));
        let spans = (0..2000).map(|i| span(i, 1, 0, 2)).collect();
        let ingested = store
            .ingest(&encoded(spans))
            .expect("a well-formed request");
        assert!(ingested.dropped > 0, "{ingested:?}");
        assert_eq!(ingested.kept + ingested.dropped, 2000);
        assert_eq!(store.records().len() as u64, ingested.kept);
        assert_eq!(store.shapes().map(|(_, n)| n).sum::<u64>(), ingested.kept);
        assert!(
            store.stored_bytes() < 64 * 1024 + 1024,
            "{}",
            store.stored_bytes()
        );
    }

    #[test]
    fn a_malformed_request_changes_nothing() {
        let mut store = SpanStore::new(limits(SpanRecords::All, 1 << 20));
        let mut bytes = encoded(vec![span(0, 1, 0, 2)]);
        bytes.truncate(bytes.len() - 3);
        assert!(store.ingest(&bytes).is_err());
        assert_eq!((store.span_count(), store.stored_bytes()), (0, 0));
    }
}
