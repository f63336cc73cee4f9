//! The latency histograms of a run report, serialized so that any report can be re-analysed and
//! merged exactly: HdrHistogram's V2 format, deflate-compressed (the `HISTFILE` encoding of
//! HdrHistogram's Java, C and Go ports), in base64. Values are microseconds.

use super::{Latency, round3};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};

/// The name of the encoding, as the report states it.
pub const ENCODING: &str = "hdr-v2-deflate-base64";

/// The unit of the recorded values, as the report states it.
pub const UNIT: &str = "us";

/// Why a serialized histogram could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    /// Not base64.
    #[error("not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// Not an HdrHistogram V2 (deflate) encoding.
    #[error("not an HdrHistogram V2 encoding: {0}")]
    Decode(String),
    /// The histogram could not be written.
    #[error("cannot encode the histogram: {0}")]
    Encode(String),
    /// Two histograms could not be added (their bounds differ).
    #[error("cannot merge histograms: {0}")]
    Merge(String),
}

/// The latency statistics of `histogram` (values in microseconds), in milliseconds.
pub fn latency(histogram: &Histogram<u64>) -> Latency {
    let samples = histogram.len();
    let ms = |micros: u64| round3(micros as f64 / 1000.0);
    let at = |q: f64| (samples > 0).then(|| ms(histogram.value_at_quantile(q)));
    Latency {
        samples,
        mean: (samples > 0).then(|| round3(histogram.mean() / 1000.0)),
        p50: at(0.5),
        p90: at(0.9),
        p95: at(0.95),
        p99: at(0.99),
        p99_9: at(0.999),
        max: (samples > 0).then(|| ms(histogram.max())),
    }
}

/// `histogram` in the report's encoding.
pub fn encode(histogram: &Histogram<u64>) -> Result<String, HistogramError> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(histogram, &mut bytes)
        .map_err(|e| HistogramError::Encode(format!("{e:?}")))?;
    Ok(STANDARD.encode(bytes))
}

/// A histogram read back from the report's encoding.
pub fn decode(text: &str) -> Result<Histogram<u64>, HistogramError> {
    let bytes = STANDARD.decode(text.trim())?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| HistogramError::Decode(format!("{e:?}")))
}

/// The sum of `histograms` (empty when there is none): the histogram of all their samples.
pub fn merge<'a>(
    histograms: impl IntoIterator<Item = &'a Histogram<u64>>,
) -> Result<Option<Histogram<u64>>, HistogramError> {
    let mut total: Option<Histogram<u64>> = None;
    for histogram in histograms {
        match &mut total {
            None => total = Some(histogram.clone()),
            Some(sum) => sum
                .add(histogram)
                .map_err(|e| HistogramError::Merge(format!("{e:?}")))?,
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
        for v in values {
            h.saturating_record(*v);
        }
        h
    }

    #[test]
    fn a_histogram_survives_its_encoding() {
        let h = histogram(&[1, 250, 250, 9_999, 123_456, 3_000_000]);
        let back = encode(&h)
            .and_then(|text| decode(&text))
            .expect("round trip");
        assert_eq!(back, h);
    }

    #[test]
    fn merged_histograms_are_the_histogram_of_every_sample() {
        let (a, b) = ([10, 20, 30, 4_000], [15, 25, 90_000]);
        let both: Vec<u64> = a.iter().chain(&b).copied().collect();
        let merged = merge([&histogram(&a), &histogram(&b)]).expect("same bounds");
        assert_eq!(merged, Some(histogram(&both)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in [
            "",
            "not base64!",
            "AAAA",
            &STANDARD.encode([0x1c, 0x84, 0x93, 0x14, 0, 0, 0, 9, 1]),
        ] {
            assert!(decode(text).is_err(), "{text}");
        }
    }
}
