//! Lowercase hex of trace and span ids, on the stack: a request line and an exemplar each write
//! both ids, and `to_string()` on the ids goes through the formatting machinery and allocates.

/// `N` bytes as `2 * N` lowercase hex digits; `LEN` must be `2 * N`.
#[derive(Clone, Copy)]
pub struct Hex<const LEN: usize>([u8; LEN]);

/// A trace id's 32 digits.
pub type TraceHex = Hex<32>;
/// A span id's 16 digits.
pub type SpanHex = Hex<16>;

impl<const LEN: usize> Hex<LEN> {
    /// The digits of `bytes` (the first `LEN / 2` of them).
    pub fn new(bytes: &[u8]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'0'; LEN];
        for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0xf)];
        }
        Self(out)
    }

    /// The digits as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and letters are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceId};

    #[test]
    fn digits_match_the_ids_own_formatting() {
        let trace = TraceId::from(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c_u128);
        let span = SpanId::from(0x00f0_67aa_0ba9_02b7_u64);
        assert_eq!(TraceHex::new(&trace.to_bytes()).as_str(), trace.to_string());
        assert_eq!(SpanHex::new(&span.to_bytes()).as_str(), span.to_string());
        assert_eq!(SpanHex::new(&[0; 8]).as_str(), "0000000000000000");
    }
}
