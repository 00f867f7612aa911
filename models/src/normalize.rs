//! Text normaliser for Colombian intake text: compatibility folding, lower case, accents removed, letter runs
//! squeezed, and numbers, e-mails, phones, ID numbers, URLs, money and dates replaced by placeholder tokens.
//!
//! The output is a sequence of tokens separated by single spaces. Word tokens contain only letters; placeholder
//! tokens start with `#` (which never survives inside a word token), so the two can never collide. The same
//! function serves training and prediction, and the featuriser reads its output, so a model trained with one
//! [`NormalizerConfig`] must be used with the same one: the artifact records it.
//!
//! Unicode handling: each character is decomposed with its *compatibility* decomposition (NFKD) and combining
//! marks are dropped. That is NFKC's compatibility mapping (ﬁ → fi, ² → 2, full-width letters) followed by accent
//! folding in one pass. `ñ` can be kept distinct from `n` (`keep_enye`): "año" and "ano" are different words, but
//! intake typed on phones often writes "ano" for "año"; the trainer measures both.

use serde::{Deserialize, Serialize};
use unicode_normalization::char::decompose_compatible;

/// Placeholder for e-mail addresses.
pub const EMAIL: &str = "#email";
/// Placeholder for web addresses.
pub const URL: &str = "#url";
/// Placeholder for Colombian phone numbers (mobile `3xx…`, landline `60x…`, or 7 digits).
pub const PHONE: &str = "#telefono";
/// Placeholder for identity numbers (cédula, NIT, pasaporte: 6 to 11 digits, or ones written with dots).
pub const ID_NUMBER: &str = "#id";
/// Placeholder for amounts of money (`$` before the number, or thousands groups ending in `000`).
pub const MONEY: &str = "#dinero";
/// Placeholder for dates such as `12/03/2023` or `2023-03-12`.
pub const DATE: &str = "#fecha";
/// Placeholder for times such as `10:30`.
pub const TIME: &str = "#hora";
/// Placeholder for any other number.
pub const NUMBER: &str = "#num";

/// Choices that change the normaliser's output; recorded in every model artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizerConfig {
    /// Keep `ñ` distinct from `n`.
    pub keep_enye: bool,
    /// Squeeze runs of three or more equal letters to one ("graciassss" → "gracias"). Pairs are kept: Spanish
    /// has `ll`, `rr`, `cc`, `ee` ("leer").
    pub squeeze_repeats: bool,
    /// Replace numbers, e-mails, URLs… by placeholder tokens; when false, digit runs are kept as words.
    pub placeholders: bool,
}

impl Default for NormalizerConfig {
    fn default() -> Self {
        Self {
            keep_enye: true,
            squeeze_repeats: true,
            placeholders: true,
        }
    }
}

/// Reusable buffers so that normalising a comment allocates nothing once they have grown.
#[derive(Debug, Default, Clone)]
pub struct NormalizeScratch {
    folded: String,
}

/// Normalises text; see the module documentation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Normalizer {
    config: NormalizerConfig,
}

impl Normalizer {
    /// A normaliser with the given configuration.
    pub fn new(config: NormalizerConfig) -> Self {
        Self { config }
    }

    /// The configuration in use.
    pub fn config(&self) -> NormalizerConfig {
        self.config
    }

    /// Normalises `text` into a fresh string (convenience; the hot path uses [`Normalizer::normalize_into`]).
    pub fn normalize(&self, text: &str) -> String {
        let mut out = String::new();
        self.normalize_into(text, &mut out, &mut NormalizeScratch::default());
        out
    }

    /// Normalises `text` into `out` (cleared first), reusing `scratch`.
    pub fn normalize_into(&self, text: &str, out: &mut String, scratch: &mut NormalizeScratch) {
        out.clear();
        let folded = &mut scratch.folded;
        self.fold(text, folded);
        for chunk in folded.split(' ').filter(|c| !c.is_empty()) {
            self.emit_chunk(chunk, out);
        }
    }

    /// Compatibility-decomposes, lower-cases and strips accents; every kind of white space becomes one ASCII space.
    fn fold(&self, text: &str, folded: &mut String) {
        folded.clear();
        folded.reserve(text.len());
        for c in text.chars() {
            if c.is_ascii() {
                folded.push(if c.is_ascii_whitespace() {
                    ' '
                } else {
                    c.to_ascii_lowercase()
                });
                continue;
            }
            if c.is_whitespace() {
                folded.push(' ');
                continue;
            }
            let keep_enye = self.config.keep_enye;
            decompose_compatible(c, |d| {
                if is_combining_mark(d) {
                    // The tilde of ñ arrives as n + U+0303 after decomposition.
                    if d == '\u{303}' && keep_enye && folded.ends_with('n') {
                        folded.pop();
                        folded.push('ñ');
                    }
                } else if d.is_whitespace() {
                    folded.push(' ');
                } else {
                    for lower in d.to_lowercase() {
                        folded.push(lower);
                    }
                }
            });
        }
    }

    /// Turns one white-space separated chunk into tokens appended to `out`.
    fn emit_chunk(&self, chunk: &str, out: &mut String) {
        if self.config.placeholders {
            if looks_like_email(chunk) {
                push_token(out, EMAIL);
                return;
            }
            if looks_like_url(chunk) {
                push_token(out, URL);
                return;
            }
        }
        let bytes = chunk.as_bytes();
        let mut money_sign = false;
        let mut i = 0;
        while i < chunk.len() {
            let c = chunk[i..].chars().next().expect("i is on a char boundary");
            if c.is_alphabetic() {
                let start = i;
                // Most letters are ASCII: step over them a byte at a time, decoding only the others.
                while i < chunk.len() {
                    if bytes[i].is_ascii_alphabetic() {
                        i += 1;
                        continue;
                    }
                    let c = chunk[i..].chars().next().expect("i is on a char boundary");
                    if !c.is_alphabetic() {
                        break;
                    }
                    i += c.len_utf8();
                }
                self.push_word(&chunk[start..i], out);
                money_sign = false;
            } else if c.is_ascii_digit() {
                let start = i;
                i = end_of_number(bytes, i);
                let number = &chunk[start..i];
                if self.config.placeholders {
                    push_token(out, classify_number(number, money_sign));
                } else {
                    push_token(out, number);
                }
                money_sign = false;
            } else {
                money_sign = c == '$';
                i += c.len_utf8();
            }
        }
    }

    /// Appends a letter run as a word, squeezing runs of three or more equal letters.
    fn push_word(&self, word: &str, out: &mut String) {
        if !out.is_empty() {
            out.push(' ');
        }
        if !self.config.squeeze_repeats || !may_have_run_of_three(word) {
            out.push_str(word);
            return;
        }
        let mut chars = word.chars().peekable();
        while let Some(c) = chars.next() {
            let mut run = 1;
            while chars.peek() == Some(&c) {
                chars.next();
                run += 1;
            }
            let keep = if run >= 3 { 1 } else { run };
            for _ in 0..keep {
                out.push(c);
            }
        }
    }
}

/// False only when `word` certainly has no run of three equal letters: an ASCII word without three equal
/// bytes in a row. Other words take the careful path.
fn may_have_run_of_three(word: &str) -> bool {
    !word.is_ascii()
        || word
            .as_bytes()
            .windows(3)
            .any(|w| w[0] == w[1] && w[1] == w[2])
}

fn is_combining_mark(c: char) -> bool {
    matches!(c, '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}' | '\u{1dc0}'..='\u{1dff}' | '\u{20d0}'..='\u{20ff}' | '\u{fe20}'..='\u{fe2f}')
}

fn push_token(out: &mut String, token: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(token);
}

fn looks_like_email(chunk: &str) -> bool {
    match chunk.find('@') {
        Some(at) if at > 0 => chunk[at + 1..].contains('.'),
        _ => false,
    }
}

fn looks_like_url(chunk: &str) -> bool {
    chunk.starts_with("http://")
        || chunk.starts_with("https://")
        || chunk.starts_with("www.")
        || [".com", ".co/", ".gov.co", ".org", ".com.co"]
            .iter()
            .any(|tld| chunk.contains(tld) && chunk.len() > tld.len() + 2)
}

/// End of a number starting at `start`: digits, with `.`, `,`, `/`, `-` or `:` allowed between two digits.
fn end_of_number(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < bytes.len() {
        let separator_between_digits = matches!(bytes[i], b'.' | b',' | b'/' | b'-' | b':')
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
        if bytes[i].is_ascii_digit() || separator_between_digits {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// Which placeholder a number gets. The rules follow how Colombian intake writes numbers: mobiles start with 3
/// and have 10 digits, new landlines start with 60; cédulas have 6 to 10 digits and are often written with dots
/// ("1.036.123.456"), while money is grouped in thousands and almost always ends in `000` ("$150.000").
fn classify_number(number: &str, money_sign: bool) -> &'static str {
    if money_sign {
        return MONEY;
    }
    let digits = number.bytes().filter(u8::is_ascii_digit).count();
    let separators = number.len() - digits;
    if number.contains(':') {
        return TIME;
    }
    if number.contains('/') || (number.contains('-') && number.split('-').count() == 3) {
        let groups: Vec<&str> = number.split(['/', '-']).collect();
        let short = |g: &str| (1..=2).contains(&g.len());
        if let [a, b, c] = groups[..]
            && ((short(a) && short(b) && matches!(c.len(), 2 | 4))
                || (a.len() == 4 && short(b) && short(c)))
        {
            return DATE;
        }
    }
    if separators > 0 && number.contains(['.', ',']) {
        let grouped = number
            .split(['.', ','])
            .skip(1)
            .all(|group| group.len() == 3);
        if grouped && number.ends_with("000") {
            return MONEY;
        }
        if grouped && digits >= 6 {
            return ID_NUMBER;
        }
        return NUMBER;
    }
    if separators > 0 {
        // Phones are often typed with dashes: 300-123-4567.
        return match digits {
            10 if number.starts_with('3') || number.starts_with("60") => PHONE,
            7 => PHONE,
            6..=11 => ID_NUMBER,
            _ => NUMBER,
        };
    }
    match digits {
        10 if number.starts_with('3') || number.starts_with("60") => PHONE,
        7 => PHONE,
        12 if number.starts_with("57") => PHONE,
        6..=11 => ID_NUMBER,
        _ => NUMBER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        assert_eq!(
            Normalizer::default().normalize(input),
            expected,
            "input: {input:?}"
        );
    }

    #[test]
    fn folds_case_accents_and_spaces() {
        check("  Felicitación\tpara   la IPS ", "felicitacion para la ips");
        check(
            "PETICIÓN: ¿Cuándo llega el subsidio?",
            "peticion cuando llega el subsidio",
        );
        check("ﬁ² ＡＢＣ", "fi #num abc");
    }

    #[test]
    fn keeps_enye_unless_configured() {
        check("AÑO niño", "año niño");
        let n = Normalizer::new(NormalizerConfig {
            keep_enye: false,
            ..NormalizerConfig::default()
        });
        assert_eq!(n.normalize("Año niño"), "ano nino");
    }

    #[test]
    fn squeezes_runs_of_three_or_more() {
        check("graciassss holaaa", "gracias hola");
        check("llegue pronto, leer carro", "llegue pronto leer carro");
    }

    #[test]
    fn replaces_personal_numbers_and_addresses() {
        check("mi cc 1036123456", "mi cc #id");
        check("CC1234567 cel3001234567", "cc #telefono cel #telefono");
        check("cedula 1.036.123.456", "cedula #id");
        check(
            "llamar al 300-123-4567 o 6041234567",
            "llamar al #telefono o #telefono",
        );
        check("escribir a juan.perez@gmail.com", "escribir a #email");
        check(
            "ver https://comfama.com/subsidio y www.x.co",
            "ver #url y #url",
        );
        check(
            "me cobraron $150.000 y 1.200.000",
            "me cobraron #dinero y #dinero",
        );
        check("el 12/03/2023 a las 10:30", "el #fecha a las #hora");
        check(
            "desde 2023-3-7 o 7-3-23, cuota 12/03",
            "desde #fecha o #fecha cuota #num",
        );
        check("van 3 veces, en 2023", "van #num veces en #num");
    }

    #[test]
    fn drops_punctuation_and_emoji() {
        check("¡¡¡Pésimo!!! 😡😡 servicio...", "pesimo servicio");
        check("", "");
        check("  \n\t ", "");
    }

    #[test]
    fn placeholders_can_be_turned_off() {
        let n = Normalizer::new(NormalizerConfig {
            placeholders: false,
            ..NormalizerConfig::default()
        });
        assert_eq!(n.normalize("cc 123"), "cc 123");
    }

    proptest::proptest! {
        #[test]
        fn any_string_normalises_without_panic(text in "\\PC*") {
            let out = Normalizer::default().normalize(&text);
            proptest::prop_assert!(!out.starts_with(' ') && !out.ends_with(' ') && !out.contains("  "));
            proptest::prop_assert!(out.chars().count() <= text.chars().count() * 18 + 1);
        }

        #[test]
        fn normalising_is_idempotent_on_words(text in "[a-zA-ZáéíóúñÑ ]{0,60}") {
            let n = Normalizer::default();
            let once = n.normalize(&text);
            proptest::prop_assert_eq!(n.normalize(&once), once);
        }
    }
}
