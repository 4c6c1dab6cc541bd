//! The facts the cipher-string evaluation works on: the suites both engines serve, described
//! the way OpenSSL 3 describes them (ssl/s3_lib.c), and the words of OpenSSL's cipher-string
//! language (ssl/ssl_ciph.c, `cipher_aliases`).
//!
//! The bit values are ours; only which bits an entry shares with another matters, as in OpenSSL.

// Key exchange (OpenSSL's `algorithm_mkey`).
pub(super) const K_RSA: u32 = 1 << 0;
pub(super) const K_DHE: u32 = 1 << 1;
pub(super) const K_ECDHE: u32 = 1 << 2;
pub(super) const K_PSK: u32 = 1 << 3;
const K_RSAPSK: u32 = 1 << 4;
const K_ECDHEPSK: u32 = 1 << 5;
const K_DHEPSK: u32 = 1 << 6;
const K_SRP: u32 = 1 << 7;
const K_ANY_PSK: u32 = K_PSK | K_RSAPSK | K_ECDHEPSK | K_DHEPSK;

// Server authentication (`algorithm_auth`).
pub(super) const A_RSA: u32 = 1 << 0;
const A_DSS: u32 = 1 << 1;
pub(super) const A_NULL: u32 = 1 << 2;
pub(super) const A_ECDSA: u32 = 1 << 3;
const A_PSK: u32 = 1 << 4;
const A_SRP: u32 = 1 << 5;

// Bulk encryption (`algorithm_enc`). Ciphers whose every word is absent here (RC4, RC2, IDEA,
// SEED, DES, GOST) need no bit: no alias with bits mentions them.
const E_3DES: u32 = 1 << 0;
pub(super) const E_NULL: u32 = 1 << 1;
const E_AES128: u32 = 1 << 2;
const E_AES256: u32 = 1 << 3;
const E_AES128GCM: u32 = 1 << 4;
const E_AES256GCM: u32 = 1 << 5;
const E_AES128CCM: u32 = 1 << 6;
const E_AES256CCM: u32 = 1 << 7;
const E_AES128CCM8: u32 = 1 << 8;
const E_AES256CCM8: u32 = 1 << 9;
const E_CAMELLIA128: u32 = 1 << 10;
const E_CAMELLIA256: u32 = 1 << 11;
const E_CHACHA20POLY1305: u32 = 1 << 12;
const E_ARIA128GCM: u32 = 1 << 13;
const E_ARIA256GCM: u32 = 1 << 14;
pub(super) const E_AESGCM: u32 = E_AES128GCM | E_AES256GCM;
const E_AESCCM: u32 = E_AES128CCM | E_AES256CCM | E_AES128CCM8 | E_AES256CCM8;
pub(super) const E_AES: u32 = E_AES128 | E_AES256 | E_AESGCM | E_AESCCM;
pub(super) const E_CHACHA20: u32 = E_CHACHA20POLY1305;
const E_CAMELLIA: u32 = E_CAMELLIA128 | E_CAMELLIA256;
const E_ARIA: u32 = E_ARIA128GCM | E_ARIA256GCM;
const E_CBC: u32 = E_3DES | E_AES128 | E_AES256 | E_CAMELLIA128 | E_CAMELLIA256;

// Message authentication (`algorithm_mac`).
pub(super) const M_MD5: u32 = 1 << 0;
const M_SHA1: u32 = 1 << 1;
const M_SHA256: u32 = 1 << 2;
const M_SHA384: u32 = 1 << 3;
pub(super) const M_AEAD: u32 = 1 << 4;

// Strength classes and the default flag (`algo_strength`), with OpenSSL's two masks: a rule
// asks for any of its strength classes, and for the default flag separately.
const S_NONE: u32 = 0x01;
const S_LOW: u32 = 0x02;
const S_MEDIUM: u32 = 0x04;
const S_HIGH: u32 = 0x08;
const S_FIPS: u32 = 0x10;
const S_NOT_DEFAULT: u32 = 0x20;
pub(super) const STRONG_MASK: u32 = 0x1F;
pub(super) const DEFAULT_MASK: u32 = 0x20;

// Protocol versions as OpenSSL numbers them (`min_tls`).
pub(super) const SSL3: u16 = 0x0300;
pub(super) const TLS1: u16 = 0x0301;
pub(super) const TLS1_2: u16 = 0x0303;

/// One suite: its names and OpenSSL's description of it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Row {
    /// The IANA code point.
    pub(super) id: u16,
    pub(super) name: &'static str,
    pub(super) standard_name: &'static str,
    pub(super) kx: u32,
    pub(super) au: u32,
    pub(super) enc: u32,
    pub(super) mac: u32,
    /// OpenSSL's oldest protocol for it: [`SSL3`], [`TLS1`] or [`TLS1_2`].
    pub(super) protocol: u16,
    pub(super) strength: u32,
    /// OpenSSL's `strength_bits`, what `@STRENGTH` sorts by.
    pub(super) bits: u16,
}

impl Row {
    /// The `openssl ciphers -v` line, single-spaced.
    pub(super) fn description(&self) -> String {
        let version = match self.protocol {
            SSL3 => "SSLv3",
            TLS1 => "TLSv1",
            _ => "TLSv1.2",
        };
        let kx = if self.kx == K_ECDHE { "ECDH" } else { "RSA" };
        let au = if self.au == A_ECDSA { "ECDSA" } else { "RSA" };
        let enc = match self.enc {
            E_3DES => "3DES(168)",
            E_NULL => "None",
            E_AES128 => "AES(128)",
            E_AES256 => "AES(256)",
            E_AES128GCM => "AESGCM(128)",
            E_AES256GCM => "AESGCM(256)",
            _ => "CHACHA20/POLY1305(256)",
        };
        let mac = match self.mac {
            M_SHA1 => "SHA1",
            M_SHA256 => "SHA256",
            M_SHA384 => "SHA384",
            _ => "AEAD",
        };
        format!(
            "{} {version} Kx={kx} Au={au} Enc={enc} Mac={mac}",
            self.name
        )
    }
}

const fn suite(
    id: u16,
    name: &'static str,
    standard_name: &'static str,
    (kx, au, enc, mac): (u32, u32, u32, u32),
    protocol: u16,
    strength: u32,
    bits: u16,
) -> Row {
    Row {
        id,
        name,
        standard_name,
        kx,
        au,
        enc,
        mac,
        protocol,
        strength,
        bits,
    }
}

/// The TLS v1.0–v1.2 suites AWS-LC implements, less its pre-shared-key suites (Postern has no
/// pre-shared keys, and AWS-LC offers those suites only with one), in code point order. The
/// values are OpenSSL 3's: DES-CBC3-SHA as OpenSSL has it when built with its weak ciphers
/// (Debian's is not), the rest as `openssl ciphers -v -V` prints them.
#[rustfmt::skip]
pub(super) const SUITES: [Row; 19] = [
    suite(0x0002, "NULL-SHA", "TLS_RSA_WITH_NULL_SHA",
        (K_RSA, A_RSA, E_NULL, M_SHA1), SSL3, S_NONE | S_FIPS, 0),
    suite(0x000A, "DES-CBC3-SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        (K_RSA, A_RSA, E_3DES, M_SHA1), SSL3, S_NOT_DEFAULT | S_MEDIUM | S_FIPS, 112),
    suite(0x002F, "AES128-SHA", "TLS_RSA_WITH_AES_128_CBC_SHA",
        (K_RSA, A_RSA, E_AES128, M_SHA1), SSL3, S_HIGH | S_FIPS, 128),
    suite(0x0035, "AES256-SHA", "TLS_RSA_WITH_AES_256_CBC_SHA",
        (K_RSA, A_RSA, E_AES256, M_SHA1), SSL3, S_HIGH | S_FIPS, 256),
    suite(0x003C, "AES128-SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA256",
        (K_RSA, A_RSA, E_AES128, M_SHA256), TLS1_2, S_HIGH | S_FIPS, 128),
    suite(0x009C, "AES128-GCM-SHA256", "TLS_RSA_WITH_AES_128_GCM_SHA256",
        (K_RSA, A_RSA, E_AES128GCM, M_AEAD), TLS1_2, S_HIGH | S_FIPS, 128),
    suite(0x009D, "AES256-GCM-SHA384", "TLS_RSA_WITH_AES_256_GCM_SHA384",
        (K_RSA, A_RSA, E_AES256GCM, M_AEAD), TLS1_2, S_HIGH | S_FIPS, 256),
    suite(0xC009, "ECDHE-ECDSA-AES128-SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        (K_ECDHE, A_ECDSA, E_AES128, M_SHA1), TLS1, S_HIGH | S_FIPS, 128),
    suite(0xC00A, "ECDHE-ECDSA-AES256-SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        (K_ECDHE, A_ECDSA, E_AES256, M_SHA1), TLS1, S_HIGH | S_FIPS, 256),
    suite(0xC013, "ECDHE-RSA-AES128-SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        (K_ECDHE, A_RSA, E_AES128, M_SHA1), TLS1, S_HIGH | S_FIPS, 128),
    suite(0xC014, "ECDHE-RSA-AES256-SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        (K_ECDHE, A_RSA, E_AES256, M_SHA1), TLS1, S_HIGH | S_FIPS, 256),
    suite(0xC027, "ECDHE-RSA-AES128-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        (K_ECDHE, A_RSA, E_AES128, M_SHA256), TLS1_2, S_HIGH | S_FIPS, 128),
    suite(0xC028, "ECDHE-RSA-AES256-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        (K_ECDHE, A_RSA, E_AES256, M_SHA384), TLS1_2, S_HIGH | S_FIPS, 256),
    suite(0xC02B, "ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        (K_ECDHE, A_ECDSA, E_AES128GCM, M_AEAD), TLS1_2, S_HIGH | S_FIPS, 128),
    suite(0xC02C, "ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        (K_ECDHE, A_ECDSA, E_AES256GCM, M_AEAD), TLS1_2, S_HIGH | S_FIPS, 256),
    suite(0xC02F, "ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        (K_ECDHE, A_RSA, E_AES128GCM, M_AEAD), TLS1_2, S_HIGH | S_FIPS, 128),
    suite(0xC030, "ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        (K_ECDHE, A_RSA, E_AES256GCM, M_AEAD), TLS1_2, S_HIGH | S_FIPS, 256),
    suite(0xCCA8, "ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        (K_ECDHE, A_RSA, E_CHACHA20POLY1305, M_AEAD), TLS1_2, S_HIGH, 256),
    suite(0xCCA9, "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        (K_ECDHE, A_ECDSA, E_CHACHA20POLY1305, M_AEAD), TLS1_2, S_HIGH, 256),
];

/// A word of the language that names a group of suites.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Alias {
    pub(super) name: &'static str,
    pub(super) kx: u32,
    pub(super) au: u32,
    pub(super) enc: u32,
    pub(super) mac: u32,
    pub(super) protocol: u16,
    pub(super) strength: u32,
}

const fn alias(name: &'static str) -> Alias {
    Alias {
        name,
        kx: 0,
        au: 0,
        enc: 0,
        mac: 0,
        protocol: 0,
        strength: 0,
    }
}

impl Alias {
    const fn kx(self, kx: u32) -> Self {
        Self { kx, ..self }
    }
    const fn au(self, au: u32) -> Self {
        Self { au, ..self }
    }
    const fn enc(self, enc: u32) -> Self {
        Self { enc, ..self }
    }
    const fn mac(self, mac: u32) -> Self {
        Self { mac, ..self }
    }
    const fn protocol(self, protocol: u16) -> Self {
        Self { protocol, ..self }
    }
    const fn strength(self, strength: u32) -> Self {
        Self { strength, ..self }
    }
}

/// OpenSSL 3's aliases, as it has them when its default provider lacks the legacy ciphers
/// (Debian's build); those it then skips are in [`ABSENT_WORDS`].
pub(super) const ALIASES: &[Alias] = &[
    // ALL leaves out the null ciphers; COMPLEMENTOFALL is them.
    alias("ALL").enc(!E_NULL),
    alias("COMPLEMENTOFALL").enc(E_NULL),
    alias("COMPLEMENTOFDEFAULT").strength(S_NOT_DEFAULT),
    // Key exchange.
    alias("kRSA").kx(K_RSA),
    alias("kEDH").kx(K_DHE),
    alias("kDHE").kx(K_DHE),
    alias("DH").kx(K_DHE),
    alias("kEECDH").kx(K_ECDHE),
    alias("kECDHE").kx(K_ECDHE),
    alias("ECDH").kx(K_ECDHE),
    alias("kPSK").kx(K_PSK),
    alias("kRSAPSK").kx(K_RSAPSK),
    alias("kECDHEPSK").kx(K_ECDHEPSK),
    alias("kDHEPSK").kx(K_DHEPSK),
    alias("kSRP").kx(K_SRP),
    // Authentication.
    alias("aRSA").au(A_RSA),
    alias("aDSS").au(A_DSS),
    alias("DSS").au(A_DSS),
    alias("aNULL").au(A_NULL),
    alias("aECDSA").au(A_ECDSA),
    alias("ECDSA").au(A_ECDSA),
    alias("aPSK").au(A_PSK),
    alias("aSRP").au(A_SRP),
    // Both.
    alias("EDH").kx(K_DHE).au(!A_NULL),
    alias("DHE").kx(K_DHE).au(!A_NULL),
    alias("EECDH").kx(K_ECDHE).au(!A_NULL),
    alias("ECDHE").kx(K_ECDHE).au(!A_NULL),
    alias("NULL").enc(E_NULL),
    alias("RSA").kx(K_RSA).au(A_RSA),
    alias("ADH").kx(K_DHE).au(A_NULL),
    alias("AECDH").kx(K_ECDHE).au(A_NULL),
    alias("PSK").kx(K_ANY_PSK),
    alias("SRP").kx(K_SRP),
    // Encryption.
    alias("3DES").enc(E_3DES),
    alias("eNULL").enc(E_NULL),
    alias("AES128").enc(E_AES128 | E_AES128GCM | E_AES128CCM | E_AES128CCM8),
    alias("AES256").enc(E_AES256 | E_AES256GCM | E_AES256CCM | E_AES256CCM8),
    alias("AES").enc(E_AES),
    alias("AESGCM").enc(E_AESGCM),
    alias("AESCCM").enc(E_AESCCM),
    alias("AESCCM8").enc(E_AES128CCM8 | E_AES256CCM8),
    alias("CAMELLIA128").enc(E_CAMELLIA128),
    alias("CAMELLIA256").enc(E_CAMELLIA256),
    alias("CAMELLIA").enc(E_CAMELLIA),
    alias("CHACHA20").enc(E_CHACHA20),
    alias("ARIA").enc(E_ARIA),
    alias("ARIAGCM").enc(E_ARIA),
    alias("ARIA128").enc(E_ARIA128GCM),
    alias("ARIA256").enc(E_ARIA256GCM),
    alias("CBC").enc(E_CBC),
    // MAC.
    alias("MD5").mac(M_MD5),
    alias("SHA1").mac(M_SHA1),
    alias("SHA").mac(M_SHA1),
    alias("SHA256").mac(M_SHA256),
    alias("SHA384").mac(M_SHA384),
    // Protocol: the suites whose oldest version is exactly this one.
    alias("SSLv3").protocol(SSL3),
    alias("TLSv1").protocol(TLS1),
    alias("TLSv1.0").protocol(TLS1),
    alias("TLSv1.2").protocol(TLS1_2),
    // Strength.
    alias("LOW").strength(S_LOW),
    alias("MEDIUM").strength(S_MEDIUM),
    alias("HIGH").strength(S_HIGH),
    alias("FIPS").enc(!E_NULL).strength(S_FIPS),
    // Old names of DHE suites, kept by OpenSSL as aliases.
    alias("EDH-DSS-DES-CBC3-SHA")
        .kx(K_DHE)
        .au(A_DSS)
        .enc(E_3DES)
        .mac(M_SHA1)
        .strength(S_HIGH | S_FIPS),
    alias("EDH-RSA-DES-CBC3-SHA")
        .kx(K_DHE)
        .au(A_RSA)
        .enc(E_3DES)
        .mac(M_SHA1)
        .strength(S_HIGH | S_FIPS),
];

/// Words OpenSSL has or had that name nothing either engine implements: aliases of algorithms
/// missing from OpenSSL 3's default provider (it skips them), aliases older OpenSSL had
/// (strings written for other gateways still carry them), and version words without suites of
/// their own. An element with one of them selects nothing, as in OpenSSL.
#[rustfmt::skip]
pub(super) const ABSENT_WORDS: &[&str] = &[
    // OpenSSL 3 aliases of ciphers, MACs and key types its default provider lacks.
    "RC4", "RC2", "IDEA", "SEED", "GOST89", "GOST94", "GOST89MAC", "GOST12", "kGOST", "kGOST18",
    "aGOST01", "aGOST12", "aGOST", "GOST2012-GOST8912-GOST8912",
    // Aliases of OpenSSL 1.0 and 1.1.
    "EXP", "EXPORT", "EXPORT40", "EXPORT56", "DES", "SSLv2", "kDH", "kDHr", "kDHd", "kECDH",
    "kECDHr", "kECDHe", "aDH", "aECDH", "kKRB5", "aKRB5", "KRB5", "kFZA", "aFZA", "eFZA", "FZA",
    "aGOST94", "GOST89MAC12", "DTLSv1", "DTLSv1.0", "DTLSv1.2",
    // A version with no suites of its own.
    "TLSv1.1",
];

/// The TLS 1.3 suites: fixed, so a cipher string naming one selects nothing.
pub(super) const TLS13_SUITE_NAMES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_CCM_SHA256",
    "TLS_AES_128_CCM_8_SHA256",
];

/// The OpenSSL names of the TLS v1.2-and-older suites OpenSSL has or had (its headers, plus the
/// SSL 2, Kerberos, export-1024 and GOST suites of older releases) that neither engine
/// implements here.
#[rustfmt::skip]
pub(super) const ABSENT_SUITE_NAMES: &[&str] = &[
    "ADH-AES128-GCM-SHA256", "ADH-AES128-SHA", "ADH-AES128-SHA256", "ADH-AES256-GCM-SHA384",
    "ADH-AES256-SHA", "ADH-AES256-SHA256", "ADH-ARIA128-GCM-SHA256", "ADH-ARIA256-GCM-SHA384",
    "ADH-CAMELLIA128-SHA", "ADH-CAMELLIA128-SHA256", "ADH-CAMELLIA256-SHA",
    "ADH-CAMELLIA256-SHA256", "ADH-DES-CBC-SHA", "ADH-DES-CBC3-SHA", "ADH-RC4-MD5", "ADH-SEED-SHA",
    "AECDH-AES128-SHA", "AECDH-AES256-SHA", "AECDH-DES-CBC3-SHA", "AECDH-NULL-SHA", "AECDH-RC4-SHA",
    "AES128-CCM", "AES128-CCM8", "AES256-CCM", "AES256-CCM8", "AES256-SHA256", "ARIA128-GCM-SHA256",
    "ARIA256-GCM-SHA384", "CAMELLIA128-SHA", "CAMELLIA128-SHA256", "CAMELLIA256-SHA",
    "CAMELLIA256-SHA256", "DES-CBC-MD5", "DES-CBC-SHA", "DES-CBC3-MD5", "DH-DSS-AES128-GCM-SHA256",
    "DH-DSS-AES128-SHA", "DH-DSS-AES128-SHA256", "DH-DSS-AES256-GCM-SHA384", "DH-DSS-AES256-SHA",
    "DH-DSS-AES256-SHA256", "DH-DSS-ARIA128-GCM-SHA256", "DH-DSS-ARIA256-GCM-SHA384",
    "DH-DSS-CAMELLIA128-SHA", "DH-DSS-CAMELLIA128-SHA256", "DH-DSS-CAMELLIA256-SHA",
    "DH-DSS-CAMELLIA256-SHA256", "DH-DSS-DES-CBC-SHA", "DH-DSS-DES-CBC3-SHA", "DH-DSS-SEED-SHA",
    "DH-RSA-AES128-GCM-SHA256", "DH-RSA-AES128-SHA", "DH-RSA-AES128-SHA256",
    "DH-RSA-AES256-GCM-SHA384", "DH-RSA-AES256-SHA", "DH-RSA-AES256-SHA256",
    "DH-RSA-ARIA128-GCM-SHA256", "DH-RSA-ARIA256-GCM-SHA384", "DH-RSA-CAMELLIA128-SHA",
    "DH-RSA-CAMELLIA128-SHA256", "DH-RSA-CAMELLIA256-SHA", "DH-RSA-CAMELLIA256-SHA256",
    "DH-RSA-DES-CBC-SHA", "DH-RSA-DES-CBC3-SHA", "DH-RSA-SEED-SHA", "DHE-DSS-AES128-GCM-SHA256",
    "DHE-DSS-AES128-SHA", "DHE-DSS-AES128-SHA256", "DHE-DSS-AES256-GCM-SHA384",
    "DHE-DSS-AES256-SHA", "DHE-DSS-AES256-SHA256", "DHE-DSS-ARIA128-GCM-SHA256",
    "DHE-DSS-ARIA256-GCM-SHA384", "DHE-DSS-CAMELLIA128-SHA", "DHE-DSS-CAMELLIA128-SHA256",
    "DHE-DSS-CAMELLIA256-SHA", "DHE-DSS-CAMELLIA256-SHA256", "DHE-DSS-DES-CBC-SHA",
    "DHE-DSS-DES-CBC3-SHA", "DHE-DSS-RC4-SHA", "DHE-DSS-SEED-SHA", "DHE-PSK-3DES-EDE-CBC-SHA",
    "DHE-PSK-AES128-CBC-SHA", "DHE-PSK-AES128-CBC-SHA256", "DHE-PSK-AES128-CCM",
    "DHE-PSK-AES128-CCM8", "DHE-PSK-AES128-GCM-SHA256", "DHE-PSK-AES256-CBC-SHA",
    "DHE-PSK-AES256-CBC-SHA384", "DHE-PSK-AES256-CCM", "DHE-PSK-AES256-CCM8",
    "DHE-PSK-AES256-GCM-SHA384", "DHE-PSK-ARIA128-GCM-SHA256", "DHE-PSK-ARIA256-GCM-SHA384",
    "DHE-PSK-CAMELLIA128-SHA256", "DHE-PSK-CAMELLIA256-SHA384", "DHE-PSK-CHACHA20-POLY1305",
    "DHE-PSK-NULL-SHA", "DHE-PSK-NULL-SHA256", "DHE-PSK-NULL-SHA384", "DHE-PSK-RC4-SHA",
    "DHE-RSA-AES128-CCM", "DHE-RSA-AES128-CCM8", "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES128-SHA",
    "DHE-RSA-AES128-SHA256", "DHE-RSA-AES256-CCM", "DHE-RSA-AES256-CCM8",
    "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-AES256-SHA", "DHE-RSA-AES256-SHA256",
    "DHE-RSA-ARIA128-GCM-SHA256", "DHE-RSA-ARIA256-GCM-SHA384", "DHE-RSA-CAMELLIA128-SHA",
    "DHE-RSA-CAMELLIA128-SHA256", "DHE-RSA-CAMELLIA256-SHA", "DHE-RSA-CAMELLIA256-SHA256",
    "DHE-RSA-CHACHA20-POLY1305", "DHE-RSA-DES-CBC-SHA", "DHE-RSA-DES-CBC3-SHA", "DHE-RSA-SEED-SHA",
    "ECDH-ARIA128-GCM-SHA256", "ECDH-ARIA256-GCM-SHA384", "ECDH-ECDSA-AES128-GCM-SHA256",
    "ECDH-ECDSA-AES128-SHA", "ECDH-ECDSA-AES128-SHA256", "ECDH-ECDSA-AES256-GCM-SHA384",
    "ECDH-ECDSA-AES256-SHA", "ECDH-ECDSA-AES256-SHA384", "ECDH-ECDSA-ARIA128-GCM-SHA256",
    "ECDH-ECDSA-ARIA256-GCM-SHA384", "ECDH-ECDSA-CAMELLIA128-SHA256",
    "ECDH-ECDSA-CAMELLIA256-SHA384", "ECDH-ECDSA-DES-CBC3-SHA", "ECDH-ECDSA-NULL-SHA",
    "ECDH-ECDSA-RC4-SHA", "ECDH-RSA-AES128-GCM-SHA256", "ECDH-RSA-AES128-SHA",
    "ECDH-RSA-AES128-SHA256", "ECDH-RSA-AES256-GCM-SHA384", "ECDH-RSA-AES256-SHA",
    "ECDH-RSA-AES256-SHA384", "ECDH-RSA-CAMELLIA128-SHA256", "ECDH-RSA-CAMELLIA256-SHA384",
    "ECDH-RSA-DES-CBC3-SHA", "ECDH-RSA-NULL-SHA", "ECDH-RSA-RC4-SHA", "ECDHE-ARIA128-GCM-SHA256",
    "ECDHE-ARIA256-GCM-SHA384", "ECDHE-ECDSA-AES128-CCM", "ECDHE-ECDSA-AES128-CCM8",
    "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-CCM", "ECDHE-ECDSA-AES256-CCM8",
    "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-ARIA128-GCM-SHA256", "ECDHE-ECDSA-ARIA256-GCM-SHA384",
    "ECDHE-ECDSA-CAMELLIA128-SHA256", "ECDHE-ECDSA-CAMELLIA256-SHA384", "ECDHE-ECDSA-DES-CBC3-SHA",
    "ECDHE-ECDSA-NULL-SHA", "ECDHE-ECDSA-RC4-SHA", "ECDHE-PSK-3DES-EDE-CBC-SHA",
    "ECDHE-PSK-AES128-CBC-SHA", "ECDHE-PSK-AES128-CBC-SHA256", "ECDHE-PSK-AES256-CBC-SHA",
    "ECDHE-PSK-AES256-CBC-SHA384", "ECDHE-PSK-CAMELLIA128-SHA256", "ECDHE-PSK-CAMELLIA256-SHA384",
    "ECDHE-PSK-CHACHA20-POLY1305", "ECDHE-PSK-NULL-SHA", "ECDHE-PSK-NULL-SHA256",
    "ECDHE-PSK-NULL-SHA384", "ECDHE-PSK-RC4-SHA", "ECDHE-RSA-CAMELLIA128-SHA256",
    "ECDHE-RSA-CAMELLIA256-SHA384", "ECDHE-RSA-DES-CBC3-SHA", "ECDHE-RSA-NULL-SHA",
    "ECDHE-RSA-RC4-SHA", "EDH-DSS-DES-CBC-SHA", "EDH-RSA-DES-CBC-SHA", "EXP-ADH-DES-CBC-SHA",
    "EXP-ADH-RC4-MD5", "EXP-DES-CBC-SHA", "EXP-DH-DSS-DES-CBC-SHA", "EXP-DH-RSA-DES-CBC-SHA",
    "EXP-DHE-DSS-DES-CBC-SHA", "EXP-DHE-RSA-DES-CBC-SHA", "EXP-EDH-DSS-DES-CBC-SHA",
    "EXP-EDH-RSA-DES-CBC-SHA", "EXP-KRB5-DES-CBC-MD5", "EXP-KRB5-DES-CBC-SHA",
    "EXP-KRB5-RC2-CBC-MD5", "EXP-KRB5-RC2-CBC-SHA", "EXP-KRB5-RC4-MD5", "EXP-KRB5-RC4-SHA",
    "EXP-RC2-CBC-MD5", "EXP-RC4-MD5", "EXP1024-DES-CBC-SHA", "EXP1024-DHE-DSS-DES-CBC-SHA",
    "EXP1024-DHE-DSS-RC4-SHA", "EXP1024-RC2-CBC-MD5", "EXP1024-RC4-MD5", "EXP1024-RC4-SHA",
    "GOST2001-GOST89-GOST89", "GOST2001-NULL-GOST94", "GOST2012-KUZNYECHIK-KUZNYECHIKOMAC",
    "GOST2012-MAGMA-MAGMAOMAC", "GOST2012-NULL-GOST12", "GOST94-GOST89-GOST89",
    "GOST94-NULL-GOST94", "IDEA-CBC-MD5", "IDEA-CBC-SHA", "KRB5-DES-CBC-MD5", "KRB5-DES-CBC-SHA",
    "KRB5-DES-CBC3-MD5", "KRB5-DES-CBC3-SHA", "KRB5-IDEA-CBC-MD5", "KRB5-IDEA-CBC-SHA",
    "KRB5-RC4-MD5", "KRB5-RC4-SHA", "NULL-MD5", "NULL-SHA256", "PSK-3DES-EDE-CBC-SHA",
    "PSK-AES128-CBC-SHA", "PSK-AES128-CBC-SHA256", "PSK-AES128-CCM", "PSK-AES128-CCM8",
    "PSK-AES128-GCM-SHA256", "PSK-AES256-CBC-SHA", "PSK-AES256-CBC-SHA384", "PSK-AES256-CCM",
    "PSK-AES256-CCM8", "PSK-AES256-GCM-SHA384", "PSK-ARIA128-GCM-SHA256", "PSK-ARIA256-GCM-SHA384",
    "PSK-CAMELLIA128-SHA256", "PSK-CAMELLIA256-SHA384", "PSK-CHACHA20-POLY1305", "PSK-NULL-SHA",
    "PSK-NULL-SHA256", "PSK-NULL-SHA384", "PSK-RC4-SHA", "RC2-CBC-MD5", "RC4-64-MD5", "RC4-MD5",
    "RC4-SHA", "RSA-PSK-3DES-EDE-CBC-SHA", "RSA-PSK-AES128-CBC-SHA", "RSA-PSK-AES128-CBC-SHA256",
    "RSA-PSK-AES128-GCM-SHA256", "RSA-PSK-AES256-CBC-SHA", "RSA-PSK-AES256-CBC-SHA384",
    "RSA-PSK-AES256-GCM-SHA384", "RSA-PSK-ARIA128-GCM-SHA256", "RSA-PSK-ARIA256-GCM-SHA384",
    "RSA-PSK-CAMELLIA128-SHA256", "RSA-PSK-CAMELLIA256-SHA384", "RSA-PSK-CHACHA20-POLY1305",
    "RSA-PSK-NULL-SHA", "RSA-PSK-NULL-SHA256", "RSA-PSK-NULL-SHA384", "RSA-PSK-RC4-SHA", "SEED-SHA",
    "SRP-3DES-EDE-CBC-SHA", "SRP-AES-128-CBC-SHA", "SRP-AES-256-CBC-SHA",
    "SRP-DSS-3DES-EDE-CBC-SHA", "SRP-DSS-AES-128-CBC-SHA", "SRP-DSS-AES-256-CBC-SHA",
    "SRP-RSA-3DES-EDE-CBC-SHA", "SRP-RSA-AES-128-CBC-SHA", "SRP-RSA-AES-256-CBC-SHA",
];
