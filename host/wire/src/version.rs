//! The format version of everything a node sends or stores for others:
//! gRPC messages, Raft entries and snapshots, the store on disk. Raise
//! [`FORMAT`] whenever one of their shapes changes in a way an older node
//! would misread; older nodes then refuse it with [`check_format`]'s error
//! instead of acting on a misunderstanding.

use serde::{Deserialize, Serialize};

/// The newest format this build writes and reads.
pub const FORMAT: u32 = 1;

/// `Ok` when this build can read `format`; 0 is what builds from before
/// versioning wrote (no field), which is format 1's shape.
pub fn check_format(what: &str, format: u32) -> Result<(), String> {
    if format <= FORMAT {
        Ok(())
    } else {
        Err(format!(
            "{what} is in cluster format {format}, but this loadtest {} reads formats up to {FORMAT}: \
             upgrade this node to the version the rest of the cluster runs",
            env!("CARGO_PKG_VERSION")
        ))
    }
}

/// A value stored or sent with the format it was written in.
#[derive(Debug, Serialize, Deserialize)]
pub struct Versioned<T> {
    pub format: u32,
    pub value: T,
}

impl<T: Serialize> Versioned<T> {
    pub fn to_json(value: &T) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(&Versioned {
            format: FORMAT,
            value,
        })
    }
}

impl<T: serde::de::DeserializeOwned> Versioned<T> {
    /// Reads a value written by [`Versioned::to_json`] (checking its format
    /// first, so a newer shape is reported as such, not as a parse error)
    /// or, from before versioning, the bare value.
    pub fn from_json(what: &str, bytes: &[u8]) -> anyhow::Result<T> {
        #[derive(Deserialize)]
        struct Peek {
            #[serde(default)]
            format: Option<u32>,
        }
        let peek: Option<Peek> = serde_json::from_slice(bytes).ok();
        match peek.and_then(|p| p.format) {
            Some(format) => {
                check_format(what, format).map_err(anyhow::Error::msg)?;
                Ok(serde_json::from_slice::<Versioned<T>>(bytes)?.value)
            }
            None => Ok(serde_json::from_slice(bytes)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_format_is_refused_by_name_and_an_older_one_is_read() {
        let newer = format!(r#"{{"format":{},"value":{{"x":1}}}}"#, FORMAT + 1);
        let err = Versioned::<serde_json::Value>::from_json("the snapshot", newer.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("the snapshot is in cluster format 2"), "{err}");
        assert!(err.contains("upgrade this node"), "{err}");

        let current = Versioned::to_json(&vec![1, 2, 3]).unwrap();
        assert_eq!(
            Versioned::<Vec<u32>>::from_json("x", &current).unwrap(),
            [1, 2, 3]
        );
        // What builds before versioning wrote: the bare value.
        assert_eq!(
            Versioned::<Vec<u32>>::from_json("x", b"[4,5]").unwrap(),
            [4, 5]
        );
    }
}
