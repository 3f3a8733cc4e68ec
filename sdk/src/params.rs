use crate::Error;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The scenario's `params` from the config.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Value);

impl Params {
    pub(crate) fn parse(json: &str) -> Result<Self, Error> {
        if json.trim().is_empty() {
            return Ok(Params(Value::Null));
        }
        serde_json::from_str(json)
            .map(Params)
            .map_err(|e| Error(format!("params are not valid JSON: {e}")))
    }

    /// A string parameter, if present and a string.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// A parameter deserialized into `T`; `None` if absent.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|e| Error(format!("param `{key}`: {e}"))),
        }
    }

    /// All parameters deserialized into one struct.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let v = if self.0.is_null() {
            Value::Object(Default::default())
        } else {
            self.0.clone()
        };
        serde_json::from_value(v).map_err(|e| Error(format!("params: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_typed_and_string_params() {
        let p = Params::parse(r#"{"path":"/a","n":3}"#).unwrap();
        assert_eq!(p.str("path"), Some("/a"));
        assert_eq!(p.get::<u32>("n").unwrap(), Some(3));
        assert_eq!(p.get::<u32>("missing").unwrap(), None);
        assert!(p.get::<u32>("path").is_err());
    }

    #[test]
    fn empty_params_are_null_and_bad_json_is_an_error() {
        assert!(Params::parse("").unwrap().0.is_null());
        assert!(Params::parse("{").is_err());
    }
}
