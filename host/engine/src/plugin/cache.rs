//! Compiled plugins kept on disk between runs. Cranelift takes 0.1 s for a
//! small Rust component, seconds for a JavaScript or Python one, and every
//! node of a cluster compiles again for every run; a loaded machine code
//! file takes milliseconds. Files are named by the component's SHA-256 and
//! the engine's compatibility hash (wasmtime version and settings), and
//! wasmtime checks that hash again on load, so a stale or foreign file is
//! recompiled, never run. The directory is `LOADTEST_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/loadtest/compiled`, else `~/.cache/loadtest/compiled`;
//! an empty `LOADTEST_CACHE_DIR` turns it off. Only what this process
//! compiled itself is written there.
//!
//! A cached file is machine code that runs with this user's rights: who
//! can write it can run code as this user. So the directory and each file
//! are used only when this user owns them and nobody else may write them
//! (a directory the process creates is made so); otherwise the cache is
//! ignored with a warning and plugins are compiled in memory.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The cache is trimmed to this, least recently used first.
const LIMIT_BYTES: u64 = 1 << 30;
/// A half-written file this old belongs to no live writer.
const STALE: std::time::Duration = std::time::Duration::from_secs(3600);

pub fn dir() -> Option<PathBuf> {
    match std::env::var_os("LOADTEST_CACHE_DIR") {
        Some(d) if d.is_empty() => None,
        Some(d) => Some(PathBuf::from(d)),
        None => std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
            .map(|d| d.join("loadtest").join("compiled")),
    }
}

/// Compiles `bytes`, or loads what an earlier run compiled from them.
pub fn compile(
    engine: &Engine,
    dir: Option<&Path>,
    bytes: &[u8],
    digest: &str,
) -> wasmtime::Result<Component> {
    let Some(dir) = dir else {
        return Component::new(engine, bytes);
    };
    if let Err(why) = prepare_dir(dir) {
        warn_once(&why);
        return Component::new(engine, bytes);
    }
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let path = dir.join(format!("{digest}-{:016x}.cwasm", h.finish()));
    if path.is_file()
        && let Err(why) = owned_privately(&path)
    {
        warn_once(&why);
        return Component::new(engine, bytes);
    }
    if path.is_file() {
        // SAFETY: the file was written by `serialize` of this same engine
        // configuration (its name says so, and wasmtime checks the header).
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => {
                let _ = std::fs::File::open(&path).and_then(|f| f.set_modified(SystemTime::now()));
                return Ok(c);
            }
            Err(e) => tracing::debug!(
                "compiled plugin {} not usable, compiling: {e:#}",
                path.display()
            ),
        }
    }
    let component = Component::new(engine, bytes)?;
    if let Err(e) = store(dir, &path, &component) {
        tracing::debug!("compiled plugin not cached in {}: {e:#}", dir.display());
    }
    Ok(component)
}

/// Creates the directory (readable by this user only) if it is missing,
/// and checks that it can be trusted.
fn prepare_dir(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)
            .map_err(|e| format!("cannot create the plugin cache {}: {e}", dir.display()))?;
    }
    owned_privately(dir)
}

/// Whether `path` (not a symlink) belongs to this user with no group or
/// world write permission.
fn owned_privately(path: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        let why = if meta.file_type().is_symlink() {
            Some("is a symbolic link")
        } else if meta.uid() != me {
            Some("belongs to another user")
        } else if meta.mode() & 0o022 != 0 {
            Some("may be written by other users")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(format!(
                "the compiled-plugin cache is not used: {} {why}, and machine code from it would run as this user \
                 (fix its owner and mode, e.g. chmod go-w, or point LOADTEST_CACHE_DIR at a private directory)",
                path.display()
            ));
        }
    }
    let _ = meta;
    Ok(())
}

fn warn_once(why: &str) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| tracing::warn!("{why}"));
}

/// Writes next to the target and renames, so a reader never sees half a
/// file, then trims the directory.
fn store(dir: &Path, path: &Path, component: &Component) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let bytes = component
        .serialize()
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    std::io::Write::write_all(&mut opts.open(&tmp)?, &bytes)?;
    std::fs::rename(&tmp, path)?;
    trim(dir, LIMIT_BYTES)
}

fn trim(dir: &Path, limit: u64) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let path = entry.path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if meta.is_file() && ext == "cwasm" {
            files.push((meta.modified()?, meta.len(), path));
        } else if ext.starts_with("tmp") && meta.modified()?.elapsed().unwrap_or_default() > STALE {
            // Left by a process that died while writing.
            let _ = std::fs::remove_file(path);
        }
    }
    files.sort();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    for (_, len, path) in files {
        if total <= limit {
            break;
        }
        std::fs::remove_file(path)?;
        total -= len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_component_is_loaded_and_a_corrupt_one_recompiled() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        // The smallest component: header only.
        let bytes = b"\0asm\x0d\0\x01\0";
        compile(&engine, Some(dir.path()), bytes, "d1").unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1);
        let path = files[0].as_ref().unwrap().path();
        compile(&engine, Some(dir.path()), bytes, "d1").unwrap();
        std::fs::write(&path, b"not machine code").unwrap();
        compile(&engine, Some(dir.path()), bytes, "d1").unwrap();
        assert!(std::fs::read(&path).unwrap().len() > 16, "rewritten");
    }

    #[cfg(unix)]
    #[test]
    fn a_cache_others_may_write_is_not_loaded_from() {
        use std::os::unix::fs::PermissionsExt;
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("compiled");
        let bytes = b"\0asm\x0d\0\x01\0";
        compile(&engine, Some(&cache), bytes, "d1").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&cache), 0o700);
        let file = std::fs::read_dir(&cache)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        assert_eq!(mode(&file), 0o600);
        assert!(owned_privately(&file).is_ok());
        // A file someone else could have replaced is not trusted.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = owned_privately(&file).unwrap_err();
        assert!(e.contains("may be written by other users"), "{e}");
        std::fs::write(&file, b"planted").unwrap();
        compile(&engine, Some(&cache), bytes, "d1").unwrap();
        assert_eq!(
            std::fs::read(&file).unwrap(),
            b"planted",
            "neither loaded nor overwritten"
        );
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(
            prepare_dir(&cache)
                .unwrap_err()
                .contains(&cache.display().to_string())
        );
    }

    #[test]
    fn the_oldest_files_go_first_when_over_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in ["a.cwasm", "b.cwasm", "c.cwasm"].iter().enumerate() {
            let p = dir.path().join(name);
            std::fs::write(&p, [0u8; 100]).unwrap();
            let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + i as u64);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        trim(dir.path(), 250).unwrap();
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["b.cwasm", "c.cwasm"]);
    }
}
