use super::*;
use TlsVersion::*;

/// Every non-empty subset of the menu, as a comma list, with the range it must give (or not).
#[test]
fn every_subset_of_the_menu() {
    let mut contiguous = 0;
    for mask in 1u8..16 {
        let numbers: Vec<u8> = (1..=4).filter(|n| mask & (1 << (n - 1)) != 0).collect();
        let list = numbers
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let is_contiguous = numbers.windows(2).all(|w| w[1] == w[0] + 1);
        match ProtocolRange::from_selection(&list) {
            Ok(range) => {
                assert!(is_contiguous, "{list} was accepted");
                contiguous += 1;
                let got: Vec<u8> = range
                    .versions()
                    .map(TlsVersion::menu_number)
                    .rev()
                    .collect();
                assert_eq!(got, numbers, "{list}");
            }
            Err(SelectionError::NotContiguous { .. }) => assert!(!is_contiguous, "{list} refused"),
            Err(e) => panic!("{list}: {e}"),
        }
    }
    assert_eq!(contiguous, 10);
}

#[test]
fn selection_forms() {
    let r = |s: &str| ProtocolRange::from_selection(s);
    assert_eq!(r("2"), Ok(ProtocolRange::only(Tls1_2)));
    assert_eq!(r("1-3"), Ok(ProtocolRange::new(Tls1_1, Tls1_3)));
    assert_eq!(r("3-1"), Ok(ProtocolRange::new(Tls1_1, Tls1_3)));
    assert_eq!(r(" 1 - 3 "), Ok(ProtocolRange::new(Tls1_1, Tls1_3)));
    assert_eq!(r("1,2,3"), Ok(ProtocolRange::new(Tls1_1, Tls1_3)));
    assert_eq!(r("1-2,3"), Ok(ProtocolRange::new(Tls1_1, Tls1_3)));
    assert_eq!(r("2,2"), Ok(ProtocolRange::only(Tls1_2)));
    assert_eq!(r("1-4"), Ok(ProtocolRange::new(Tls1_0, Tls1_3)));
    assert_eq!(r(""), Err(SelectionError::Empty));
    assert_eq!(r("  "), Err(SelectionError::Empty));
    assert_eq!(r("0"), Err(SelectionError::OutOfRange(0)));
    assert_eq!(r("5"), Err(SelectionError::OutOfRange(5)));
    assert_eq!(r("1-9"), Err(SelectionError::OutOfRange(9)));
    assert_eq!(
        r("99999999999"),
        Err(SelectionError::NotANumber("99999999999".into()))
    );
    assert_eq!(r("x"), Err(SelectionError::NotANumber("x".into())));
    assert_eq!(r("1,"), Err(SelectionError::NotANumber(String::new())));
    assert_eq!(r("1--2"), Err(SelectionError::NotANumber("-2".into())));
    assert_eq!(r("-1"), Err(SelectionError::NotANumber(String::new())));
}

#[test]
fn a_hole_is_explained() {
    let e = ProtocolRange::from_selection("1,3").unwrap_err();
    assert_eq!(
        e.to_string(),
        "TLS v1.3 cannot be enabled with TLS v1.1 unless TLS v1.2 is also enabled"
    );
    let e = ProtocolRange::from_selection("1,4").unwrap_err();
    assert_eq!(
        e.to_string(),
        "TLS v1.3 cannot be enabled with TLS v1.0 unless TLS v1.2 and TLS v1.1 are also enabled"
    );
}

#[test]
fn method_tokens_round_trip() {
    for a in TlsVersion::MENU {
        for b in TlsVersion::MENU {
            let range = ProtocolRange::new(a, b);
            let token = range.method_token();
            assert_eq!(token.parse(), Ok(range));
        }
    }
    assert_eq!(
        ProtocolRange::new(Tls1_1, Tls1_3).method_token(),
        "tlsv1_1tlsv1_2tlsv1_3"
    );
    for bad in ["", "tlsv1_1tlsv1_3", "tlsv1_2tlsv1_1", "tls", "tlsv1_2x"] {
        assert!(bad.parse::<ProtocolRange>().is_err(), "{bad}");
    }
}

#[test]
fn menu_selection_is_the_cli_default() {
    assert_eq!(ProtocolRange::new(Tls1_1, Tls1_2).menu_selection(), "2-3");
    assert_eq!(ProtocolRange::only(Tls1_3).menu_selection(), "1");
    for s in ["1", "1-4", "2-3", "3-4"] {
        assert_eq!(
            ProtocolRange::from_selection(s).map(|r| r.menu_selection()),
            Ok(s.to_owned())
        );
    }
}

#[test]
fn checkboxes_that_would_break_the_range_are_disabled() {
    let r = ProtocolRange::new(Tls1_1, Tls1_2);
    assert!(r.can_toggle(Tls1_3));
    assert!(r.can_toggle(Tls1_2));
    assert!(r.can_toggle(Tls1_1));
    assert!(r.can_toggle(Tls1_0));
    let r = ProtocolRange::new(Tls1_0, Tls1_3);
    assert!(!r.can_toggle(Tls1_2) && !r.can_toggle(Tls1_1));
    let r = ProtocolRange::only(Tls1_3);
    assert!(!r.can_toggle(Tls1_3), "the last version cannot be unticked");
    assert!(r.can_toggle(Tls1_2) && !r.can_toggle(Tls1_1) && !r.can_toggle(Tls1_0));
}

#[test]
fn factory_defaults_are_the_seeds() {
    let tls = TlsSettings::factory();
    for service in TlsService::ALL {
        assert_eq!(
            tls.protocols(service).method_token(),
            "tlsv1_1tlsv1_2",
            "{service}"
        );
        assert!(!tls.protocols(service).contains(Tls1_0));
    }
}

#[test]
fn other_client_services_only_add_or_drop_tls_1_0() {
    let mut tls = TlsSettings::factory();
    let with_1_0 = ProtocolRange::from_selection("2-4").unwrap();
    tls.set_protocols(TlsService::OtherClient, with_1_0)
        .unwrap();
    assert!(tls.other_client.tls_v1_0);
    assert_eq!(tls.protocols(TlsService::OtherClient), with_1_0);
    let tls13 = ProtocolRange::from_selection("1-3").unwrap();
    assert_eq!(
        tls.set_protocols(TlsService::OtherClient, tls13),
        Err(TlsSettingError::OtherClientFixed(tls13))
    );
    tls.set_protocols(TlsService::InboundSmtp, tls13).unwrap();
    assert_eq!(tls.inbound_smtp.protocols, tls13);
}

#[test]
fn cipher_strings() {
    assert!(CipherString::new("ECDHE+AESGCM:!aNULL:@STRENGTH").is_ok());
    assert!(CipherString::new("HIGH:-3DES").is_ok());
    assert_eq!(CipherString::new("  "), Err(CipherStringError::Empty));
    assert_eq!(
        CipherString::new("ALL;rm"),
        Err(CipherStringError::BadCharacter(';'))
    );
    assert_eq!(
        CipherString::new(&"A".repeat(2000)),
        Err(CipherStringError::TooLong(2000))
    );
    assert_eq!(TLS13_CIPHER_SUITES[0], "TLS_AES_256_GCM_SHA384");
}
