use std::collections::HashSet;
use std::process::Command;

use openssl::ssl::{SslContext, SslMethod};

use super::*;

fn cs(s: &str) -> CipherString {
    CipherString::new(s).unwrap()
}

fn names(suites: &[Suite]) -> Vec<String> {
    suites.iter().map(|s| s.name.clone()).collect()
}

fn evaluated_names(string: &str) -> Vec<String> {
    names(&evaluate(&cs(string)).unwrap())
}

fn reason(string: &str) -> InvalidReason {
    match evaluate(&cs(string)) {
        Err(CipherError::Invalid { reason, .. }) => reason,
        other => panic!("{string}: {other:?}"),
    }
}

/// `openssl ciphers -v -tls1_2 <string>` of Debian's OpenSSL 3: the lines, TLS 1.3 suites left
/// out (nothing when OpenSSL finds no cipher).
fn openssl_lines(args: &[&str], string: &str) -> Vec<String> {
    // A leading separator, which OpenSSL skips, keeps `-ALL` from reading as an option.
    let string = if string.starts_with('-') {
        format!(":{string}")
    } else {
        string.to_owned()
    };
    let out = Command::new("openssl")
        .arg("ciphers")
        .args(args)
        .arg(string)
        .output()
        .expect("Debian's openssl command (package openssl)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains("TLSv1.3"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn openssl_names(string: &str) -> Vec<String> {
    openssl_lines(&["-v", "-tls1_2"], string)
        .iter()
        .filter_map(|l| l.split(' ').next().map(str::to_owned))
        .collect()
}

/// The suites of our table that Debian's OpenSSL also has (all but DES-CBC3-SHA, which it is
/// built without).
fn in_both() -> HashSet<String> {
    let theirs = openssl_names("ALL:COMPLEMENTOFALL:@SECLEVEL=0");
    SUITES
        .iter()
        .map(|r| r.name.to_owned())
        .filter(|n| theirs.contains(n))
        .collect()
}

/// Strings administrators write or bring from other gateways, and strings that exercise each
/// rule of the language.
const AGAINST_OPENSSL: &[&str] = &[
    // The examples of the requirement and from other gateways.
    "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:!aNULL:!eNULL:!MD5:!3DES:!RC4",
    "HIGH:-3DES",
    "HIGH:!aNULL:!eNULL:@STRENGTH:@SECLEVEL=1",
    "RC4-SHA:RC4-MD5:ALL:-aNULL:-EXPORT",
    "DEFAULT",
    "ALL",
    "ALL:@STRENGTH",
    "HIGH:!aNULL:!kRSA",
    "ECDHE:+AES128",
    "AES256:AES128:-SHA1",
    "kRSA+AES:!3DES",
    "ECDHE-RSA-AES128-SHA:ECDHE+AESGCM",
    "ECDHE+AESGCM:!aNULL",
    "HIGH:!aNULL:!eNULL",
    "AESGCM",
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA",
    "kRSA:!3DES",
    "ECDHE:-AES128",
    "aECDSA+AESGCM",
    // Other separators.
    "ECDHE+AESGCM,ECDHE+CHACHA20,AES",
    "HIGH !aNULL !MD5",
    "ECDHE+AESGCM, kRSA+AESGCM , ECDHE+SHA1",
    // DEFAULT and the complements.
    "DEFAULT:!kRSA",
    "DEFAULT:+SHA1",
    "DEFAULT+HIGH",
    "COMPLEMENTOFDEFAULT:ALL",
    "ALL:COMPLEMENTOFALL",
    "eNULL:HIGH",
    "ALL:+eNULL:NULL",
    // Moving, deleting and killing.
    "ALL:+kRSA:+SHA1",
    "ALL:-ECDHE:+ECDHE",
    "ALL:-ECDHE:ECDHE+SHA1",
    "-ALL:HIGH",
    "!kRSA:ALL",
    "ALL:!ECDSA",
    "CHACHA20:AESGCM:!ECDSA",
    "@STRENGTH:ALL",
    "ALL:-AES256:@STRENGTH",
    // Well-known recommendations.
    "EECDH+AESGCM:EDH+AESGCM:AES256+EECDH:AES256+EDH",
    "ECDH+AESGCM:DH+AESGCM:ECDH+AES256:DH+AES256:ECDH+AES128:DH+AES:RSA+AESGCM:RSA+AES:!aNULL:!MD5:!DSS",
    "kEECDH+ECDSA:kEECDH:kRSA:!3DES",
    // Versions, MACs, classes.
    "TLSv1.2",
    "TLSv1:SSLv3",
    "SHA256:SHA384:SHA",
    "AES128:!TLSv1.2",
    "MEDIUM:HIGH",
    "FIPS",
    "CBC:AESGCM",
    // Combinations OpenSSL treats in its own way.
    "HIGH+FIPS:AES",
    "AES128-SHA+TLSv1:ECDHE-RSA-AES128-SHA256+HIGH:ECDHE+AES256",
    "COMPLEMENTOFDEFAULT+HIGH:AESGCM",
    "HIGH@STRENGTH",
    "HIGH!kRSA",
    "RC4!HIGH:AES",
    "ECDHE+RC4:!AES128:ALL",
    "ALL:@STRENGTH+SHA1",
];

/// What VERIFY shows is what `openssl ciphers -v` prints, suite for suite and in order.
#[test]
fn selections_match_openssl_ciphers_v() {
    let both = in_both();
    assert!(both.len() >= SUITES.len() - 1, "{both:?}");
    assert!(AGAINST_OPENSSL.len() >= 30);
    for string in AGAINST_OPENSSL {
        let ours = evaluated_names(string);
        let theirs = openssl_names(&format!("{string}:@SECLEVEL=0"));
        assert!(!theirs.is_empty(), "{string}: OpenSSL selects nothing");
        let ours: Vec<String> = ours.into_iter().filter(|n| both.contains(n)).collect();
        let theirs: Vec<String> = theirs.into_iter().filter(|n| both.contains(n)).collect();
        assert_eq!(ours, theirs, "{string}");
    }
}

#[test]
fn the_table_reads_as_openssl_describes_its_suites() {
    let both = in_both();
    for row in SUITES.iter().filter(|r| both.contains(r.name)) {
        let theirs = openssl_lines(&["-stdname", "-v"], &format!("{}:@SECLEVEL=0", row.name));
        let s = suite(row);
        assert_eq!(
            theirs,
            [format!("{} - {}", s.standard_name, s.description)],
            "{}",
            row.name
        );
    }
    // Debian's OpenSSL is built without 3DES; upstream OpenSSL describes it so.
    let des = evaluate(&cs("DES-CBC3-SHA")).unwrap();
    assert_eq!(
        des[0].description,
        "DES-CBC3-SHA SSLv3 Kx=RSA Au=RSA Enc=3DES(168) Mac=SHA1"
    );
    assert_eq!(des[0].min_version, TlsVersion::Tls1_0);
}

#[test]
fn triple_des_sorts_below_the_128_bit_suites_and_is_not_default() {
    let all = evaluated_names("ALL");
    assert_eq!(
        all.len(),
        SUITES.len() - 1,
        "ALL leaves out NULL-SHA: {all:?}"
    );
    assert_eq!(all.last().map(String::as_str), Some("DES-CBC3-SHA"));
    assert_eq!(evaluated_names("MEDIUM"), ["DES-CBC3-SHA"]);
    assert_eq!(evaluated_names("COMPLEMENTOFDEFAULT"), ["DES-CBC3-SHA"]);
    assert!(!evaluated_names("DEFAULT").contains(&"DES-CBC3-SHA".to_owned()));
    assert_eq!(
        evaluated_names("3DES:AES128-SHA:@STRENGTH"),
        ["AES128-SHA", "DES-CBC3-SHA"]
    );
    assert_eq!(
        evaluated_names("ALL:COMPLEMENTOFALL:@STRENGTH")
            .iter()
            .rev()
            .take(2)
            .collect::<Vec<_>>(),
        ["NULL-SHA", "DES-CBC3-SHA"]
    );
}

#[test]
fn descriptions_read_like_openssl_ciphers_v() {
    let suites = evaluate(&cs("ECDHE-RSA-AES256-GCM-SHA384")).unwrap();
    assert_eq!(suites.len(), 1);
    let s = &suites[0];
    assert_eq!(s.standard_name, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
    assert_eq!(s.min_version, TlsVersion::Tls1_2);
    assert_eq!(
        s.description,
        "ECDHE-RSA-AES256-GCM-SHA384 TLSv1.2 Kx=ECDH Au=RSA Enc=AESGCM(256) Mac=AEAD"
    );
    assert!(s.in_rustls());
    let cbc = &evaluate(&cs("ECDHE-RSA-AES128-SHA")).unwrap()[0];
    assert_eq!(cbc.min_version, TlsVersion::Tls1_0);
    assert!(!cbc.in_rustls());
}

#[test]
fn rustls_serves_exactly_the_ecdhe_aead_suites() {
    let served: Vec<String> = evaluate(&cs("ALL:COMPLEMENTOFALL"))
        .unwrap()
        .into_iter()
        .filter(Suite::in_rustls)
        .map(|s| s.name)
        .collect();
    assert_eq!(
        served,
        evaluated_names("ECDHE+AESGCM:ECDHE+CHACHA20:@STRENGTH")
    );
    assert_eq!(served.len(), 6);
}

#[test]
fn words_of_other_gateways_for_absent_ciphers_select_nothing() {
    let high = evaluate(&cs("HIGH")).unwrap();
    for string in [
        "HIGH:!aNULL:!eNULL:!MD5:!RC4:!EXPORT:!DES:!CAMELLIA:@SECLEVEL=1",
        "HIGH:!DHE:!EDH:!SRP:!PSK:!SEED:!IDEA:!kECDH:!aECDH:!ADH:!AECDH:!DSS:!ARIA:!AESCCM",
        "HIGH:!EXP:!EXPORT40:!EXPORT56:!SSLv2:!LOW:!KRB5:!TLSv1.1:!GOST89:!aGOST",
        "HIGH:RC4-SHA:RC4-MD5:EXP-RC4-MD5:DHE-RSA-AES256-SHA:CAMELLIA256-SHA:PSK-AES128-CBC-SHA",
        "HIGH:TLS_AES_256_GCM_SHA384:RC4+SHA:PSK+AES",
    ] {
        assert_eq!(evaluate(&cs(string)).unwrap(), high, "{string}");
    }
    assert_eq!(
        evaluate(&cs("RC4-SHA:RC4-MD5:ALL:-aNULL:-EXPORT")).unwrap(),
        evaluate(&cs("ALL")).unwrap()
    );
    for string in [
        "RC4",
        "DHE:CAMELLIA",
        "PSK",
        "aNULL",
        "@STRENGTH",
        "LOW:EXPORT",
    ] {
        assert_eq!(
            evaluate(&cs(string)),
            Err(CipherError::SelectsNothing {
                string: string.into()
            }),
            "{string}"
        );
    }
}

#[test]
fn words_openssl_does_not_know_are_refused_by_name() {
    assert_eq!(
        reason("ECDHE+AESGCM:ECDHE+AESGMC"),
        InvalidReason::UnknownWord("AESGMC".into())
    );
    let error = evaluate(&cs("ECDHE+AESGMC")).unwrap_err();
    assert!(error.to_string().contains("'AESGMC'"), "{error}");
    // Even where OpenSSL would skip it, after a word for an absent cipher.
    assert_eq!(
        reason("RC4+AESGMC"),
        InvalidReason::UnknownWord("AESGMC".into())
    );
    for word in [
        "ecdhe",
        "AEAD",
        "TLSv1.3",
        "SECLEVEL=1",
        "HIGH-AES",
        "ECDHE_RSA",
    ] {
        assert_eq!(
            reason(&format!("HIGH:{word}")),
            InvalidReason::UnknownWord(word.into()),
            "{word}"
        );
    }
    assert_eq!(
        reason("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        InvalidReason::StandardName {
            word: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
            name: "ECDHE-RSA-AES128-GCM-SHA256"
        }
    );
    assert_eq!(reason("HIGH:DEFAULT"), InvalidReason::MisplacedDefault);
    assert_eq!(
        reason("DEFAULTS"),
        InvalidReason::UnknownWord("DEFAULTS".into())
    );
    assert_eq!(
        reason("SUITEB128"),
        InvalidReason::SuiteB("SUITEB128".into())
    );
    assert_eq!(
        reason("HIGH:@STRENGTH:@FOO"),
        InvalidReason::UnknownCommand("FOO".into())
    );
    assert_eq!(
        reason("HIGH:@SECLEVEL=6"),
        InvalidReason::UnknownCommand("SECLEVEL=6".into())
    );
    assert_eq!(reason("HIGH:!"), InvalidReason::MissingWord("!".into()));
    assert_eq!(
        reason("ECDHE+:HIGH"),
        InvalidReason::MissingWord("ECDHE+".into())
    );
    assert_eq!(
        reason("HIGH:+ :ALL"),
        InvalidReason::MissingWord("+".into())
    );
}

#[test]
fn no_string_reaches_the_tls13_suites() {
    for string in [
        "ALL:COMPLEMENTOFALL",
        "TLS_AES_256_GCM_SHA384:ALL",
        "HIGH",
        "!TLS_AES_128_GCM_SHA256:AESGCM",
    ] {
        let names = evaluated_names(string);
        assert!(
            !names.iter().any(|n| n.starts_with("TLS_")),
            "{string}: {names:?}"
        );
    }
    assert_eq!(
        evaluated_names("!TLS_AES_128_GCM_SHA256:!TLS_CHACHA20_POLY1305_SHA256:AESGCM"),
        evaluated_names("AESGCM")
    );
    assert!(matches!(
        evaluate(&cs("TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256")),
        Err(CipherError::SelectsNothing { .. })
    ));
}

#[test]
fn strings_that_select_nothing_usable_are_refused() {
    let tls12 = ProtocolRange::from_selection("2").unwrap();
    let tls11_12 = ProtocolRange::from_selection("2-3").unwrap();
    let tls10_12 = ProtocolRange::from_selection("2-4").unwrap();
    let tls10_11 = ProtocolRange::from_selection("3-4").unwrap();
    let tls12_13 = ProtocolRange::from_selection("1-2").unwrap();
    let tls13 = ProtocolRange::only(TlsVersion::Tls1_3);
    // CBC only: nothing rustls can serve to a TLS 1.2 client.
    assert_eq!(
        for_range(&cs("ECDHE-RSA-AES128-SHA"), tls12),
        Err(CipherError::NothingFor {
            string: "ECDHE-RSA-AES128-SHA".into(),
            version: TlsVersion::Tls1_2
        })
    );
    assert!(matches!(
        for_range(&cs("kRSA:3DES"), tls12_13),
        Err(CipherError::NothingFor {
            version: TlsVersion::Tls1_2,
            ..
        })
    ));
    // AEAD only: nothing for TLS 1.0/1.1 clients.
    assert!(matches!(
        for_range(&cs("ECDHE+AESGCM"), tls10_12),
        Err(CipherError::NothingFor {
            version: TlsVersion::Tls1_0,
            ..
        })
    ));
    assert!(matches!(
        for_range(&cs("ECDHE+AESGCM:TLSv1.2"), tls11_12),
        Err(CipherError::NothingFor {
            version: TlsVersion::Tls1_1,
            ..
        })
    ));
    // Nothing at all is refused whatever the range.
    assert!(matches!(
        for_range(&cs("RC4:!aNULL"), tls13),
        Err(CipherError::SelectsNothing { .. })
    ));
    // TLS 1.3 alone uses its fixed suites: any string that selects something will do.
    assert!(for_range(&cs("ECDHE-RSA-AES128-SHA"), tls13).is_ok());
    assert!(for_range(&cs("ECDHE+AESGCM:ECDHE+AES"), tls10_12).is_ok());
    assert!(for_range(&cs("AES128-SHA"), tls10_11).is_ok());
    assert!(for_range(&cs("ECDHE+AESGCM"), tls12_13).is_ok());
}

/// The names in an AWS-LC context's list, TLS 1.3 left out. The openssl crate has no safe
/// reader for the list of a context.
#[allow(unsafe_code)]
fn aws_lc_names(context: &SslContext) -> Vec<String> {
    use foreign_types::{ForeignType, ForeignTypeRef};
    use openssl::ssl::SslCipherRef;
    use openssl_sys as ffi;
    // SAFETY: `context` owns a live SSL_CTX while the stack is read; the stack belongs to it and
    // is only read. Its elements point into AWS-LC's static table of suites, whose names are
    // static strings.
    unsafe {
        let stack = ffi::SSL_CTX_get_ciphers(context.as_ptr());
        let count = if stack.is_null() {
            0
        } else {
            ffi::OPENSSL_sk_num(stack.cast_const().cast())
        };
        (0..count)
            .map(|i| ffi::OPENSSL_sk_value(stack.cast_const().cast(), i))
            .filter(|cipher| !cipher.is_null())
            .map(|cipher| SslCipherRef::from_ptr(cipher.cast()).name().to_owned())
            .filter(|name| !name.starts_with("TLS_"))
            .collect()
    }
}

#[test]
fn aws_lc_takes_the_explicit_list_as_is() {
    for string in [
        "ALL:COMPLEMENTOFALL",
        "DEFAULT",
        "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:!aNULL:!eNULL:!MD5:!3DES:!RC4",
        "RC4-SHA:RC4-MD5:ALL:-aNULL:-EXPORT",
        "ECDHE-RSA-AES128-SHA",
    ] {
        let suites = evaluate(&cs(string)).unwrap();
        let explicit = explicit_list(&suites);
        let mut builder = SslContext::builder(SslMethod::tls()).unwrap();
        builder.set_cipher_list(&explicit).unwrap();
        let offered = aws_lc_names(&builder.build());
        assert_eq!(offered.len(), suites.len(), "{string}");
        assert_eq!(offered, names(&suites), "{string}");
    }
    let suites = evaluate(&cs("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA")).unwrap();
    assert_eq!(
        explicit_list(&suites),
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA"
    );
}

#[test]
fn the_order_differs_from_aws_lc_where_openssl_differs() {
    // AWS-LC's own evaluation lists AES128 first here; OpenSSL, and so VERIFY, AES256.
    assert_eq!(
        evaluated_names("ECDHE+AESGCM"),
        [
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256",
        ]
    );
}
