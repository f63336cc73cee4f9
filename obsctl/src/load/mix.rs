//! Which request of the mix a sequence number sends: a fixed cycle built by smooth weighted
//! round-robin, so the shares are exact over every full cycle and kinds are interleaved rather
//! than sent in blocks.

use crate::scenario::RequestSpec;

/// The weighted request cycle.
#[derive(Debug, Clone)]
pub struct Mix {
    cycle: Vec<u16>,
}

impl Mix {
    /// The cycle for `requests` (weights are at most 1000 each, so the cycle stays small).
    pub fn new(requests: &[RequestSpec]) -> Self {
        let weights: Vec<i64> = requests
            .iter()
            .map(|r| i64::from(r.weight.max(1)))
            .collect();
        let total: i64 = weights.iter().sum();
        let mut current = vec![0i64; weights.len()];
        let mut cycle = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for _ in 0..total {
            for (c, w) in current.iter_mut().zip(&weights) {
                *c += w;
            }
            let best = (0..current.len()).max_by_key(|&i| (current[i], usize::MAX - i));
            if let Some(best) = best {
                current[best] -= total;
                cycle.push(u16::try_from(best).unwrap_or(0));
            }
        }
        if cycle.is_empty() {
            cycle.push(0);
        }
        Self { cycle }
    }

    /// How many of the first `total` sequence numbers send request `index`.
    pub fn count_of(&self, index: usize, total: u64) -> u64 {
        let len = self.cycle.len() as u64;
        let is = |k: &&u16| usize::from(**k) == index;
        let per_cycle = self.cycle.iter().filter(is).count() as u64;
        let rest = self
            .cycle
            .iter()
            .take((total % len) as usize)
            .filter(is)
            .count() as u64;
        total / len * per_cycle + rest
    }

    /// The index of the request that sequence number `seq` sends.
    pub fn pick(&self, seq: u64) -> usize {
        let len = self.cycle.len() as u64;
        self.cycle
            .get((seq % len) as usize)
            .copied()
            .map_or(0, usize::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use std::time::Duration;

    fn mix(weights: &[u32]) -> Mix {
        let base = Scenario::plain_get(1.0, Duration::from_secs(1)).requests[0].clone();
        let specs: Vec<RequestSpec> = weights
            .iter()
            .map(|w| RequestSpec {
                weight: *w,
                ..base.clone()
            })
            .collect();
        Mix::new(&specs)
    }

    #[test]
    fn shares_follow_the_weights_exactly_over_a_cycle() {
        let m = mix(&[5, 1, 2]);
        let mut counts = [0; 3];
        for seq in 0..80 {
            counts[m.pick(seq)] += 1;
        }
        assert_eq!(counts, [50, 10, 20]);
    }

    #[test]
    fn kinds_are_interleaved() {
        let m = mix(&[1, 1]);
        let picks: Vec<usize> = (0..4).map(|s| m.pick(s)).collect();
        assert_eq!(picks, vec![0, 1, 0, 1]);
    }
}
