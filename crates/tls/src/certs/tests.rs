use super::*;

#[test]
fn factory_certificates_are_made_once_with_private_keys() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [KeyKind::EcdsaP256, KeyKind::Rsa2048] {
        assert!(Identity::load_factory(dir.path(), kind).unwrap().is_none());
        let made = Identity::make_factory(dir.path(), "mail.example.com", kind).unwrap();
        assert_eq!(made.key_kind(), kind);
        assert!(
            made.subject().contains("CN=mail.example.com"),
            "{}",
            made.subject()
        );
        let again = Identity::load_factory(dir.path(), kind).unwrap().unwrap();
        assert_eq!(
            again.to_pem().unwrap(),
            made.to_pem().unwrap(),
            "loaded, not made again"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(dir.path().join("factory-rsa.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_key_that_does_not_sign_the_certificate_is_refused() {
    let a = Identity::self_signed("a.example.com", KeyKind::EcdsaP256).unwrap();
    let b = Identity::self_signed("b.example.com", KeyKind::EcdsaP256).unwrap();
    let (chain, _) = a.to_pem().unwrap();
    let (_, key) = b.to_pem().unwrap();
    assert_eq!(
        Identity::from_pem(&chain, &key).unwrap_err(),
        CertificateError::KeyMismatch
    );
}

#[test]
fn junk_and_misordered_chains_are_refused() {
    let a = Identity::self_signed("a.example.com", KeyKind::EcdsaP256).unwrap();
    let (chain, key) = a.to_pem().unwrap();
    assert!(matches!(
        Identity::from_pem(
            b"-----BEGIN CERTIFICATE-----\njunk\n-----END CERTIFICATE-----\n",
            &key
        ),
        Err(CertificateError::BadCertificate(_))
    ));
    assert!(matches!(
        Identity::from_pem(&chain, b"not a key"),
        Err(CertificateError::BadKey(_))
    ));
    assert!(Identity::from_pem(b"", &key).is_err());
    // Two unrelated self-signed certificates are not a chain.
    let b = Identity::self_signed("b.example.com", KeyKind::EcdsaP256).unwrap();
    let mut two = chain.clone();
    two.extend(b.to_pem().unwrap().0);
    assert_eq!(
        Identity::from_pem(&two, &key).unwrap_err(),
        CertificateError::ChainOrder { position: 1 }
    );
    // Text around the PEM blocks is ignored, as in every PEM reader.
    let mut wrapped = b"Subject: a.example.com\n".to_vec();
    wrapped.extend(&chain);
    assert!(Identity::from_pem(&wrapped, &key).is_ok());
}

#[test]
fn an_expired_certificate_is_refused() {
    // Made with: openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes
    //   -days 1 -subj /CN=expired.example.com, then re-signed with a past validity.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    let cert = dir.path().join("c.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-subj",
            "/CN=expired.example.com",
            "-not_before",
            "20200101000000Z",
        ])
        .args(["-not_after", "20200102000000Z", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    if !status.status.success() {
        // OpenSSL 3.0's req has no -not_before; use x509 -days 0 -set_serial on a CSR instead.
        let csr = dir.path().join("r.pem");
        let ok = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=expired.example.com -keyout {k} -out {r} && \
                 openssl x509 -req -in {r} -key {k} -out {c} -days -1 2>/dev/null || \
                 openssl x509 -req -in {r} -signkey {k} -out {c} -days 0",
                k = key.display(),
                r = csr.display(),
                c = cert.display()
            ))
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let result = Identity::from_pem(&fs::read(&cert).unwrap(), &fs::read(&key).unwrap());
    assert!(
        matches!(result, Err(CertificateError::Expired(_))),
        "{result:?}"
    );
}
