//! A value carried as the JSON it was encoded to. A Raft entry is read
//! back from the log and sent to every follower: a merged metrics entry
//! decoded there is hundreds of KiB of full-size histograms per second of
//! the run, built only for the network to encode the same text again, once
//! per follower. Kept as text, it is decoded once per node, where it is
//! applied. It serialises to the same bytes as the value itself, so logs
//! and peers from before read and write it unchanged.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::fmt;
use std::marker::PhantomData;

pub struct Raw<T> {
    json: Box<RawValue>,
    /// `fn() -> T`: a `Raw<T>` holds text, not a `T`, so it is `Send` and
    /// `Sync` whatever `T` is.
    kind: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Raw<T> {
    pub fn encode(value: &T) -> serde_json::Result<Self> {
        Ok(Raw {
            json: serde_json::value::to_raw_value(value)?,
            kind: PhantomData,
        })
    }

    pub fn decode(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.json.get())
    }
}

impl<T> Raw<T> {
    pub fn json(&self) -> &str {
        self.json.get()
    }

    /// The encoded size in bytes.
    pub fn len(&self) -> usize {
        self.json.get().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Clone for Raw<T> {
    fn clone(&self) -> Self {
        Raw {
            json: self.json.clone(),
            kind: PhantomData,
        }
    }
}

/// The size, not the text: a merged entry's text is mostly base64.
impl<T> fmt::Debug for Raw<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Raw({} bytes of JSON)", self.len())
    }
}

impl<T> Serialize for Raw<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

/// Only serde_json's deserializer can hand out raw text: everything that
/// reads a command (log, RPC, proptests) reads JSON.
impl<'de, T> Deserialize<'de> for Raw<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Raw {
            json: Box::<RawValue>::deserialize(d)?,
            kind: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn it_encodes_to_the_same_bytes_as_the_value_and_reads_them_back() {
        let value: BTreeMap<String, Vec<u32>> = [("a".into(), vec![1, 2])].into();
        let raw = Raw::encode(&value).unwrap();
        let plain = serde_json::to_string(&value).unwrap();
        assert_eq!(serde_json::to_string(&raw).unwrap(), plain);
        let back: Raw<BTreeMap<String, Vec<u32>>> = serde_json::from_str(&plain).unwrap();
        assert_eq!(back.decode().unwrap(), value);
        assert_eq!(back.len(), plain.len());
        assert_eq!(
            format!("{back:?}"),
            format!("Raw({} bytes of JSON)", plain.len())
        );
    }

    #[test]
    fn text_of_another_shape_is_refused_when_decoded_not_when_read() {
        let raw: Raw<Vec<u32>> = serde_json::from_str(r#"{"not":"a list"}"#).unwrap();
        assert!(raw.decode().is_err());
        assert!(serde_json::from_str::<Raw<Vec<u32>>>("{oops").is_err());
    }
}
