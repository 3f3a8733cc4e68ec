use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;

/// A duration written the way k6 users write them: `30s`, `1m30s`, `500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(secs) = s.parse::<f64>()
            && secs.is_finite()
            && secs >= 0.0
        {
            return Ok(HumanDuration(Duration::from_secs_f64(secs)));
        }
        humantime::parse_duration(s)
            .map(HumanDuration)
            .map_err(|e| {
                format!("`{s}` is not a duration ({e}); write it like 30s, 1m30s or 500ms")
            })
    }
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
        Ok(HumanDuration(Duration::from_secs(v)))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<HumanDuration, E> {
        u64::try_from(v)
            .map(|v| HumanDuration(Duration::from_secs(v)))
            .map_err(|_| E::custom("a duration cannot be negative"))
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
