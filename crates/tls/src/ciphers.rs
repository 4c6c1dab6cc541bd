//! Cipher strings for TLS v1.0–v1.2: what a string selects, in the order a server prefers them,
//! as `openssl ciphers -v` lists them (the CLI's VERIFY and the UI's preview), and the explicit
//! list the legacy engine is configured with, so that both engines offer what VERIFY showed.
//!
//! The evaluation is our own rendering of OpenSSL 3's (`ssl_create_cipher_list` in
//! ssl/ssl_ciph.c), over the suites both engines serve (`ciphers/table.rs`). AWS-LC's own
//! evaluation is not used: it orders suites differently and lacks many of OpenSSL's words, and
//! administrators bring strings written for gateways that run OpenSSL.
//!
//! A word for something neither engine has (`RC4`, `EXPORT`, `aNULL`, `DHE`, `CAMELLIA`, `PSK`,
//! …) selects nothing, as in OpenSSL, so such strings keep working; a word OpenSSL never had is
//! refused, so that a typo does not quietly change the selection. The TLS 1.3 suites are fixed
//! ([`postern_config::tls::TLS13_CIPHER_SUITES`]) and no string touches them.

mod table;

use postern_config::{CipherString, ProtocolRange, TlsVersion};

use table::{
    A_ECDSA, A_NULL, ABSENT_SUITE_NAMES, ABSENT_WORDS, ALIASES, Alias, DEFAULT_MASK, E_AES,
    E_AESGCM, E_CHACHA20, K_DHE, K_ECDHE, K_PSK, K_RSA, M_AEAD, M_MD5, Row, STRONG_MASK, SUITES,
    TLS1_2, TLS13_SUITE_NAMES,
};

/// One suite a cipher string selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suite {
    /// The OpenSSL name, as logs print it for TLS v1.2 and older: `ECDHE-RSA-AES256-GCM-SHA384`.
    pub name: String,
    /// The IANA name: `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`.
    pub standard_name: String,
    /// The oldest protocol version the suite can be used with (TLS v1.0 for the suites OpenSSL
    /// dates from SSL 3.0, which no service enables).
    pub min_version: TlsVersion,
    /// The `openssl ciphers -v` line, single-spaced: name, version, key exchange, auth,
    /// cipher, MAC.
    pub description: String,
}

impl Suite {
    /// Whether rustls implements this suite (it serves TLS v1.2 clients).
    pub fn in_rustls(&self) -> bool {
        crate::names::rustls_tls12_suite(&self.name).is_some()
    }
}

/// Why a cipher string cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CipherError {
    /// The string is not one OpenSSL would read as written.
    #[error("the cipher string '{string}' is not valid: {reason}")]
    Invalid {
        string: String,
        reason: InvalidReason,
    },
    /// The string selects no suite at all.
    #[error("the cipher string '{string}' selects no cipher")]
    SelectsNothing { string: String },
    /// The string selects no suite that the given version can use.
    #[error("the cipher string '{string}' selects no cipher usable with {version}")]
    NothingFor { string: String, version: TlsVersion },
}

/// What is wrong with an invalid cipher string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidReason {
    /// A word that is no suite name, alias or keyword OpenSSL has or had: a typo, usually.
    #[error("'{0}' is not a cipher suite, alias or keyword that OpenSSL knows")]
    UnknownWord(String),
    /// The IANA name of a suite; cipher strings use OpenSSL names.
    #[error("'{word}' is a standard (IANA) name; cipher strings use the OpenSSL name, {name}")]
    StandardName { word: String, name: &'static str },
    /// `DEFAULT` after the start of the string, where OpenSSL ignores it.
    #[error("DEFAULT can only begin a cipher string")]
    MisplacedDefault,
    /// One of OpenSSL's Suite B words, which also restrict curves and signatures.
    #[error("'{0}' asks for Suite B mode, which is not offered; name the suites instead")]
    SuiteB(String),
    /// An `@` command other than `@STRENGTH` and `@SECLEVEL=0` … `@SECLEVEL=5`.
    #[error("'@{0}' is not a command; the commands are @STRENGTH and @SECLEVEL=0 to @SECLEVEL=5")]
    UnknownCommand(String),
    /// An operator or a `+` with no word after it.
    #[error("'{0}' lacks a word after an operator or '+'")]
    MissingWord(String),
}

/// The suites `ciphers` selects for TLS v1.0–v1.2, in preference order.
pub fn evaluate(ciphers: &CipherString) -> Result<Vec<Suite>, CipherError> {
    let text = ciphers.as_str();
    let invalid = |reason| CipherError::Invalid {
        string: text.to_owned(),
        reason,
    };
    let mut order = Preference::openssl_default();
    // OpenSSL honours DEFAULT only at the very start, by running its default string first.
    let rest = match text.strip_prefix("DEFAULT") {
        Some(rest) if !rest.starts_with(is_word_char) => {
            for step in steps(DEFAULT_STRING).map_err(invalid)? {
                order.run(step);
            }
            rest
        }
        _ => text,
    };
    for step in steps(rest).map_err(invalid)? {
        order.run(step);
    }
    let suites: Vec<Suite> = order.selected().map(suite).collect();
    if suites.is_empty() {
        return Err(CipherError::SelectsNothing {
            string: text.to_owned(),
        });
    }
    Ok(suites)
}

/// The suites to use for a service whose protocols are `range`: refuses a string that selects
/// nothing, or that leaves an enabled version below TLS v1.3 without a cipher.
pub fn for_range(ciphers: &CipherString, range: ProtocolRange) -> Result<Vec<Suite>, CipherError> {
    let suites = evaluate(ciphers)?;
    let nothing_for = |version| CipherError::NothingFor {
        string: ciphers.to_string(),
        version,
    };
    if range.contains(TlsVersion::Tls1_2) && !suites.iter().any(Suite::in_rustls) {
        return Err(nothing_for(TlsVersion::Tls1_2));
    }
    for legacy in [TlsVersion::Tls1_0, TlsVersion::Tls1_1] {
        if range.contains(legacy) && !suites.iter().any(|s| s.min_version <= legacy) {
            return Err(nothing_for(legacy));
        }
    }
    Ok(suites)
}

/// The suites as an explicit cipher list, names joined by `:` in order
/// (`ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:…`): what the legacy engine is
/// configured with, so that AWS-LC offers exactly the evaluated suites in the evaluated order.
pub fn explicit_list(suites: &[Suite]) -> String {
    suites
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(":")
}

/// OpenSSL's default string, which a leading `DEFAULT` stands for.
const DEFAULT_STRING: &str = "ALL:!COMPLEMENTOFDEFAULT:!eNULL";

fn suite(row: &Row) -> Suite {
    Suite {
        name: row.name.to_owned(),
        standard_name: row.standard_name.to_owned(),
        min_version: match row.protocol {
            TLS1_2 => TlsVersion::Tls1_2,
            _ => TlsVersion::Tls1_0,
        },
        description: row.description(),
    }
}

/// What a rule does to the suites its pattern matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// A plain word: append those not yet selected to the end.
    Add,
    /// `!`: remove for good; no later rule brings them back.
    Kill,
    /// `-`: deselect, moving them to the front, where a later `Add` picks them up first.
    Delete,
    /// `+`: move the selected ones to the end.
    MoveToEnd,
    /// Move the selected ones to the front (only OpenSSL's default ordering does this).
    Bump,
}

/// One step of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Rule(Action, Pattern),
    /// `@STRENGTH`: order the selected suites by strength, keeping their order otherwise.
    SortByStrength,
}

/// Which suites a rule applies to: OpenSSL's selection criteria, each mask 0 for "any".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Pattern {
    /// One suite, when the element ends with a suite name.
    id: Option<u16>,
    kx: u32,
    au: u32,
    enc: u32,
    mac: u32,
    /// The exact oldest protocol version (0: any).
    protocol: u16,
    /// Strength classes (any of them) and the not-default flag.
    strength: u32,
}

impl Pattern {
    fn matches(&self, row: &Row) -> bool {
        let any_of = |wanted: u32, has: u32| wanted == 0 || wanted & has != 0;
        self.id.is_none_or(|id| id == row.id)
            && any_of(self.kx, row.kx)
            && any_of(self.au, row.au)
            && any_of(self.enc, row.enc)
            && any_of(self.mac, row.mac)
            && (self.protocol == 0 || self.protocol == row.protocol)
            && any_of(self.strength & STRONG_MASK, row.strength)
            && any_of(self.strength & DEFAULT_MASK, row.strength)
    }

    /// The pattern of words joined by `+`, combined as OpenSSL does; `None` when two of them
    /// exclude each other, and OpenSSL then ignores the element.
    fn of_words(words: &[Word]) -> Option<Self> {
        let mut pattern = Self::default();
        for word in words {
            let (kx, au, enc, mac, strength) = word.criteria();
            pattern.kx = narrow(pattern.kx, kx)?;
            pattern.au = narrow(pattern.au, au)?;
            pattern.enc = narrow(pattern.enc, enc)?;
            pattern.mac = narrow(pattern.mac, mac)?;
            let classes = strength & STRONG_MASK;
            if classes != 0 {
                if pattern.strength & STRONG_MASK == 0 {
                    // OpenSSL assigns here, so a not-default flag from an earlier word is lost.
                    pattern.strength = classes;
                } else {
                    pattern.strength &= classes | !STRONG_MASK;
                    if pattern.strength & STRONG_MASK == 0 {
                        return None;
                    }
                }
            }
            pattern.strength |= strength & DEFAULT_MASK;
            match word {
                // A suite name selects that suite, unless a later word follows it; its version
                // does not become part of the pattern.
                Word::Suite(row) => pattern.id = Some(row.id),
                Word::Alias(alias) => {
                    pattern.id = None;
                    if alias.protocol != 0 {
                        if pattern.protocol != 0 && pattern.protocol != alias.protocol {
                            return None;
                        }
                        pattern.protocol = alias.protocol;
                    }
                }
            }
        }
        Some(pattern)
    }
}

/// A mask narrowed by a word's mask, as OpenSSL combines `A+B`; `None` when nothing is left.
fn narrow(mask: u32, word: u32) -> Option<u32> {
    match (mask, word) {
        (mask, 0) => Some(mask),
        (0, word) => Some(word),
        (mask, word) => Some(mask & word).filter(|m| *m != 0),
    }
}

/// A word of a cipher string that names suites here.
#[derive(Debug, Clone, Copy)]
enum Word {
    Suite(&'static Row),
    Alias(&'static Alias),
}

impl Word {
    /// The word's key exchange, authentication, encryption, MAC and strength criteria.
    fn criteria(self) -> (u32, u32, u32, u32, u32) {
        match self {
            Self::Suite(r) => (r.kx, r.au, r.enc, r.mac, r.strength),
            Self::Alias(a) => (a.kx, a.au, a.enc, a.mac, a.strength),
        }
    }

    /// The word's meaning: `None` for a word that names nothing here.
    fn look_up(word: &str) -> Result<Option<Self>, InvalidReason> {
        if let Some(row) = SUITES.iter().find(|r| r.name == word) {
            return Ok(Some(Self::Suite(row)));
        }
        if let Some(alias) = ALIASES.iter().find(|a| a.name == word) {
            return Ok(Some(Self::Alias(alias)));
        }
        if [ABSENT_WORDS, ABSENT_SUITE_NAMES, TLS13_SUITE_NAMES]
            .iter()
            .any(|words| words.contains(&word))
        {
            return Ok(None);
        }
        if let Some(row) = SUITES.iter().find(|r| r.standard_name == word) {
            return Err(InvalidReason::StandardName {
                word: word.to_owned(),
                name: row.name,
            });
        }
        Err(match word {
            "DEFAULT" => InvalidReason::MisplacedDefault,
            "SUITEB128" | "SUITEB128ONLY" | "SUITEB128C2" | "SUITEB192" => {
                InvalidReason::SuiteB(word.to_owned())
            }
            _ => InvalidReason::UnknownWord(word.to_owned()),
        })
    }
}

/// OpenSSL's separators between elements.
fn is_separator(c: char) -> bool {
    matches!(c, ':' | ',' | ' ' | ';')
}

/// The characters of a word: OpenSSL's, and `_` so that an IANA name reads as one word.
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '=' | '_')
}

/// The steps of a cipher string, read as OpenSSL reads it: elements between separators, each
/// an optional operator and words joined by `+`. An operator right after a word (`HIGH!aNULL`)
/// starts a new element, as in OpenSSL; and as in OpenSSL, after an element that selects
/// nothing or a command, the rest up to the next separator is ignored (but still checked).
fn steps(text: &str) -> Result<Vec<Step>, InvalidReason> {
    let bytes = text.as_bytes();
    let mut steps = Vec::new();
    let mut ignoring = false;
    let mut i = 0;
    while let Some(c) = bytes.get(i).copied().map(char::from) {
        if is_separator(c) {
            ignoring = false;
            i += 1;
            continue;
        }
        let start = i;
        let action = match c {
            '-' => Some(Action::Delete),
            '+' => Some(Action::MoveToEnd),
            '!' => Some(Action::Kill),
            '@' => None,
            _ => Some(Action::Add),
        };
        if !matches!(action, Some(Action::Add)) {
            i += 1;
        }
        let mut words = Vec::new();
        loop {
            let from = i;
            while bytes.get(i).is_some_and(|&c| is_word_char(char::from(c))) {
                i += 1;
            }
            if from == i {
                let end = text[start..]
                    .find(is_separator)
                    .map_or(text.len(), |n| start + n);
                return Err(InvalidReason::MissingWord(text[start..end].to_owned()));
            }
            words.push(&text[from..i]);
            // A command takes one word; OpenSSL reads what follows as a new element.
            if action.is_none() || bytes.get(i) != Some(&b'+') {
                break;
            }
            i += 1;
        }
        let Some(action) = action else {
            let step = command(words[0])?;
            if !ignoring {
                steps.extend(step);
            }
            ignoring = true;
            continue;
        };
        let meanings = words
            .iter()
            .map(|w| Word::look_up(w))
            .collect::<Result<Vec<_>, _>>()?;
        let pattern = meanings
            .into_iter()
            .collect::<Option<Vec<Word>>>()
            .and_then(|words| Pattern::of_words(&words));
        match pattern {
            Some(pattern) if !ignoring => steps.push(Step::Rule(action, pattern)),
            Some(_) => {}
            None => ignoring = true,
        }
    }
    Ok(steps)
}

/// An `@` command: `@STRENGTH`, or `@SECLEVEL=n`, which restricts what OpenSSL negotiates but
/// not the list, and which neither engine here has.
fn command(word: &str) -> Result<Option<Step>, InvalidReason> {
    if word == "STRENGTH" {
        return Ok(Some(Step::SortByStrength));
    }
    match word.strip_prefix("SECLEVEL=") {
        Some("0" | "1" | "2" | "3" | "4" | "5") => Ok(None),
        _ => Err(InvalidReason::UnknownCommand(word.to_owned())),
    }
}

/// OpenSSL's working list: every suite, in preference order, each selected or not. Killed
/// suites leave the list.
#[derive(Debug, Clone)]
struct Preference {
    entries: Vec<(&'static Row, bool)>,
}

impl Preference {
    /// Every suite, none selected, in OpenSSL's default preference order.
    fn openssl_default() -> Self {
        use Action::{Add, Bump, Delete, MoveToEnd};
        // OpenSSL collects its table from the last entry to the first.
        let mut list = Self {
            entries: SUITES.iter().rev().map(|row| (row, false)).collect(),
        };
        let rule = |kx, au, enc, mac| Pattern {
            kx,
            au,
            enc,
            mac,
            ..Pattern::default()
        };
        // Ephemeral ECDH first, ECDSA before RSA.
        list.apply(Add, rule(K_ECDHE, A_ECDSA, 0, 0));
        list.apply(Add, rule(K_ECDHE, 0, 0, 0));
        list.apply(Delete, rule(K_ECDHE, 0, 0, 0));
        // GCM, then ChaCha20, then the other AES modes, then the rest.
        list.apply(Add, rule(0, 0, E_AESGCM, 0));
        list.apply(Add, rule(0, 0, E_CHACHA20, 0));
        list.apply(Add, rule(0, 0, E_AES ^ E_AESGCM, 0));
        list.apply(Add, Pattern::default());
        // MD5, anonymous suites, and key exchanges without forward secrecy go last.
        list.apply(MoveToEnd, rule(0, 0, 0, M_MD5));
        list.apply(MoveToEnd, rule(0, A_NULL, 0, 0));
        list.apply(MoveToEnd, rule(K_RSA, 0, 0, 0));
        list.apply(MoveToEnd, rule(K_PSK, 0, 0, 0));
        list.sort_by_strength();
        // Then, regardless of strength: (EC)DHE with AEAD, (EC)DHE, other AEAD, TLS v1.2 only,
        // the rest. Bumping to the front goes in reverse order of preference.
        list.apply(
            Bump,
            Pattern {
                protocol: TLS1_2,
                ..Pattern::default()
            },
        );
        list.apply(Bump, rule(0, 0, 0, M_AEAD));
        list.apply(Bump, rule(K_DHE | K_ECDHE, 0, 0, 0));
        list.apply(Bump, rule(K_DHE | K_ECDHE, 0, 0, M_AEAD));
        // The order stays; the selection is the string's.
        list.apply(Delete, Pattern::default());
        list
    }

    fn run(&mut self, step: Step) {
        match step {
            Step::Rule(action, pattern) => self.apply(action, pattern),
            Step::SortByStrength => self.sort_by_strength(),
        }
    }

    fn apply(&mut self, action: Action, pattern: Pattern) {
        let hit = |&(row, selected): &(&Row, bool)| {
            pattern.matches(row)
                && match action {
                    Action::Add => !selected,
                    Action::Kill => true,
                    Action::Delete | Action::MoveToEnd | Action::Bump => selected,
                }
        };
        let (mut hits, rest): (Vec<_>, Vec<_>) = self.entries.iter().copied().partition(hit);
        self.entries = match action {
            Action::Add | Action::MoveToEnd => {
                hits.iter_mut().for_each(|e| e.1 = true);
                [rest, hits].concat()
            }
            Action::Delete => {
                hits.iter_mut().for_each(|e| e.1 = false);
                [hits, rest].concat()
            }
            Action::Bump => [hits, rest].concat(),
            Action::Kill => rest,
        };
    }

    /// Moves the selected suites to the end, strongest first, keeping their order otherwise:
    /// what OpenSSL gets by moving each strength's suites to the end, strongest first.
    fn sort_by_strength(&mut self) {
        let (unselected, mut selected): (Vec<_>, Vec<_>) =
            self.entries.iter().copied().partition(|e| !e.1);
        selected.sort_by_key(|(row, _)| std::cmp::Reverse(row.bits));
        self.entries = [unselected, selected].concat();
    }

    fn selected(&self) -> impl Iterator<Item = &'static Row> + '_ {
        self.entries.iter().filter(|e| e.1).map(|e| e.0)
    }
}

#[cfg(test)]
mod tests;
