//! Where in the YAML a plugin's complaint about its params points. A
//! plugin sees its params as data, so its errors name a path
//! (`params.flows[0].steps[1].request.jsn: unknown field`), not a line.
//! The host finds that path in the config text by walking the document
//! with serde_yaml and stopping at the node: serde_yaml puts the node's
//! position on the error that stops it.

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// `params.flows[0].steps` as segments; `None` if it is not a path.
fn parse(path: &str) -> Option<Vec<Seg>> {
    let mut segs = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if key.is_empty() || key.contains(char::is_whitespace) {
            return None;
        }
        segs.push(Seg::Key(key.to_owned()));
        while !rest.is_empty() {
            let (n, after) = rest.split_once(']')?;
            segs.push(Seg::Index(n.parse().ok()?));
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    Some(segs)
}

/// The 1-based line and column of the node at `path` under
/// `scenarios.<scenario>`, or of the deepest part of it that exists.
pub fn param_position(yaml: &str, scenario: &str, path: &str) -> Option<(usize, usize)> {
    let mut segs = vec![Seg::Key("scenarios".into()), Seg::Key(scenario.into())];
    segs.extend(parse(path)?);
    while segs.len() > 2 {
        let de = serde_yaml::Deserializer::from_str(yaml);
        if let Err(e) = (Seek { path: &segs }).deserialize(de)
            && e.to_string().contains(HERE)
        {
            return e.location().map(|l| (l.line(), l.column()));
        }
        segs.pop();
    }
    None
}

/// A plugin error that starts with a path into its params (with or
/// without the leading `params.`), with the file position of that path
/// put in front: `test.yaml:28:17: scenario ...`.
pub fn locate_param_error(file: &str, yaml: &str, scenario: &str, why: &str) -> String {
    let position = why
        .split_once(": ")
        .filter(|(p, _)| parse(p).is_some())
        .and_then(|(p, _)| {
            let path = if p == "params" || p.starts_with("params.") || p.starts_with("params[") {
                p.to_owned()
            } else {
                format!("params.{p}")
            };
            param_position(yaml, scenario, &path)
        });
    match position {
        Some((line, col)) => format!("{file}:{line}:{col}: scenario `{scenario}`: {why}"),
        None => format!("{file}: scenario `{scenario}`: {why}"),
    }
}

const HERE: &str = "loadtest: found the node";

struct Seek<'a> {
    path: &'a [Seg],
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.path.is_empty() {
            // Stopping inside the node's own visit gives its position.
            return d.deserialize_any(Stop);
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(Seg::Key(want)) = self.path.first() else {
            return Ok(());
        };
        while let Some(key) = map.next_key::<serde_yaml::Value>()? {
            if key.as_str() == Some(want.as_str()) {
                return map.next_value_seed(Seek {
                    path: &self.path[1..],
                });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some(Seg::Index(want)) = self.path.first() else {
            return Ok(());
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Seek {
            path: &self.path[1..],
        })
        .map(|_| ())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Fails on whatever node it is asked to visit.
struct Stop;

impl<'de> Visitor<'de> for Stop {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("anything")
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(HERE))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(HERE))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(HERE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
name: t
scenarios:
  shop:
    plugin: steps
    params:
      flows:
        - name: buy
          steps:
            - request: { path: /json }
            - request:
                method: POST
                jsn: { product: x }
";

    #[test]
    fn a_params_path_is_found_at_its_line_and_column() {
        assert_eq!(
            param_position(YAML, "shop", "params.flows[0].steps[1].request.jsn"),
            Some((12, 22))
        );
        assert_eq!(
            param_position(YAML, "shop", "params.flows[0].steps[0].request.path"),
            Some((9, 32))
        );
    }

    #[test]
    fn a_path_that_goes_past_the_document_stops_at_its_deepest_part() {
        let deepest = param_position(YAML, "shop", "params.flows[0].steps[7].request");
        let steps = param_position(YAML, "shop", "params.flows[0].steps");
        assert_eq!(deepest, steps);
        assert!(steps.is_some());
    }

    #[test]
    fn errors_without_a_path_are_left_as_they_are() {
        let msg = locate_param_error("t.yaml", YAML, "shop", "the server said no");
        assert_eq!(msg, "t.yaml: scenario `shop`: the server said no");
        let msg = locate_param_error(
            "t.yaml",
            YAML,
            "shop",
            "params.flows[0].steps[1].request.jsn: unknown field `jsn`",
        );
        assert!(
            msg.starts_with("t.yaml:12:22: scenario `shop`: params.flows"),
            "{msg}"
        );
    }
}
