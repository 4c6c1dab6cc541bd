//! The peer certificate checks of `sslconfig` (PEER_CERT_FQDN, PEER_CERT_X509) on both engines:
//! what each lets through without the check and refuses with it.

mod common;

use common::*;
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};
use postern_config::{PeerCertificateChecks, ProtocolRange};
use postern_tls::client::is_certificate_authority;
use postern_tls::{Engine, FailureKind, Identity, TlsAcceptor, Verification};

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
    PKey::from_ec_key(EcKey::generate(&group).expect("a key")).expect("a PKey")
}

/// A certificate for `common_name`: a CA's when `ca`, with `dns` as subjectAltName DNS names
/// (none: no such extension), signed by `issuer` (or by itself).
fn certificate(
    common_name: &str,
    dns: &[&str],
    ca: bool,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
) -> X509 {
    let mut name = X509NameBuilder::new().expect("a name");
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)
        .expect("CN");
    let name = name.build();
    let mut builder = X509::builder().expect("a builder");
    builder.set_version(2).expect("v3");
    builder.set_subject_name(&name).expect("subject");
    let issuer_name = issuer.map_or(&*name, |(cert, _)| cert.subject_name());
    builder.set_issuer_name(issuer_name).expect("issuer");
    builder.set_pubkey(key).expect("key");
    builder
        .set_not_before(&Asn1Time::days_from_now(0).expect("now"))
        .expect("not before");
    builder
        .set_not_after(&Asn1Time::days_from_now(30).expect("later"))
        .expect("not after");
    let mut usage = KeyUsage::new();
    usage.critical().digital_signature();
    if ca {
        usage.key_cert_sign().crl_sign();
        let basic = BasicConstraints::new().critical().ca().build();
        builder.append_extension(basic.expect("CA")).expect("CA");
    }
    builder
        .append_extension(usage.build().expect("key usage"))
        .expect("key usage");
    if !dns.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for name in dns {
            san.dns(name);
        }
        let issuer_cert = issuer.map(|(cert, _)| &**cert);
        let san = san
            .build(&builder.x509v3_context(issuer_cert, None))
            .expect("SAN");
        builder.append_extension(san).expect("SAN");
    }
    let signer = issuer.map_or(key, |(_, key)| key);
    builder.sign(signer, MessageDigest::sha256()).expect("sign");
    builder.build()
}

fn identity(cert: &X509, key: &PKey<Private>) -> Vec<Identity> {
    let chain = cert.to_pem().expect("PEM");
    let key = key.private_key_to_pem_pkcs8().expect("key PEM");
    vec![Identity::from_pem(&chain, &key).expect("an identity")]
}

fn der(cert: &X509) -> Vec<u8> {
    cert.to_der().expect("DER")
}

/// Whether a client for `protocols` trusting `roots` with `checks` completes a handshake with
/// `server` for [`HOST`]; a refusal must be the certificate's.
async fn verifies(
    protocols: ProtocolRange,
    server: &[Identity],
    roots: &[Vec<u8>],
    checks: PeerCertificateChecks,
    engine: Engine,
) -> bool {
    let acceptor = TlsAcceptor::with_timeout(&policy(protocols), server, STEP).expect("acceptor");
    let verification = Verification::Roots {
        roots: roots.to_vec(),
        checks,
    };
    let (_, client) = handshake_pair(&acceptor, &connector(protocols, &verification), HOST).await;
    match client {
        Ok(negotiated) => {
            assert_eq!(negotiated.engine, engine, "{protocols}");
            true
        }
        Err(failure) => {
            assert_eq!(failure.kind, FailureKind::CertificateRejected, "{failure}");
            false
        }
    }
}

const OFF: PeerCertificateChecks = PeerCertificateChecks {
    fqdn: false,
    x509: false,
};
const FQDN: PeerCertificateChecks = PeerCertificateChecks {
    fqdn: true,
    x509: false,
};
const X509_CHECK: PeerCertificateChecks = PeerCertificateChecks {
    fqdn: false,
    x509: true,
};

/// FQDN validation: a certificate that names the host only in its subject common name. The
/// legacy engine takes the common name without the check and not with it; rustls never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fqdn_validation_refuses_a_name_only_in_the_common_name() {
    let key = key();
    let cn_only = certificate(HOST, &[], false, &key, None);
    let server = identity(&cn_only, &key);
    let roots = [der(&cn_only)];
    let legacy = range(Tls1_0, Tls1_1);
    assert!(verifies(legacy, &server, &roots, OFF, Engine::Legacy).await);
    assert!(!verifies(legacy, &server, &roots, FQDN, Engine::Legacy).await);
    let modern = range(Tls1_2, Tls1_3);
    assert!(!verifies(modern, &server, &roots, OFF, Engine::Rustls).await);
    assert!(!verifies(modern, &server, &roots, FQDN, Engine::Rustls).await);

    // The same host in subjectAltName passes the check on both engines.
    let with_san = certificate(HOST, &[HOST], false, &key, None);
    let server = identity(&with_san, &key);
    let roots = [der(&with_san)];
    assert!(verifies(legacy, &server, &roots, FQDN, Engine::Legacy).await);
    assert!(verifies(modern, &server, &roots, FQDN, Engine::Rustls).await);
}

/// X.509 validation: a self-signed server certificate trusted directly (pinned, as its own
/// anchor, like the factory certificate) passes without the check and not with it; a server
/// certificate issued by a CA certificate that is trusted passes either way.
async fn x509_validation(protocols: ProtocolRange, engine: Engine) {
    let own_key = key();
    let own = certificate(HOST, &[HOST], false, &own_key, None);
    let server = identity(&own, &own_key);
    let pinned = [der(&own)];
    assert!(verifies(protocols, &server, &pinned, OFF, engine).await);
    assert!(!verifies(protocols, &server, &pinned, X509_CHECK, engine).await);

    let ca_key = key();
    let ca = certificate("Postern Test CA", &[], true, &ca_key, None);
    let leaf_key = key();
    let leaf = certificate(HOST, &[HOST], false, &leaf_key, Some((&ca, &ca_key)));
    let server = identity(&leaf, &leaf_key);
    assert!(is_certificate_authority(&der(&ca)));
    assert!(!is_certificate_authority(&der(&leaf)));
    assert!(!is_certificate_authority(&der(&own)));
    assert!(!is_certificate_authority(b"not a certificate"));

    let through_ca = [der(&ca)];
    assert!(verifies(protocols, &server, &through_ca, OFF, engine).await);
    assert!(verifies(protocols, &server, &through_ca, X509_CHECK, engine).await);
    // Both roots: the pinned one is left out, the CA still verifies.
    let both = [der(&own), der(&ca)];
    assert!(verifies(protocols, &server, &both, X509_CHECK, engine).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x509_validation_on_legacy_engine() {
    x509_validation(range(Tls1_0, Tls1_1), Engine::Legacy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x509_validation_on_rustls() {
    x509_validation(range(Tls1_2, Tls1_3), Engine::Rustls).await;
}
