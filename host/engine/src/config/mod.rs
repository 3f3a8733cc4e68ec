//! The test configuration: one schema for standalone and cluster mode.
//!
//! Parsing goes through `serde_path_to_error` on top of `serde_yaml` so that
//! every error names the field path as well as line and column; semantic
//! checks that need several fields run inside `TryFrom` impls during
//! deserialization, which makes serde_yaml attach a position to them too.

mod bundle;
mod duration;
mod env;
mod error;
mod locate;
mod scenario;
mod schema;

pub use bundle::{Bundle, PluginBytes, hex};
pub use duration::HumanDuration;
pub use error::ConfigError;
pub use locate::locate_param_error;
pub use scenario::{Executor, Scenario, Stage};
pub use schema::{Config, SandboxOptions};

use std::path::Path;

/// Parses YAML text into a [`Config`]. `file` is only used in error messages.
pub fn parse(file: &Path, yaml: &str) -> Result<Config, ConfigError> {
    let de = serde_yaml::Deserializer::from_str(yaml);
    let config: Config =
        serde_path_to_error::deserialize(de).map_err(|e| ConfigError::from_serde(file, e))?;
    config.validate(file)?;
    Ok(config)
}

/// Parses `yaml`, then applies the documented environment overrides.
pub fn parse_with_env(
    file: &Path,
    yaml: &str,
    vars: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut config = parse(file, yaml)?;
    env::apply(&mut config, vars)?;
    config.validate(file)?;
    Ok(config)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod props;
