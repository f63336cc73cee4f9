//! Run ids and W3C trace context for the requests of a run.
//!
//! CONTRACT (the checks depend on it): the run id is 16 lowercase hex characters (64 random bits,
//! fresh per run); the trace id of request `seq` (0-based, in send order) is the run id
//! followed by `format!("{seq:016x}")`, so every trace id of a run is derivable from its report
//! without storing them. Each request sends `traceparent: 00-{trace_id}-{span_id}-01` (sampled)
//! with a random non-zero span id, and `x-obsctl-run-id: {run_id}`.

use std::fmt;

/// Name of the header that carries the run id.
pub const RUN_ID_HEADER: &str = "x-obsctl-run-id";

/// A run's id: 64 bits shown as 16 lowercase hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunId(u64);

impl RunId {
    /// A fresh random run id (never zero, so trace ids are never all zeros).
    pub fn random() -> Self {
        Self(nonzero_random())
    }

    /// A run id from its 16 hex characters, e.g. read back from a report.
    pub fn parse(hex: &str) -> Option<Self> {
        let valid = hex.len() == 16 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid
            .then(|| u64::from_str_radix(hex, 16).ok())
            .flatten()
            .map(Self)
    }

    /// The 32-hex-character trace id of request `seq`.
    pub fn trace_id(self, seq: u64) -> String {
        format!("{self}{seq:016x}")
    }

    /// The `traceparent` header value of request `seq`, with a fresh random span id.
    pub fn traceparent(self, seq: u64) -> String {
        let bytes = self.traceparent_bytes(seq, nonzero_random());
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// `00-{run_id}{seq:016x}-{span_id:016x}-01` as bytes, without allocating; a zero
    /// `span_id` (invalid in W3C trace context) is sent as 1.
    pub fn traceparent_bytes(self, seq: u64, span_id: u64) -> [u8; 55] {
        let mut out = [b'0'; 55];
        out[2] = b'-';
        out[35] = b'-';
        out[52] = b'-';
        out[54] = b'1';
        hex16(self.0, &mut out[3..19]);
        hex16(seq, &mut out[19..35]);
        hex16(span_id.max(1), &mut out[36..52]);
        out
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Writes `value` as 16 lowercase hex digits into `out` (which has 16 bytes).
fn hex16(value: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in out.iter_mut().enumerate().take(16) {
        let shift = 60 - 4 * i;
        *byte = DIGITS[((value >> shift) & 0xf) as usize];
    }
}

fn nonzero_random() -> u64 {
    rand::random::<u64>().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_the_run_id_then_the_sequence_number() {
        let run = RunId::parse("00000000000000ab");
        assert_eq!(
            run.map(|r| r.trace_id(255)).as_deref(),
            Some("00000000000000ab00000000000000ff")
        );
    }

    #[test]
    fn traceparent_is_sampled_w3c() {
        let tp = RunId::random().traceparent(1);
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!((parts[0], parts[3]), ("00", "01"));
        assert_eq!((parts[1].len(), parts[2].len()), (32, 16));
        assert_ne!(parts[2], "0000000000000000");
    }

    #[test]
    fn run_ids_parse_only_lowercase_hex() {
        assert!(RunId::parse("0123456789abcdef").is_some());
        assert!(RunId::parse("0123456789ABCDEF").is_none());
        assert!(RunId::parse("0123").is_none());
    }
}
