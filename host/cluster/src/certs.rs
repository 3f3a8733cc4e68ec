//! `loadtest cluster certs`: a cluster CA, and node and operator
//! certificates signed by it, for people who have no PKI of their own.
//!
//! Every node certificate is issued for the one node name peers check
//! (`loadtest-node`, [`crate::settings::NODE_NAME`]) plus the hosts given,
//! and may serve and call; an operator certificate may only call, and not
//! the calls only nodes make. Run again with the same `--out`, the CA
//! there is kept and new certificates are signed by it: that is how a
//! node's certificate is rotated (issue, then restart that node).

use crate::settings::NODE_NAME;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};

/// How long issued certificates are valid, in days.
const NODE_DAYS: i64 = 397;
const CA_DAYS: i64 = 3650;

/// Writes the CA (made unless `out` has one), a certificate and key per
/// node and per operator; returns the files written.
pub fn make(out: &Path, nodes: &[String], operators: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    anyhow::ensure!(
        !nodes.is_empty() || !operators.is_empty(),
        "name at least one node (--nodes node-1,node-2 or their addresses) or operator (--operators alice)"
    );
    std::fs::create_dir_all(out)
        .map_err(|e| anyhow::anyhow!("--out {}: cannot create: {e}", out.display()))?;
    let mut written = Vec::new();
    let (ca_params, ca_key) = ca(out, &mut written)?;
    let issuer = Issuer::new(ca_params, ca_key);
    for node in nodes {
        let params = leaf(node, true)?;
        written.extend(issue(
            out,
            &format!("node-{}", file_stem(node)),
            params,
            &issuer,
        )?);
    }
    for op in operators {
        let params = leaf(op, false)?;
        written.extend(issue(
            out,
            &format!("operator-{}", file_stem(op)),
            params,
            &issuer,
        )?);
    }
    Ok(written)
}

/// The CA in `out`, or a new one written there. Signing needs only the
/// CA's name and key, so a kept CA is its key plus the same name.
fn ca(out: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<(CertificateParams, KeyPair)> {
    let (cert_path, key_path) = (out.join("ca.pem"), out.join("ca.key"));
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "loadtest cluster CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, CA_DAYS);
    if cert_path.exists() && key_path.exists() {
        let pem = std::fs::read_to_string(&key_path)?;
        let key = KeyPair::from_pem(&pem)
            .map_err(|e| anyhow::anyhow!("{}: not a private key: {e}", key_path.display()))?;
        return Ok((params, key));
    }
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    write(&cert_path, &cert.pem(), false)?;
    write(&key_path, &key.serialize_pem(), true)?;
    written.extend([cert_path, key_path]);
    Ok((params, key))
}

/// A node's parameters (the node name and `who` as names, serving and
/// calling) or an operator's (`who` as its common name, calling only).
fn leaf(who: &str, node: bool) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let role = if node { "node" } else { "operator" };
    params
        .distinguished_name
        .push(DnType::CommonName, format!("loadtest {role} {who}"));
    if node {
        params
            .subject_alt_names
            .push(SanType::DnsName(NODE_NAME.try_into()?));
        let host = who.rsplit_once(':').map_or(who, |(h, _)| h);
        params.subject_alt_names.push(match host.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.try_into().map_err(|_| {
                anyhow::anyhow!("--nodes entry `{who}` is neither a host name nor an IP address")
            })?),
        });
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
    } else {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    validity(&mut params, NODE_DAYS);
    Ok(params)
}

fn issue(
    out: &Path,
    stem: &str,
    params: CertificateParams,
    issuer: &Issuer<'_, KeyPair>,
) -> anyhow::Result<[PathBuf; 2]> {
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    let (c, k) = (
        out.join(format!("{stem}.pem")),
        out.join(format!("{stem}.key")),
    );
    write(&c, &cert.pem(), false)?;
    write(&k, &key.serialize_pem(), true)?;
    Ok([c, k])
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = rcgen::date_time_ymd(1970, 1, 1)
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
    // An hour of slack for clocks a little behind.
    params.not_before = now - std::time::Duration::from_secs(3600);
    params.not_after = now + std::time::Duration::from_secs(days as u64 * 86_400);
}

/// Keys are readable by their owner only.
fn write(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// A file-name-safe form of a node or operator name.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::is_node_certificate;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn node_certificates_carry_the_node_name_and_operator_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let files = make(dir.path(), &["10.0.0.1:7000".into()], &["alice".into()]).unwrap();
        assert_eq!(files.len(), 6, "{files:?}");
        let cert = |f: &str| CertificateDer::from_pem_file(dir.path().join(f)).unwrap();
        assert!(is_node_certificate(
            &cert("node-10.0.0.1_7000.pem"),
            NODE_NAME
        ));
        assert!(!is_node_certificate(&cert("operator-alice.pem"), NODE_NAME));
        // Again: the CA is kept, so earlier certificates stay valid.
        let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
        let again = make(dir.path(), &["n2".into()], &[]).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(std::fs::read(dir.path().join("ca.pem")).unwrap(), ca);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("ca.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
    }
}
