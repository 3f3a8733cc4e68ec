//! How metrics travel between nodes: serde for the stats types, with HDR
//! histograms in their standard V2 encoding (compact for sparse data, and
//! readable by other HDR tools) and tuple-keyed maps as entry lists.

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer as HdrDeserializer, Serializer as _, V2Serializer};
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

pub mod hist {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;

    pub fn serialize<S: Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Vec::new();
        V2Serializer::new()
            .serialize(h, &mut buf)
            .map_err(|e| S::Error::custom(format!("histogram: {e:?}")))?;
        // JSON (the Raft log, status replies) gets base64, a quarter the
        // size of a list of numbers; binary formats get the bytes.
        if s.is_human_readable() {
            s.serialize_str(&B64.encode(&buf))
        } else {
            buf.serialize(s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        deserialize_with_bounds(d, super::super::stats::LATENCY_BOUNDS)
    }

    /// Reads a histogram with the bounds (low, high, significant digits)
    /// every local one of its kind has (merging needs them). One sent with
    /// those bounds comes back only as large as its data and resizes as it
    /// is merged into (`hdr_v2`); any other is copied into a full-size one.
    pub fn deserialize_with_bounds<'de, D: Deserializer<'de>>(
        d: D,
        bounds: (u64, u64, u8),
    ) -> Result<Histogram<u64>, D::Error> {
        let bytes: Vec<u8> = if d.is_human_readable() {
            let text = String::deserialize(d)?;
            B64.decode(text.as_bytes())
                .map_err(|e| D::Error::custom(format!("histogram: {e}")))?
        } else {
            Vec::deserialize(d)?
        };
        match super::super::hdr_v2::decode(&bytes, bounds) {
            Ok(Some(h)) => return Ok(h),
            Ok(None) => {}
            Err(e) => return Err(D::Error::custom(format!("histogram: {e}"))),
        }
        let h: Histogram<u64> = HdrDeserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| D::Error::custom(format!("histogram: {e:?}")))?;
        let (low, high, sigfig) = bounds;
        let mut out = Histogram::new_with_bounds(low, high, sigfig)
            .map_err(|e| D::Error::custom(format!("histogram bounds: {e:?}")))?;
        out.add(&h)
            .map_err(|e| D::Error::custom(format!("histogram bounds: {e:?}")))?;
        Ok(out)
    }
}

/// The same for the request phases' coarser histograms.
pub mod phase_hist {
    pub use super::hist::serialize;
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        super::hist::deserialize_with_bounds(d, super::super::stats::PHASE_BOUNDS)
    }
}

/// A map whose keys are not strings, as a list of entries.
pub mod entries {
    use super::*;

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        m: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::metrics::{Event, FailureKind, Latency, Metrics};

    fn sample(seed: u64) -> Metrics {
        let mut m = Metrics::default();
        for i in 1..=500u64 {
            let micros = (i * 7919 + seed) % 90_000 + 1;
            m.apply(
                "s",
                Event::Request {
                    name: format!("r{}", i % 3),
                    status: Some(200),
                    error: None,
                    expected: Some(true),
                    micros,
                    bytes: 3,
                    sent: 0,
                    method: "GET",
                    timings: Default::default(),
                    ctx: Default::default(),
                },
            );
            m.apply(
                "s",
                Event::Check {
                    name: "ok".into(),
                    passed: i % 10 != 0,
                    ctx: Default::default(),
                },
            );
            m.apply(
                "t",
                Event::Trend {
                    name: "cart".into(),
                    value: i as f64 / 3.0,
                    ctx: Default::default(),
                },
            );
            m.apply(
                "t",
                Event::Iteration {
                    micros,
                    failure: (i % 50 == 0).then(|| (FailureKind::Trap, "boom".into())),
                },
            );
        }
        m.apply("t", Event::Dropped { saturated: true });
        m.apply(
            "",
            Event::Generator(crate::metrics::GeneratorSecond {
                lag_max_us: seed,
                cpu_permille: 960,
            }),
        );
        m
    }

    #[test]
    fn metrics_survive_the_wire_exactly() {
        let (a, b) = (sample(1), sample(99));
        let wire_a: Metrics = serde_json::from_slice(&serde_json::to_vec(&a).unwrap()).unwrap();
        let wire_b: Metrics = serde_json::from_slice(&serde_json::to_vec(&b).unwrap()).unwrap();
        let (mut local, mut remote) = (a.clone(), wire_a);
        local.merge(&b);
        remote.merge(&wire_b);
        assert_eq!(local.total_requests(), remote.total_requests());
        for (k, r) in &local.requests {
            let w = &remote.requests[k];
            assert_eq!(
                Latency::of_micros(&r.latency),
                Latency::of_micros(&w.latency),
                "{k:?}"
            );
            assert_eq!((r.count, r.failed, r.bytes), (w.count, w.failed, w.bytes));
        }
        assert_eq!(local.checks, remote.checks);
        assert_eq!(
            local.scenarios["t"].failures,
            remote.scenarios["t"].failures
        );
        assert_eq!(local.scenarios["t"].dropped, 2);
        assert_eq!(remote.scenarios["t"].dropped, 2);
        assert_eq!(remote.scenarios["t"].dropped_saturated, 2);
        assert_eq!(remote.generator, local.generator);
        assert_eq!(
            (remote.generator.seconds, remote.generator.saturated_seconds),
            (2, 2)
        );
        assert_eq!(remote.generator.lag_max_us, 99);
        assert_eq!(
            local.trends[&("t".into(), "cart".into())].count,
            remote.trends[&("t".into(), "cart".into())].count
        );
    }
}
