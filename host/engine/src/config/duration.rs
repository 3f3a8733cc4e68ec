use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;

/// A duration written the way k6 users write them: `30s`, `1m30s`, `500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

/// The longest duration a config may give: past it, times computed from
/// it (`now + duration`) could overflow, and no test runs that long on
/// purpose.
pub const MAX: Duration = Duration::from_secs(366 * 24 * 3600);

impl HumanDuration {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(secs) = s.parse::<f64>()
            && secs.is_finite()
            && secs >= 0.0
        {
            return checked(
                Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX),
                s,
            );
        }
        let d = humantime::parse_duration(s).map_err(|e| {
            format!("`{s}` is not a duration ({e}); write it like 30s, 1m30s or 500ms")
        })?;
        checked(d, s)
    }
}

fn checked(d: Duration, written: &str) -> Result<HumanDuration, String> {
    if d > MAX {
        return Err(format!(
            "`{written}` is longer than a year (366d), the longest duration loadtest takes"
        ));
    }
    Ok(HumanDuration(d))
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

/// Takes text (`30s`) or a bare number of seconds, without buffering, so
/// errors keep the position of the value.
struct DurationVisitor;

impl serde::de::Visitor<'_> for DurationVisitor {
    type Value = HumanDuration;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a duration like 30s, 1m30s or 500ms")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HumanDuration, E> {
        HumanDuration::parse(v).map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<HumanDuration, E> {
        checked(Duration::from_secs(v), &v.to_string()).map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<HumanDuration, E> {
        let v = u64::try_from(v).map_err(|_| E::custom("a duration cannot be negative"))?;
        self.visit_u64(v)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<HumanDuration, E> {
        HumanDuration::parse(&v.to_string()).map_err(E::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_past_a_year_are_refused_not_a_panic() {
        assert_eq!(
            HumanDuration::parse("1.5").unwrap().0,
            Duration::from_millis(1500)
        );
        assert_eq!(HumanDuration::parse("366d").unwrap().0, MAX);
        for bad in ["1e20", "18446744073709551615", "367d", "100000000000000h"] {
            let err = HumanDuration::parse(bad).unwrap_err();
            assert!(
                err.contains("longer than a year") || err.contains("not a duration"),
                "{bad}: {err}"
            );
        }
        let yaml: Result<HumanDuration, _> = serde_yaml::from_str("18446744073709551615");
        assert!(yaml.unwrap_err().to_string().contains("longer than a year"));
    }
}
