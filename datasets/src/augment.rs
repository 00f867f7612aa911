//! Noise augmenter for benchmarks and robustness checks: makes clean corpus comments look like what citizens type
//! on phones (accents dropped, all capitals, keyboard-adjacent typos, repeated letters, SMS abbreviations).
//!
//! Every kind of noise has its own probability; the same text, configuration and random generator state always
//! give the same output. The augmenter works on `char`s, never on byte offsets, so any UTF-8 input is safe, and
//! it never removes a word: a non-empty input gives a non-empty output.
//!
//! | field           | applies to | light | medium | heavy | what it does                                      |
//! |-----------------|------------|-------|--------|-------|---------------------------------------------------|
//! | `drop_accents`  | text       | 0.30  | 0.50   | 0.80  | `petición` → `peticion` (the `ñ` is kept)         |
//! | `upper_case`    | text       | 0.03  | 0.08   | 0.20  | the whole text in capitals                        |
//! | `typo`          | word       | 0.02  | 0.05   | 0.12  | one letter replaced by a neighbour key            |
//! | `repeat_letter` | word       | 0.01  | 0.03   | 0.06  | last letter repeated: `gracias` → `graciassss`    |
//! | `sms`           | word       | 0.15  | 0.35   | 0.70  | `que` → `q`, `por favor` → `xfa`, `también` → `tb` |

use std::fmt;
use std::str::FromStr;

use rand::Rng;

/// Probabilities of each kind of noise, each in `0.0..=1.0` (values outside are clamped, NaN counts as 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augmenter {
    /// Per text: remove the acute accents and the diaeresis (`á é í ó ú ü`), as people typing without them do.
    pub drop_accents: f64,
    /// Per text: write the whole text in capitals.
    pub upper_case: f64,
    /// Per word: replace one letter by a neighbouring key of the Latin American Spanish QWERTY layout.
    pub typo: f64,
    /// Per word: repeat the word's last letter two to four more times (`graciassss`, `ayudaaa`).
    pub repeat_letter: f64,
    /// Per word (or per `por favor`): use the usual SMS abbreviation when the word has one.
    pub sms: f64,
}

/// Preset noise levels, as a single knob for the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoiseLevel {
    /// No noise at all: [`Augmenter::augment`] returns its input unchanged.
    None,
    /// A little noise, like a careful writer on a phone.
    Light,
    /// The default: roughly what web-form and WhatsApp comments look like.
    Medium,
    /// A lot of noise, for robustness checks.
    Heavy,
}

impl NoiseLevel {
    /// Stable lower-case name (`none`, `light`, `medium`, `heavy`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Light => "light",
            Self::Medium => "medium",
            Self::Heavy => "heavy",
        }
    }
}

impl fmt::Display for NoiseLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NoiseLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "light" => Ok(Self::Light),
            "medium" => Ok(Self::Medium),
            "heavy" => Ok(Self::Heavy),
            other => Err(format!(
                "unknown noise level `{other}` (use none, light, medium or heavy)"
            )),
        }
    }
}

impl Default for Augmenter {
    fn default() -> Self {
        Self::at_level(NoiseLevel::Medium)
    }
}

impl Augmenter {
    /// An augmenter that changes nothing.
    pub fn none() -> Self {
        Self::at_level(NoiseLevel::None)
    }

    /// The preset probabilities of a level (see the table in the module documentation).
    pub fn at_level(level: NoiseLevel) -> Self {
        let [drop_accents, upper_case, typo, repeat_letter, sms] = match level {
            NoiseLevel::None => [0.0; 5],
            NoiseLevel::Light => [0.30, 0.03, 0.02, 0.01, 0.15],
            NoiseLevel::Medium => [0.50, 0.08, 0.05, 0.03, 0.35],
            NoiseLevel::Heavy => [0.80, 0.20, 0.12, 0.06, 0.70],
        };
        Self {
            drop_accents,
            upper_case,
            typo,
            repeat_letter,
            sms,
        }
    }

    /// Whether every probability is zero (or NaN), so that [`Augmenter::augment`] returns its input.
    pub fn is_noiseless(&self) -> bool {
        [
            self.drop_accents,
            self.upper_case,
            self.typo,
            self.repeat_letter,
            self.sms,
        ]
        .iter()
        .all(|p| p.is_nan() || *p <= 0.0)
    }

    /// Returns `text` with noise applied. Deterministic given the generator's state; UTF-8 safe for any input;
    /// non-empty whenever `text` is non-empty.
    pub fn augment<R: Rng + ?Sized>(&self, text: &str, rng: &mut R) -> String {
        if self.is_noiseless() {
            return text.to_string();
        }
        // Text-level decisions are drawn first so that they do not depend on how many words the text has.
        let drop_accents = chance(rng, self.drop_accents);
        let upper_case = chance(rng, self.upper_case);
        let tokens = tokenize(text);
        let mut out = String::with_capacity(text.len() + 8);
        let mut i = 0;
        while i < tokens.len() {
            let token = tokens[i];
            if !token.is_word {
                out.push_str(token.text);
                i += 1;
                continue;
            }
            // `por favor` is the one abbreviation spanning two words; the separator must be plain spaces.
            if let Some(rest) = tokens.get(i + 1..i + 3)
                && token.text.eq_ignore_ascii_case("por")
                && rest[0].text.chars().all(|c| c == ' ')
                && rest[1].text.eq_ignore_ascii_case("favor")
                && chance(rng, self.sms)
            {
                out.push_str(&match_case("xfa", token.text));
                i += 3;
                continue;
            }
            let abbreviated = match (self.sms > 0.0)
                .then(|| sms_abbreviation(token.text))
                .flatten()
            {
                Some(short) if chance(rng, self.sms) => Some(match_case(short, token.text)),
                _ => None,
            };
            let word = abbreviated.as_deref().unwrap_or(token.text);
            let typo = chance(rng, self.typo);
            let repeat = chance(rng, self.repeat_letter);
            if typo || repeat {
                let mut chars: Vec<char> = word.chars().collect();
                if typo {
                    add_typo(&mut chars, rng);
                }
                if repeat && let Some(&last) = chars.last() {
                    let extra = rng.random_range(2..=4);
                    chars.extend(std::iter::repeat_n(last, extra));
                }
                out.extend(chars);
            } else {
                // Most words are untouched: copying the slice avoids decoding them into chars.
                out.push_str(word);
            }
            i += 1;
        }
        if drop_accents {
            out = out.chars().map(without_accent).collect();
        }
        if upper_case {
            out = out.to_uppercase();
        }
        out
    }
}

/// A Bernoulli draw that accepts any `f64`: `random_bool` panics outside `0..=1`, and configurations are public.
fn chance<R: Rng + ?Sized>(rng: &mut R, p: f64) -> bool {
    if p.is_nan() || p <= 0.0 {
        false
    } else if p >= 1.0 {
        true
    } else {
        rng.random_bool(p)
    }
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    text: &'a str,
    is_word: bool,
}

/// Splits a text into maximal runs of letters (words) and of everything else (kept verbatim).
fn tokenize(text: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut start = 0;
    let mut current: Option<bool> = None;
    for (at, c) in text.char_indices() {
        let is_word = c.is_alphabetic();
        if current.is_some_and(|w| w != is_word) {
            tokens.push(Token {
                text: &text[start..at],
                is_word: !is_word,
            });
            start = at;
        }
        current = Some(is_word);
    }
    if let Some(is_word) = current {
        tokens.push(Token {
            text: &text[start..],
            is_word,
        });
    }
    tokens
}

/// SMS abbreviations common in Colombian chats and web forms, keyed by the lower-case word.
fn sms_abbreviation(word: &str) -> Option<&'static str> {
    const TABLE: [(&str, &str); 9] = [
        ("que", "q"),
        ("qué", "q"),
        ("porque", "pq"),
        ("porqué", "pq"),
        ("también", "tb"),
        ("tambien", "tb"),
        ("gracias", "grax"),
        ("para", "pa"),
        ("saludos", "slds"),
    ];
    // Every key starts with one of these ASCII letters: checking the first byte rejects most words before any
    // case folding, which matters when a million comments are generated.
    let first = word.as_bytes().first()?.to_ascii_lowercase();
    if !matches!(first, b'g' | b'p' | b'q' | b's' | b't') {
        return None;
    }
    // Upper and lower case of the letters in the keys have the same UTF-8 length, so lengths must match.
    TABLE
        .iter()
        .find(|(long, _)| {
            long.len() == word.len() && long.chars().eq(word.chars().flat_map(char::to_lowercase))
        })
        .map(|(_, short)| *short)
}

/// Writes `short` in the case pattern of `original`: all capitals, capitalised, or lower case.
fn match_case(short: &str, original: &str) -> String {
    let letters = original.chars().filter(|c| c.is_alphabetic());
    let all_upper = letters.clone().all(char::is_uppercase);
    if all_upper && original.chars().count() > 1 {
        return short.to_uppercase();
    }
    let mut chars = short.chars();
    match (original.chars().next(), chars.next()) {
        (Some(o), Some(first)) if o.is_uppercase() => first.to_uppercase().chain(chars).collect(),
        _ => short.to_string(),
    }
}

/// The three letter rows of the Latin American Spanish QWERTY keyboard with each row's horizontal offset in key
/// widths (the ISO layout has a `<` key left of `z`, which is why the bottom row starts further right).
const KEY_ROWS: [(&str, f32); 3] = [("qwertyuiop", 0.0), ("asdfghjklñ", 0.25), ("zxcvbnm", 0.75)];

/// Row and column of a letter's key; accented vowels use their base key.
fn key_position(c: char) -> Option<(usize, usize)> {
    let key = without_accent(c.to_lowercase().next().unwrap_or(c));
    KEY_ROWS
        .iter()
        .enumerate()
        .find_map(|(r, (keys, _))| keys.chars().position(|k| k == key).map(|col| (r, col)))
}

/// Letters whose keys touch `c`'s key (same row next door, or the row above or below overlapping it).
/// Accented vowels use their base key; a letter not on the keyboard has no neighbours.
fn keyboard_neighbours(c: char) -> Vec<char> {
    let Some((row, col)) = key_position(c) else {
        return Vec::new();
    };
    let x = col as f32 + KEY_ROWS[row].1;
    let mut out = Vec::with_capacity(6);
    for (r, (keys, offset)) in KEY_ROWS.iter().enumerate() {
        if r.abs_diff(row) > 1 {
            continue;
        }
        for (i, k) in keys.chars().enumerate() {
            let dx = (i as f32 + offset - x).abs();
            let touches = if r == row { dx == 1.0 } else { dx < 1.0 };
            if touches {
                out.push(k);
            }
        }
    }
    out
}

/// Replaces one letter of the word that has keyboard neighbours by one of them, keeping its case.
fn add_typo<R: Rng + ?Sized>(word: &mut [char], rng: &mut R) {
    let candidates: Vec<usize> = (0..word.len())
        .filter(|&i| key_position(word[i]).is_some())
        .collect();
    if candidates.is_empty() {
        return;
    }
    let at = candidates[rng.random_range(0..candidates.len())];
    let neighbours = keyboard_neighbours(word[at]);
    let replacement = neighbours[rng.random_range(0..neighbours.len())];
    word[at] = if word[at].is_uppercase() {
        replacement.to_uppercase().next().unwrap_or(replacement)
    } else {
        replacement
    };
}

/// Removes the acute accent and diaeresis of a vowel; `ñ` and every other character are unchanged.
fn without_accent(c: char) -> char {
    match c {
        'ñ' | 'Ñ' => c,
        'Á' => 'A',
        'É' => 'E',
        'Í' => 'I',
        'Ó' => 'O',
        'Ú' | 'Ü' => 'U',
        _ => crate::fold_accent(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const SAMPLE: &str = "Buenas tardes, quisiera saber qué documentos necesito para la afiliación porque también \
        quiero inscribir a mi hijo. Por favor respondan, gracias.";

    fn only(configure: impl FnOnce(&mut Augmenter)) -> Augmenter {
        let mut a = Augmenter::none();
        configure(&mut a);
        a
    }

    fn run(a: &Augmenter, text: &str, seed: u64) -> String {
        a.augment(text, &mut StdRng::seed_from_u64(seed))
    }

    #[test]
    fn no_noise_returns_the_input() {
        for text in [SAMPLE, "", "   ", "¿Qué pasó?", "ñandú 123 😀"] {
            assert_eq!(run(&Augmenter::none(), text, 1), text);
        }
    }

    #[test]
    fn dropping_accents_keeps_enye() {
        let a = only(|a| a.drop_accents = 1.0);
        assert_eq!(
            run(&a, "Petición ÚNICA del niño: pingüino, sí.", 3),
            "Peticion UNICA del niño: pinguino, si."
        );
    }

    #[test]
    fn upper_case_covers_the_whole_text() {
        let a = only(|a| a.upper_case = 1.0);
        assert_eq!(
            run(&a, "qué pasó con mi subsidio", 3),
            "QUÉ PASÓ CON MI SUBSIDIO"
        );
    }

    #[test]
    fn typos_use_neighbouring_keys_only() {
        let a = only(|a| a.typo = 1.0);
        let text = "subsidio familiar";
        for seed in 0..50 {
            let out = run(&a, text, seed);
            let (before, after): (Vec<char>, Vec<char>) =
                (text.chars().collect(), out.chars().collect());
            assert_eq!(before.len(), after.len(), "{out}");
            let changed: Vec<(char, char)> = before
                .iter()
                .zip(&after)
                .filter(|(b, a)| b != a)
                .map(|(b, a)| (*b, *a))
                .collect();
            // One typo per word, and this text has two words.
            assert_eq!(changed.len(), 2, "{out}");
            for (b, a) in changed {
                assert!(keyboard_neighbours(b).contains(&a), "{b} -> {a} in {out}");
            }
        }
    }

    #[test]
    fn keyboard_neighbours_follow_the_latam_layout() {
        let check = |c: char, expected: &str| {
            let mut got = keyboard_neighbours(c);
            got.sort_unstable();
            let mut want: Vec<char> = expected.chars().collect();
            want.sort_unstable();
            assert_eq!(got, want, "neighbours of {c}");
        };
        check('q', "wa");
        check('a', "qwsz");
        check('s', "weadzx");
        check('g', "tyfhvb");
        check('l', "opkñ");
        check('ñ', "pl");
        check('m', "njk");
        check('é', "wrsd");
        check('E', "wrsd");
        check('7', "");
        check('ß', "");
        // Adjacency is symmetric on every key.
        for (keys, _) in KEY_ROWS {
            for k in keys.chars() {
                for n in keyboard_neighbours(k) {
                    assert!(keyboard_neighbours(n).contains(&k), "{k} <-> {n}");
                }
            }
        }
    }

    #[test]
    fn typos_keep_the_case_of_the_letter() {
        let a = only(|a| a.typo = 1.0);
        for seed in 0..20 {
            let out = run(&a, "QUEJA", seed);
            assert!(out.chars().all(|c| c.is_uppercase()), "{out}");
            assert_ne!(out, "QUEJA");
        }
    }

    #[test]
    fn repeated_letters_extend_the_last_letter() {
        let a = only(|a| a.repeat_letter = 1.0);
        for seed in 0..20 {
            let out = run(&a, "gracias", seed);
            let tail = out.strip_prefix("gracia").expect("prefix kept");
            assert!((3..=5).contains(&tail.len()), "{out}");
            assert!(tail.chars().all(|c| c == 's'), "{out}");
        }
        // The repeated letter may be multi-byte.
        let out = run(&a, "Ayudenmé", 7);
        assert!(out.starts_with("Ayudenméé"), "{out}");
    }

    #[test]
    fn sms_abbreviations_replace_known_words_and_keep_case() {
        let a = only(|a| a.sms = 1.0);
        let check = |text: &str, expected: &str| assert_eq!(run(&a, text, 5), expected, "{text}");
        check("que", "q");
        check("Qué pasa", "Q pasa");
        check("por favor", "xfa");
        check("Por favor, ayuda", "Xfa, ayuda");
        check("POR FAVOR", "XFA");
        check("porque también", "pq tb");
        check("por\nfavor", "por\nfavor");
        check("quema paraguas", "quema paraguas");
        check(
            SAMPLE,
            "Buenas tardes, quisiera saber q documentos necesito pa la afiliación pq tb \
            quiero inscribir a mi hijo. Xfa respondan, grax.",
        );
    }

    #[test]
    fn same_seed_same_output_and_seeds_differ() {
        let a = Augmenter::at_level(NoiseLevel::Heavy);
        let outs: Vec<String> = (0..20).map(|s| run(&a, SAMPLE, s)).collect();
        for (s, out) in outs.iter().enumerate() {
            assert_eq!(&run(&a, SAMPLE, s as u64), out);
        }
        let distinct: std::collections::HashSet<&String> = outs.iter().collect();
        assert!(distinct.len() >= 15, "{} distinct of 20", distinct.len());
    }

    #[test]
    fn out_of_range_probabilities_are_clamped() {
        let a = Augmenter {
            drop_accents: f64::NAN,
            upper_case: 7.0,
            typo: -1.0,
            repeat_letter: f64::NEG_INFINITY,
            sms: f64::INFINITY,
        };
        assert_eq!(run(&a, "qué día", 1), "Q DÍA");
    }

    #[test]
    fn levels_parse_and_grow() {
        for level in [
            NoiseLevel::None,
            NoiseLevel::Light,
            NoiseLevel::Medium,
            NoiseLevel::Heavy,
        ] {
            assert_eq!(level.as_str().parse::<NoiseLevel>(), Ok(level));
        }
        assert!("loud".parse::<NoiseLevel>().is_err());
        let (l, m, h) = (
            Augmenter::at_level(NoiseLevel::Light),
            Augmenter::at_level(NoiseLevel::Medium),
            Augmenter::at_level(NoiseLevel::Heavy),
        );
        assert!(l.typo < m.typo && m.typo < h.typo);
        assert!(l.sms < m.sms && m.sms < h.sms);
    }

    proptest! {
        #[test]
        fn any_text_is_safe(text in any::<String>(), seed in any::<u64>(), level in 0usize..4) {
            let level = [NoiseLevel::None, NoiseLevel::Light, NoiseLevel::Medium, NoiseLevel::Heavy][level];
            let out = run(&Augmenter::at_level(level), &text, seed);
            prop_assert_eq!(out.is_empty(), text.is_empty());
            if text.chars().any(char::is_alphabetic) {
                prop_assert!(out.chars().any(char::is_alphabetic));
            }
            // Bounded growth: at most four repeated letters per word, plus upper-casing expansion (ß → SS).
            prop_assert!(out.chars().count() <= 3 * (text.chars().count() * 5 + 1));
        }

        #[test]
        fn full_noise_on_any_text_is_safe(text in "\\PC{0,60}", seed in any::<u64>()) {
            let a = Augmenter { drop_accents: 1.0, upper_case: 1.0, typo: 1.0, repeat_letter: 1.0, sms: 1.0 };
            let out = run(&a, &text, seed);
            prop_assert_eq!(out.is_empty(), text.is_empty());
            prop_assert_eq!(run(&a, &text, seed), out);
        }
    }
}
