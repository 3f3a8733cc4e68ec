//! Which files travel with a script: the script, the modules it imports
//! (`import x from './lib.js'`, or by URL, fetched here; followed
//! transitively) and the files it `open()`s, each named by a string
//! literal. Names are paths relative to the script's directory, or a
//! remote module's URL, as the plugin resolves them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The main module's name and every file by name.
pub type Collected = (String, BTreeMap<String, Arc<[u8]>>);

pub fn collect(main: &Path) -> anyhow::Result<Collected> {
    let dir = main.parent().unwrap_or(Path::new(".")).to_path_buf();
    let name = main
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| anyhow::anyhow!("{} is not a file", main.display()))?;
    let mut files = BTreeMap::new();
    let mut todo = vec![name.clone()];
    let (mut remote_modules, mut remote_bytes) = (0, 0);
    while let Some(module) = todo.pop() {
        if files.contains_key(&module) {
            continue;
        }
        let remote = super::remote::is_url(&module);
        let text = match remote {
            true => {
                let bytes = super::remote::fetch(&module)?;
                remote_modules += 1;
                remote_bytes += bytes.len();
                within_remote_limits(remote_modules, remote_bytes)?;
                module_text(&module, bytes)?
            }
            false => read(&dir, &module)?,
        };
        for import in specifiers(&text, &["from", "import"]) {
            if super::remote::is_url(&import) {
                todo.push(import);
            } else if import.starts_with("./")
                || import.starts_with("../")
                || (remote && import.starts_with('/'))
            {
                todo.push(match remote {
                    true => super::remote::join(&module, &import)?,
                    false => join(&module, &import),
                });
            }
        }
        if remote {
            files.insert(module, Arc::from(text.into_bytes()));
            continue;
        }
        for opened in specifiers(&text, &["open("]) {
            let file = join("", &opened);
            if !files.contains_key(&file) {
                files.insert(file.clone(), Arc::from(read_bytes(&dir, &file)?));
            }
        }
        files.insert(module, Arc::from(text.into_bytes()));
    }
    Ok((name, files))
}

fn within_remote_limits(modules: usize, bytes: usize) -> anyhow::Result<()> {
    use super::remote::{MAX_MODULES, MAX_TOTAL};
    if modules > MAX_MODULES || bytes > MAX_TOTAL {
        anyhow::bail!(
            "the script imports more than {MAX_MODULES} modules or {} MiB by URL; \
             an import chain that does not end is a server's mistake, and a larger tree can be saved next to the script",
            MAX_TOTAL >> 20
        );
    }
    Ok(())
}

fn module_text(url: &str, bytes: Vec<u8>) -> anyhow::Result<String> {
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{url} is not UTF-8 text"))
}

fn read(dir: &Path, name: &str) -> anyhow::Result<String> {
    String::from_utf8(read_bytes(dir, name)?)
        .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", dir.join(name).display()))
}

fn read_bytes(dir: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    let path: PathBuf = dir.join(name);
    std::fs::read(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

/// String literals that follow one of `keywords` (after spaces): the
/// module specifiers of `import ... from '...'` and `import '...'`, or
/// the argument of `open('...')`.
fn specifiers(text: &str, keywords: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for kw in keywords {
        let mut rest = text;
        while let Some(i) = rest.find(kw) {
            let after = &rest[i + kw.len()..];
            let preceded_by_word = rest[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
            let trimmed = after.trim_start();
            if !preceded_by_word
                && let Some(q) = trimmed
                    .chars()
                    .next()
                    .filter(|c| matches!(c, '\'' | '"' | '`'))
                && let Some(end) = trimmed[1..].find(q)
            {
                out.push(trimmed[1..1 + end].to_owned());
            }
            rest = after;
        }
    }
    out
}

/// `name` from the directory of module `base`, normalised (the plugin's
/// resolver does the same).
pub fn join(base: &str, name: &str) -> String {
    let mut parts: Vec<&str> = base.split('/').collect();
    parts.pop();
    for seg in name.split('/') {
        match seg {
            "." | "" => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_and_opened_files_are_found_by_their_literals() {
        let js = r#"import http from 'k6/http';
import { login } from "./lib/auth.js";
import './side.js';
const users = JSON.parse(open('./data/users.json'));
const x = reopen('nope');"#;
        assert_eq!(
            specifiers(js, &["from", "import"]),
            vec!["k6/http", "./lib/auth.js", "./side.js"]
        );
        assert_eq!(specifiers(js, &["open("]), vec!["./data/users.json"]);
        assert_eq!(join("lib/auth.js", "../util.js"), "util.js");
        assert_eq!(join("main.js", "./lib/a.js"), "lib/a.js");
        assert_eq!(join("", "../shared/x.json"), "../shared/x.json");
    }
}
