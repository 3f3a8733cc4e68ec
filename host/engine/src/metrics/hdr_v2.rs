//! Reads HDR histograms in the V2 encoding into histograms only as large
//! as their data. hdrhistogram's own reader allocates and clears the full
//! counts array of the encoded bounds: 188 KiB for a latency histogram
//! that holds a few hundred distinct values. A leader reads one per share
//! per second and merges it at once, into the second's total.
//! What this returns resizes itself as it is merged into, so it behaves
//! like a full-range histogram everywhere.

use hdrhistogram::Histogram;

const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const HEADER: usize = 40;

/// The histogram an uncompressed V2 encoding of `low` and `sigfig` holds;
/// an error if it is malformed or a value passes `high`; `Ok(None)` for
/// any other encoding, which the caller reads with hdrhistogram's reader.
pub fn decode(
    bytes: &[u8],
    (low, high, sigfig): (u64, u64, u8),
) -> Result<Option<Histogram<u64>>, String> {
    let Some(header) = Header::read(bytes) else {
        return Ok(None);
    };
    if header.low != low || header.sigfig != u32::from(sigfig) {
        return Ok(None);
    }
    let payload = bytes
        .get(HEADER..HEADER + header.payload_len)
        .ok_or("the payload is shorter than its header says")?;
    let layout = Layout::of(low, sigfig);
    let counts = counts(payload)?;
    let top = counts.last().map_or(Ok(0), |&(i, _)| layout.value_for(i))?;
    if top > high {
        return Err(format!(
            "a value ({top}) beyond the histogram's bound ({high})"
        ));
    }
    let mut h = Histogram::new_with_bounds(low, top.max(2 * low), sigfig)
        .map_err(|e| format!("bounds: {e:?}"))?;
    h.auto(true);
    for (i, count) in counts {
        h.record_n(layout.value_for(i)?, count)
            .map_err(|e| format!("count: {e:?}"))?;
    }
    Ok(Some(h))
}

struct Header {
    payload_len: usize,
    sigfig: u32,
    low: u64,
}

impl Header {
    /// `None` for encodings this reader leaves to hdrhistogram's: a
    /// compressed one, a normalizing offset, a double-to-int ratio.
    fn read(b: &[u8]) -> Option<Header> {
        let u32_at = |at: usize| Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?));
        let u64_at = |at: usize| Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?));
        let plain = u32_at(0)? == V2_COOKIE && u32_at(8)? == 0 && u64_at(32)? == 1f64.to_bits();
        plain.then_some(Header {
            payload_len: usize::try_from(u32_at(4)?).ok()?,
            sigfig: u32_at(12)?,
            low: u64_at(16)?,
        })
    }
}

/// The non-zero counts by index, in order: the payload is zig-zag LEB128
/// numbers, a positive one a count, a negative one a run of zeros.
fn counts(mut payload: &[u8]) -> Result<Vec<(usize, u64)>, String> {
    let mut out = Vec::new();
    let mut index: usize = 0;
    while !payload.is_empty() {
        let (raw, used) = varint(payload).ok_or("a number is cut off")?;
        payload = &payload[used..];
        let n = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
        let step = if n < 0 {
            usize::try_from(n.unsigned_abs()).map_err(|_| "a run of zeros too long")?
        } else {
            if n > 0 {
                out.push((index, n as u64));
            }
            1
        };
        index = index.checked_add(step).ok_or("an index out of range")?;
    }
    Ok(out)
}

/// LEB128 with at most 9 bytes, the ninth taken whole (hdrhistogram's).
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in b.iter().enumerate().take(9) {
        if i == 8 {
            return Some((value | (u64::from(byte) << 56), 9));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Where an index of the counts array sits, as hdrhistogram lays it out
/// for a lowest value and a precision (the highest value only sets the
/// array's length).
struct Layout {
    unit_magnitude: u32,
    half_magnitude: u32,
}

impl Layout {
    fn of(low: u64, sigfig: u8) -> Layout {
        let largest = 2 * 10u64.pow(u32::from(sigfig));
        Layout {
            unit_magnitude: low.ilog2(),
            half_magnitude: largest.next_power_of_two().ilog2() - 1,
        }
    }

    /// The lowest value counted at an index.
    fn value_for(&self, index: usize) -> Result<u64, String> {
        let half = 1usize << self.half_magnitude;
        let (bucket, sub) = match (index >> self.half_magnitude).checked_sub(1) {
            Some(bucket) => (bucket, (index & (half - 1)) + half),
            None => (0, index),
        };
        let shift = u32::try_from(bucket)
            .ok()
            .and_then(|b| b.checked_add(self.unit_magnitude))
            .filter(|s| *s < 63 - self.half_magnitude)
            .ok_or("an index out of range")?;
        Ok((sub as u64) << shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::{Serializer as _, V2Serializer};

    const BOUNDS: (u64, u64, u8) = (1, 3_600_000_000, 3);

    fn encoded(h: &Histogram<u64>) -> Vec<u8> {
        let mut buf = Vec::new();
        V2Serializer::new().serialize(h, &mut buf).unwrap();
        buf
    }

    fn pairs(h: &Histogram<u64>) -> Vec<(u64, u64)> {
        h.iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }

    #[test]
    fn reads_what_hdrhistogram_writes_and_stays_small() {
        for sigfig in [2, 3] {
            let bounds = (1, 3_600_000_000, sigfig);
            let mut full = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, sigfig).unwrap();
            let mut seed = 7u64;
            for _ in 0..5_000 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                full.record(1 + (seed >> 33) % 250_000).unwrap();
            }
            full.record_n(3_600_000_000, 3).unwrap();
            full.record(1).unwrap();
            let small = decode(&encoded(&full), bounds).unwrap().unwrap();
            assert_eq!(pairs(&small), pairs(&full));
            assert_eq!(
                (small.len(), small.min(), small.max()),
                (full.len(), full.min(), full.max())
            );

            let mut sparse = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, sigfig).unwrap();
            sparse.record_n(900, 40).unwrap();
            let small = decode(&encoded(&sparse), bounds).unwrap().unwrap();
            assert!(small.distinct_values() * 4 < full.distinct_values());
            // Merged into, it grows as a full-range one would.
            let mut merged = small.clone();
            merged.add(&full).unwrap();
            let mut expected = full.clone();
            expected.add(&sparse).unwrap();
            assert_eq!(pairs(&merged), pairs(&expected));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever values were recorded come back the same.
        #[test]
        fn any_histogram_reads_back_as_written(
            values in proptest::collection::vec((1u64..=3_600_000_000, 1u64..1_000), 0..200)
        ) {
            let mut full = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
            for (v, n) in values {
                full.record_n(v, n).unwrap();
            }
            let small = decode(&encoded(&full), BOUNDS).unwrap().unwrap();
            proptest::prop_assert_eq!(pairs(&small), pairs(&full));
        }

        /// Whatever a peer puts after a valid header, the reader answers
        /// with a histogram or an error, never a panic.
        #[test]
        fn any_payload_reads_or_fails(payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let mut b = encoded(&Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap());
            b.truncate(HEADER);
            b[4..8].copy_from_slice(&(payload.len() as u32).to_be_bytes());
            b.extend_from_slice(&payload);
            let _ = decode(&b, BOUNDS);
        }
    }

    #[test]
    fn an_empty_histogram_reads_as_empty() {
        let empty = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        let h = decode(&encoded(&empty), BOUNDS).unwrap().unwrap();
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn other_bounds_are_left_to_the_slow_reader() {
        let h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 2).unwrap();
        assert!(decode(&encoded(&h), BOUNDS).unwrap().is_none());
        assert!(decode(b"not a histogram", BOUNDS).unwrap().is_none());
    }

    #[test]
    fn hostile_encodings_are_errors_not_panics() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        h.record(5).unwrap();
        let good = encoded(&h);
        let mut header = good[..HEADER].to_vec();
        let with_payload = |p: &[u8]| {
            let mut b = header.clone();
            b[4..8].copy_from_slice(&(p.len() as u32).to_be_bytes());
            b.extend_from_slice(p);
            b
        };
        // A skip of 2^62 zeros, then a count.
        let far = with_payload(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x02]);
        assert!(decode(&far, BOUNDS).is_err());
        // Bucket u32::MAX - 5, where the shift would overflow: zeros up to
        // index (2^32 - 5) * 1024, then a count.
        let huge = with_payload(&[0xff, 0xaf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02]);
        assert!(decode(&huge, BOUNDS).is_err());
        // A count at 1024 << 23 (8.6e9), past the bound: 24,576 zeros, then 1.
        let past = with_payload(&[0xff, 0xff, 0x02, 0x02]);
        assert!(decode(&past, BOUNDS).unwrap_err().contains("beyond"));
        // A number cut off, and a payload shorter than the header says.
        assert!(decode(&with_payload(&[0x80]), BOUNDS).is_err());
        header[4..8].copy_from_slice(&1_000u32.to_be_bytes());
        assert!(decode(&header, BOUNDS).is_err());
    }
}
