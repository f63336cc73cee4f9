//! The compact form of a parsed body, sized by the body and not by the number of strings in it:
//! the body text is kept once and every name, label value and HELP text is a [`Span`] of it
//! (unescaped strings go to a side buffer); names are interned as [`Sym`]s; samples are
//! fixed-size records grouped by family, their labels one shared array. A 16-byte labelled
//! sample line costs 3.3 times its size, body included, where a map and owned strings per
//! sample cost twenty times and more.

use std::hash::{BuildHasher, Hash, Hasher};

use hashbrown::{DefaultHashBuilder, HashTable};

use super::{Format, MetricType};

/// A string of the parsed body: a byte range of the body text, or (from `body.len()` on) of the
/// side buffer that holds unescaped label values and HELP texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Span {
    pub(super) start: u32,
    pub(super) len: u32,
}

/// An interned metric or label name: an index into [`Store::names`].
pub(super) type Sym = u32;

/// "No family" in the builder's name tables.
pub(super) const NONE: u32 = u32::MAX;

/// The body text and the strings unescaping produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Text {
    /// The body, as received (kept, not copied: every span points into it).
    pub(super) body: String,
    /// Unescaped label values and HELP texts, addressed from `body.len()` on.
    pub(super) extra: String,
}

impl Text {
    /// The string `span` names (empty if it names nothing, which the parser never produces).
    pub(super) fn get(&self, span: Span) -> &str {
        let start = span.start as usize;
        let (text, start) = match start.checked_sub(self.body.len()) {
            Some(in_extra) => (&self.extra, in_extra),
            None => (&self.body, start),
        };
        text.get(start..start + span.len as usize)
            .unwrap_or_default()
    }
}

/// One sample line: 24 bytes whatever its labels.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) struct SampleRecord {
    pub(super) value: f64,
    /// 1-based line number.
    pub(super) line: u32,
    pub(super) name: Sym,
    /// Its labels are `Store::labels[labels..next]`, `next` being the following record's
    /// `labels` (records and labels are kept in the same order).
    pub(super) labels: u32,
    /// Index of its family in `Store::families`.
    pub(super) family: u32,
}

/// One label of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct LabelRecord {
    pub(super) name: Sym,
    pub(super) value: Span,
}

/// One family: its metadata and where its samples are.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FamilyRecord {
    pub(super) name: Sym,
    pub(super) help: Option<Span>,
    /// OpenMetrics `# UNIT`.
    pub(super) unit: Option<Span>,
    pub(super) kind: MetricType,
    pub(super) type_declared: bool,
    /// Its samples are `Store::samples[start..start + len]`.
    pub(super) start: u32,
    pub(super) len: u32,
}

/// Everything a parse keeps.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Store {
    pub(super) text: Text,
    /// Interned names: `Sym` to span.
    pub(super) names: Vec<Span>,
    pub(super) families: Vec<FamilyRecord>,
    /// Grouped by family, in body order within each.
    pub(super) samples: Vec<SampleRecord>,
    pub(super) labels: Vec<LabelRecord>,
    /// `(line, timestamp)` of the samples that have one, by line.
    pub(super) timestamps: Vec<(u32, i64)>,
    /// `le` and `quantile`, when the body names them (labels the series helpers leave out).
    pub(super) le: Option<Sym>,
    pub(super) quantile: Option<Sym>,
    /// The format the body was read as.
    pub(super) format: Format,
    /// The exemplars of the samples that have one, by line.
    pub(super) exemplars: Vec<ExemplarRecord>,
    /// Their labels: `exemplar_labels[labels..labels + len]` for each.
    pub(super) exemplar_labels: Vec<LabelRecord>,
}

/// An OpenMetrics exemplar: the labels, value and timestamp after a sample's ` # `.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ExemplarRecord {
    /// The line of the sample it belongs to.
    pub(super) line: u32,
    pub(super) labels: u32,
    pub(super) len: u32,
    pub(super) value: f64,
    /// Milliseconds since the Unix epoch.
    pub(super) timestamp_ms: Option<i64>,
}

impl Store {
    /// The string an interned name stands for.
    pub(super) fn name(&self, sym: Sym) -> &str {
        self.names
            .get(sym as usize)
            .map_or("", |span| self.text.get(*span))
    }

    /// The labels of the sample at `index` of `samples`.
    pub(super) fn labels_of(&self, index: usize) -> &[LabelRecord] {
        let start = self.samples.get(index).map_or(0, |s| s.labels as usize);
        let end = self
            .samples
            .get(index + 1)
            .map_or(self.labels.len(), |s| s.labels as usize);
        self.labels.get(start..end).unwrap_or_default()
    }

    /// The exemplar of the sample on `line`, if it has one.
    pub(super) fn exemplar(&self, line: u32) -> Option<&ExemplarRecord> {
        let i = self
            .exemplars
            .binary_search_by_key(&line, |e| e.line)
            .ok()?;
        self.exemplars.get(i)
    }

    /// The labels of an exemplar.
    pub(super) fn exemplar_labels_of(&self, record: &ExemplarRecord) -> &[LabelRecord] {
        let start = record.labels as usize;
        self.exemplar_labels
            .get(start..start + record.len as usize)
            .unwrap_or_default()
    }

    /// The timestamp of the sample on `line`, if it has one.
    pub(super) fn timestamp(&self, line: u32) -> Option<i64> {
        let i = self
            .timestamps
            .binary_search_by_key(&line, |(l, _)| *l)
            .ok()?;
        self.timestamps.get(i).map(|(_, ts)| *ts)
    }

    /// Put each family's samples (and their labels) next to each other, body order kept within
    /// a family, and record where each family's run starts. A body that already lists each
    /// family's samples together, as every client library writes it, is left as it is.
    pub(super) fn group_by_family(&mut self) {
        let grouped = self.samples.windows(2).all(|w| w[0].family <= w[1].family);
        if !grouped {
            self.regroup();
        }
        for i in 0..self.samples.len() {
            let family = self.samples[i].family;
            if (i == 0 || self.samples[i - 1].family != family)
                && let Some(record) = self.families.get_mut(family as usize)
            {
                record.start = i as u32;
            }
        }
    }

    /// A counting sort of samples and labels by family (stable, so body order stays within a
    /// family). Only interleaved bodies pay for the copies.
    fn regroup(&mut self) {
        let families = self.families.len();
        let mut sample_at = vec![0u32; families];
        let mut label_at = vec![0u32; families];
        let mut samples_seen = 0u32;
        let mut labels_seen = 0u32;
        let mut label_counts = vec![0u32; families];
        for i in 0..self.samples.len() {
            let family = self.samples[i].family as usize;
            label_counts[family] += self.labels_of(i).len() as u32;
        }
        for (f, record) in self.families.iter().enumerate() {
            sample_at[f] = samples_seen;
            label_at[f] = labels_seen;
            samples_seen += record.len;
            labels_seen += label_counts[f];
        }
        drop(label_counts);
        let mut samples = vec![SampleRecord::default(); self.samples.len()];
        let mut labels = vec![LabelRecord::default(); self.labels.len()];
        for i in 0..self.samples.len() {
            let mut sample = self.samples[i];
            let family = sample.family as usize;
            let from = self.labels_of(i);
            let to = label_at[family] as usize;
            labels[to..to + from.len()].copy_from_slice(from);
            sample.labels = to as u32;
            label_at[family] += from.len() as u32;
            samples[sample_at[family] as usize] = sample;
            sample_at[family] += 1;
        }
        self.samples = samples;
        self.labels = labels;
    }
}

/// Interns names while a body is parsed: each distinct name is stored once, as a span of the
/// body, and found again by its text.
#[derive(Default)]
pub(super) struct Interner {
    table: HashTable<Sym>,
    hasher: DefaultHashBuilder,
}

impl Interner {
    /// The symbol of `text` (the part of `body` that `span` names), added when new.
    pub(super) fn intern(&mut self, body: &str, names: &mut Vec<Span>, span: Span) -> Sym {
        let text = slice(body, span);
        let hash = self.hasher.hash_one(text);
        let found = self
            .table
            .find(hash, |&sym| slice(body, names[sym as usize]) == text);
        if let Some(&sym) = found {
            return sym;
        }
        let sym = names.len() as Sym;
        names.push(span);
        let hasher = &self.hasher;
        self.table.insert_unique(hash, sym, |&sym| {
            hasher.hash_one(slice(body, names[sym as usize]))
        });
        sym
    }

    /// The symbol of `text`, when it was interned.
    pub(super) fn get(&self, body: &str, names: &[Span], text: &str) -> Option<Sym> {
        let hash = self.hasher.hash_one(text);
        self.table
            .find(hash, |&sym| slice(body, names[sym as usize]) == text)
            .copied()
    }
}

fn slice(body: &str, span: Span) -> &str {
    let start = span.start as usize;
    body.get(start..start + span.len as usize)
        .unwrap_or_default()
}

/// The samples that repeat an earlier sample's name and labels: how many, and the first one in
/// body order with the sample it repeats (indices into `samples`). One pass with a table of the
/// distinct series seen so far, 4 bytes an entry: 900,000 copies of one series cost one entry.
/// Samples of one name may sit in two families (a family declared under a sample name after
/// such samples joined another), so the table spans families.
pub(super) fn duplicates(store: &Store) -> Option<(u64, usize, usize)> {
    let hasher = DefaultHashBuilder::default();
    let hash = |index: usize| {
        let mut state = hasher.build_hasher();
        if let Some(sample) = store.samples.get(index) {
            sample.name.hash(&mut state);
        }
        for label in store.labels_of(index) {
            label.name.hash(&mut state);
            store.text.get(label.value).hash(&mut state);
        }
        state.finish()
    };
    let same = |a: usize, b: usize| {
        let (la, lb) = (store.labels_of(a), store.labels_of(b));
        store.samples[a].name == store.samples[b].name
            && la.len() == lb.len()
            && la.iter().zip(lb).all(|(x, y)| {
                x.name == y.name && store.text.get(x.value) == store.text.get(y.value)
            })
    };
    // Sized once: growing would hold the old table and the new at once.
    let mut table: HashTable<u32> = HashTable::with_capacity(store.samples.len());
    let mut count = 0u64;
    let mut first: Option<(usize, usize)> = None;
    // Family by family: the copies a later family holds come later in the body too.
    for index in 0..store.samples.len() {
        let h = hash(index);
        if let Some(&original) = table.find(h, |&other| same(index, other as usize)) {
            count += 1;
            let line = |i: usize| store.samples[i].line;
            if first.is_none_or(|(dup, _)| line(index) < line(dup)) {
                first = Some((index, original as usize));
            }
        } else {
            table.insert_unique(h, index as u32, |&other| hash(other as usize));
        }
    }
    first.map(|(dup, original)| (count, dup, original))
}
