use super::*;

fn mailbox(s: &str) -> Mailbox {
    Mailbox::parse(s, true).unwrap()
}

#[test]
fn mailboxes_that_parse() {
    // (input, local part, host as displayed)
    for (input, local, host) in [
        ("user@example.com", "user", "example.com"),
        ("User.Name@Example.COM", "User.Name", "example.com"),
        ("a@b", "a", "b"),
        (
            "x+tag@sub.example-domain.org",
            "x+tag",
            "sub.example-domain.org",
        ),
        (
            "!#$%&'*+-/=?^_`{|}~@example.com",
            "!#$%&'*+-/=?^_`{|}~",
            "example.com",
        ),
        ("\"john doe\"@example.com", "\"john doe\"", "example.com"),
        ("\"a@b\"@example.com", "\"a@b\"", "example.com"),
        ("\"q\\\"uote\"@example.com", "\"q\\\"uote\"", "example.com"),
        ("\"\"@example.com", "\"\"", "example.com"),
        (
            "\".leading..dots.\"@example.com",
            "\".leading..dots.\"",
            "example.com",
        ),
        ("user@[192.0.2.1]", "user", "[192.0.2.1]"),
        ("user@[010.0.2.001]", "user", "[10.0.2.1]"),
        ("user@[IPv6:2001:DB8::1]", "user", "[IPv6:2001:db8::1]"),
        ("user@[ipv6:::1]", "user", "[IPv6:::1]"),
        (
            "user@[IPv6:::ffff:192.0.2.1]",
            "user",
            "[IPv6:::ffff:192.0.2.1]",
        ),
        ("123@1example.com", "123", "1example.com"),
        ("jörg@bücher.example", "jörg", "bücher.example"),
        ("用户@例子.广告", "用户", "例子.广告"),
        ("\"ü ü\"@example.com", "\"ü ü\"", "example.com"),
    ] {
        let m = Mailbox::parse(input, true).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(m.local_part(), local, "{input}");
        assert_eq!(m.host().to_string(), host, "{input}");
        assert_eq!(m.to_string(), format!("{local}@{host}"), "{input}");
    }
}

#[test]
fn mailboxes_that_do_not_parse() {
    use AddressError::*;
    let long_local = format!("{}@example.com", "a".repeat(65));
    let long_label = format!("a@{}.com", "b".repeat(64));
    let long_domain = format!("a@{}", ["abcdefghi"; 26].join("."));
    for (input, error) in [
        ("", BadLocalPart),
        ("user", MissingAt),
        ("@example.com", BadLocalPart),
        ("user@", BadDomain),
        (".user@example.com", BadLocalPart),
        ("user.@example.com", BadLocalPart),
        ("us..er@example.com", BadLocalPart),
        ("us er@example.com", BadLocalPart),
        ("us(er@example.com", BadLocalPart),
        ("a@b@example.com", BadDomain),
        ("\"unterminated@example.com", BadLocalPart),
        ("\"tab\there\"@example.com", BadLocalPart),
        ("\"bad\\\u{7f}\"@example.com", BadLocalPart),
        ("\"q\"x@example.com", BadLocalPart),
        ("user@-example.com", BadDomain),
        ("user@example-.com", BadDomain),
        ("user@example..com", BadDomain),
        ("user@example.com.", BadDomain),
        ("user@exa_mple.com", BadDomain),
        ("user@exa mple.com", BadDomain),
        ("user@[300.0.0.1]", BadAddressLiteral),
        ("user@[1.2.3]", BadAddressLiteral),
        ("user@[1.2.3.4.5]", BadAddressLiteral),
        ("user@[1.2.3.0004]", BadAddressLiteral),
        ("user@[+1.2.3.4]", BadAddressLiteral),
        ("user@[IPv6:1.2.3.4]", BadAddressLiteral),
        ("user@[IPv6:fe80::1%eth0]", BadAddressLiteral),
        ("user@[2001:db8::1]", BadAddressLiteral),
        ("user@[x-tag:content]", BadAddressLiteral),
        ("user@[192.0.2.1", BadAddressLiteral),
        ("user@[192.0.2.1]x", BadDomain),
        ("u\u{2028}@example.com", BadLocalPart),
        ("u@exa\u{85}mple.com", BadDomain),
        (&long_local, LocalPartTooLong(65)),
        (&long_label, BadDomain),
        (&long_domain, DomainTooLong(259)),
    ] {
        assert_eq!(Mailbox::parse(input, true), Err(error), "{input:?}");
    }
}

#[test]
fn length_limits_are_inclusive() {
    let local = "a".repeat(64);
    assert!(Mailbox::parse(&format!("{local}@example.com"), false).is_ok());
    let label = "b".repeat(63);
    assert!(Mailbox::parse(&format!("a@{label}.com"), false).is_ok());
    // 255 octets: 25 labels of 9 and 24 dots make 249, plus ".abcde".
    let domain = format!("{}.abcde", ["abcdefghi"; 25].join("."));
    assert_eq!(domain.len(), 255);
    assert!(Domain::parse(&domain, false).is_ok());
    assert_eq!(
        Domain::parse(&format!("{domain}x"), false),
        Err(AddressError::DomainTooLong(256))
    );
}

#[test]
fn path_limit_is_256_octets_with_brackets() {
    // <64@189> = 1 + 64 + 1 + 189 + 1 = 256
    let domain = |len: usize| {
        let mut d = ["abcdefghi"; 18].join(".");
        d.push('.');
        d.push_str(&"x".repeat(len - d.len()));
        d
    };
    let path = format!("<{}@{}>", "a".repeat(64), domain(189));
    assert_eq!(path.len(), 256);
    assert!(ReversePath::parse(&path, false).is_ok());
    let path = format!("<{}@{}>", "a".repeat(64), domain(190));
    assert_eq!(
        ForwardPath::parse(&path, false),
        Err(AddressError::PathTooLong(257))
    );
}

#[test]
fn utf8_only_with_smtputf8() {
    for input in [
        "jörg@example.com",
        "user@bücher.example",
        "\"ü\"@example.com",
    ] {
        assert_eq!(
            Mailbox::parse(input, false),
            Err(AddressError::NonAscii),
            "{input}"
        );
        let m = Mailbox::parse(input, true).unwrap();
        assert!(!m.is_ascii());
        let path = format!("<{input}>");
        assert_eq!(
            ReversePath::parse(&path, false),
            Err(AddressError::NonAscii)
        );
        assert_eq!(
            ForwardPath::parse(&path, false),
            Err(AddressError::NonAscii)
        );
        assert!(ForwardPath::parse(&path, true).unwrap().mailbox() == Some(&m));
    }
    assert!(mailbox("user@example.com").is_ascii());
    assert_eq!(
        Domain::parse("bücher.example", false),
        Err(AddressError::NonAscii)
    );
    assert_eq!(
        Domain::parse("BÜCHER.Example", true).unwrap().as_str(),
        "bÜcher.example"
    );
}

#[test]
fn domains_compare_without_case_local_parts_with_case() {
    assert_eq!(mailbox("user@EXAMPLE.com"), mailbox("user@example.COM"));
    assert_ne!(mailbox("User@example.com"), mailbox("user@example.com"));
    assert_eq!(
        mailbox("a@[IPv6:2001:db8::1]"),
        mailbox("a@[IPV6:2001:0DB8:0::1]")
    );
}

#[test]
fn paths() {
    let reverse = |s: &str| ReversePath::parse(s, false);
    let forward = |s: &str| ForwardPath::parse(s, false);
    assert_eq!(reverse("<>"), Ok(ReversePath::Null));
    assert_eq!(
        reverse("<a@example.org>"),
        Ok(ReversePath::Mailbox(mailbox("a@example.org")))
    );
    assert_eq!(forward("<>"), Err(AddressError::NullRecipient));
    for postmaster in ["<postmaster>", "<Postmaster>", "<POSTMASTER>"] {
        assert_eq!(forward(postmaster), Ok(ForwardPath::Postmaster));
    }
    assert_eq!(reverse("<postmaster>"), Err(AddressError::MissingAt));
    assert_eq!(
        forward("<postmaster@example.com>"),
        Ok(ForwardPath::Mailbox(mailbox("postmaster@example.com")))
    );
    assert_eq!(forward("<postmasters>"), Err(AddressError::MissingAt));
    // Source routes are accepted and dropped.
    assert_eq!(
        forward("<@relay.example,@Other.Example:user@example.com>"),
        Ok(ForwardPath::Mailbox(mailbox("user@example.com")))
    );
    assert_eq!(
        reverse("<@relay.example:user@example.com>"),
        Ok(ReversePath::Mailbox(mailbox("user@example.com")))
    );
    for (input, error) in [
        ("a@example.org", AddressError::NotBracketed),
        ("<a@example.org", AddressError::NotBracketed),
        ("<a@example.org>x", AddressError::NotBracketed),
        ("<<a@example.org>>", AddressError::BadLocalPart),
        (
            "<@relay.example user@example.com>",
            AddressError::BadSourceRoute,
        ),
        ("<@relay.example>", AddressError::BadSourceRoute),
        ("<@:user@example.com>", AddressError::BadSourceRoute),
        ("<@a,b:user@example.com>", AddressError::BadSourceRoute),
        ("<@a:user>", AddressError::MissingAt),
        ("<a@example.org >", AddressError::BadDomain),
    ] {
        assert_eq!(reverse(input), Err(error), "{input}");
    }
}

#[test]
fn paths_display_with_brackets() {
    assert_eq!(ReversePath::Null.to_string(), "<>");
    assert_eq!(ForwardPath::Postmaster.to_string(), "<postmaster>");
    let path = ReversePath::parse("<@r.example:Joe@Example.ORG>", false).unwrap();
    assert_eq!(path.to_string(), "<Joe@example.org>");
    let path = ForwardPath::parse("<\"j d\"@[IPv6:0:0::1]>", false).unwrap();
    assert_eq!(path.to_string(), "<\"j d\"@[IPv6:::1]>");
    assert_eq!(ForwardPath::parse(&path.to_string(), false), Ok(path));
}
