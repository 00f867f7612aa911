//! Accent- and case-folding into words that keep their byte range in the original text.
//!
//! Intake text arrives ALL CAPS, without accents or with them, so every matcher in routing compares folded words:
//! lower case, diacritics removed (`Á` → `a`, `Ñ` → `n`, `Ü` → `u`), everything that is not a letter or digit
//! treated as a word boundary. Each word remembers where it came from so that reasons and masks can point back at
//! the original bytes.

use unicode_normalization::char::{decompose_canonical, is_combining_mark};

/// One word of the original text, folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Lower-case letters and digits without diacritics.
    pub folded: String,
    /// Byte offset of the word's first character in the original text.
    pub start: usize,
    /// Byte offset just past the word's last character.
    pub end: usize,
}

/// Folds one character: pushes its lower-case base letters or digits and returns true when the character belongs
/// to a word (a letter, a digit or a combining mark), false for a word boundary.
///
/// Passes the folded characters to `push` so that callers need no allocation per character.
pub(crate) fn fold_char(c: char, mut push: impl FnMut(char)) -> bool {
    if c.is_ascii() {
        if c.is_ascii_alphanumeric() {
            push(c.to_ascii_lowercase());
            return true;
        }
        return false;
    }
    let mut any = false;
    for lower in c.to_lowercase() {
        decompose_canonical(lower, |part| {
            if !is_combining_mark(part) && part.is_alphanumeric() {
                push(part);
                any = true;
            }
        });
    }
    // A combining mark on its own (from text already in NFD) belongs to the word it follows.
    any || is_combining_mark(c)
}

/// Splits `text` into folded words. Letters and digits stay in one word (`3ra`, `cc123`).
pub fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    for_each_word(text, |folded, start, end| {
        out.push(Word {
            folded: folded.to_string(),
            start,
            end,
        })
    });
    out
}

/// Calls `each(folded, start, end)` for every word of `text`, in order, as [`words`] splits them, reusing one
/// buffer instead of allocating a string per word.
pub fn for_each_word(text: &str, mut each: impl FnMut(&str, usize, usize)) {
    let mut current = String::new();
    let mut start = 0;
    for (offset, c) in text.char_indices() {
        let was_empty = current.is_empty();
        let inside = fold_char(c, |f| current.push(f));
        if inside {
            if was_empty && !current.is_empty() {
                start = offset;
            }
        } else if !current.is_empty() {
            each(&current, start, offset);
            current.clear();
        }
    }
    if !current.is_empty() {
        each(&current, start, text.len());
    }
}

/// The folded words of `text` joined by single spaces (`"¿Cirugía  URGENTE?"` → `"cirugia urgente"`).
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in words(text) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word.folded);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn folds_accents_case_and_punctuation() {
        assert_eq!(fold("¿Cirugía  URGENTE?"), "cirugia urgente");
        assert_eq!(fold("SEÑORA Pérez, niño"), "senora perez nino");
        assert_eq!(fold("tercera-vez...que LLAMO"), "tercera vez que llamo");
        // NFD input: the combining acute accent stays inside the word and disappears.
        assert_eq!(fold("cirugi\u{301}a"), "cirugia");
        assert_eq!(fold(""), "");
        assert_eq!(fold("!!!"), "");
    }

    #[test]
    fn words_point_back_at_the_original_bytes() {
        let text = "Él dijo: CIRUGÍA ya";
        let found = words(text);
        let spans: Vec<&str> = found.iter().map(|w| &text[w.start..w.end]).collect();
        assert_eq!(spans, ["Él", "dijo", "CIRUGÍA", "ya"]);
        assert_eq!(found[2].folded, "cirugia");
    }

    proptest! {
        #[test]
        fn any_text_folds_without_panicking(text in any::<String>()) {
            for word in words(&text) {
                prop_assert!(!word.folded.is_empty());
                prop_assert!(word.start < word.end && word.end <= text.len());
                prop_assert!(text.is_char_boundary(word.start) && text.is_char_boundary(word.end));
                prop_assert_eq!(fold(&word.folded), word.folded.clone(), "folding is idempotent");
            }
        }
    }
}
