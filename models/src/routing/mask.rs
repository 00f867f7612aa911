//! Personal-data masking (Ley 1581 de 2012, habeas data): identity-document numbers, phone numbers, e-mails, names
//! and street addresses are replaced by placeholders before a comment is logged, stored for audit or exported.
//!
//! A hand-written scanner over letter and digit tokens, in four passes that never overlap: e-mails (also spelled
//! out, `juan punto perez arroba gmail punto com`), street addresses, numbers, then names. It works on ALL CAPS,
//! unaccented and misspelled text, and on numbers glued to words (`CC1234567`, `cel3001234567`).
//!
//! Decisions, with the reason for each:
//!
//! - **Every identity document is `[CEDULA]`**: cédula, tarjeta de identidad, NIT (with its check digit: an
//!   employer's NIT may be a person's cédula), pasaporte (with its letters), PPT, cédula de extranjería.
//! - **Numbers are read by context, then by shape.** The nearest cue word among the six words before a number
//!   decides (`cc`, `cédula`, `nit`… → document; `cel`, `tel`, `fijo`… → phone; `radicado`, `caso`, `factura`,
//!   `reserva`, `autorización`, `transacción`, `crédito`, `valor`… → not personal data). A mobile (`3xx xxx xxxx`),
//!   a new landline (`60x xxx xxxx`) or a number with `+57` is a phone whatever the context. Without a cue, a
//!   7-digit number grouped as `xxx xx xx` or `xxx xxxx` is a landline, and other numbers of 7 to 10 digits are
//!   documents: when in doubt, mask.
//! - **Not masked**: amounts (`$`, `pesos`, `mil`, dotted thousands ending in `000`), dates, times, case and
//!   radicado numbers, invoices, reservations and other codes glued to letters with a dash (`FE-20451`), numbers of
//!   fewer than 6 digits. Radicado numbers identify the case, not the person, and delegates need them to trace it.
//! - **Every street address is `[DIRECCION]`**, a sede's included (it cannot be told from a home): a street type
//!   (`Calle`, `Cra`, `Kr`, `Av`, `Diagonal`, `Transversal`…), a number, `#` or `No`, a number and usually `-NN`,
//!   plus `apto`, `interior`, `casa`, `bloque` units. A street without a house number (`la carrera 70`) is not an
//!   address; rural addresses (`vereda El Salado`) are not recognised.
//! - **Names** follow a self-introduction or a role (`mi nombre es`, `me llamo`, `Nombre:`, `soy`, `la afiliada`,
//!   `el señor`, `la funcionaria`, `mi hijo`, a letter's closing), up to four words that are not common words. In
//!   mixed-case text a name must be capitalised (or all lower case starting with a known first name); in ALL CAPS
//!   or all lower-case text, a name after a role must start with a known first name. Titles (`Dr.`, `Sra.`, `don`)
//!   may be followed by a surname alone. Without an introduction, two or more name words starting with a known
//!   first name are a name (signatures), and so is a lone first name that closes the text after a sentence break.
//!   Employees' names are masked too: the law protects every natural person. Known gaps: a name after a role the
//!   trigger list lacks (`el conductor Mario`), a lone first name in mid-text, a name after `de` (`la mamá de Sofía
//!   Gallego`), rare first names in ALL CAPS after a role.
//!
//! Measured on the hand-written sets of `datasets/masking/` (see its README for what each figure means).

use std::collections::HashSet;
use std::sync::LazyLock;

use serde::Serialize;

use super::fold::fold_char;
use super::names::{FIRST_NAMES, NAME_PARTICLES, NOT_NAME, TRIGGERS, TriggerStrength};

/// The kind of personal data a span holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanKind {
    /// An identity-document number (cédula, TI, NIT, pasaporte, PPT, CE).
    Cedula,
    /// A phone number, mobile or landline.
    Telefono,
    /// An e-mail address, written or spelled out.
    Email,
    /// A person's name.
    Nombre,
    /// A street address.
    Direccion,
}

impl SpanKind {
    /// Every kind, in a fixed order.
    pub const ALL: [SpanKind; 5] = [
        SpanKind::Cedula,
        SpanKind::Telefono,
        SpanKind::Email,
        SpanKind::Nombre,
        SpanKind::Direccion,
    ];

    /// The text that replaces a span of this kind (`[CEDULA]`).
    pub fn placeholder(self) -> &'static str {
        match self {
            SpanKind::Cedula => "[CEDULA]",
            SpanKind::Telefono => "[TELEFONO]",
            SpanKind::Email => "[EMAIL]",
            SpanKind::Nombre => "[NOMBRE]",
            SpanKind::Direccion => "[DIRECCION]",
        }
    }

    /// Lower-case id, as serialised (`cedula`).
    pub fn id(self) -> &'static str {
        match self {
            SpanKind::Cedula => "cedula",
            SpanKind::Telefono => "telefono",
            SpanKind::Email => "email",
            SpanKind::Nombre => "nombre",
            SpanKind::Direccion => "direccion",
        }
    }

    /// The kind with this lower-case id.
    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.id() == id)
    }
}

/// A piece of personal data found in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Span {
    /// Byte offset of the first byte in the input.
    pub start: usize,
    /// Byte offset just past the last byte.
    pub end: usize,
    /// What it is.
    pub kind: SpanKind,
}

/// A text with its personal data replaced by placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Masked {
    /// The masked text.
    pub text: String,
    /// The spans found, as byte offsets into the input, sorted and not overlapping.
    pub spans: Vec<Span>,
}

/// Masks the personal data of `text`. Never panics; spans are byte offsets into `text`.
pub fn mask(text: &str) -> Masked {
    let spans = find_spans(text);
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for span in &spans {
        out.push_str(&text[last..span.start]);
        out.push_str(span.kind.placeholder());
        last = span.end;
    }
    out.push_str(&text[last..]);
    Masked { text: out, spans }
}

/// The personal data of `text`, sorted by start and not overlapping.
pub fn find_spans(text: &str) -> Vec<Span> {
    let mut scanner = Scanner::new(text);
    scanner.emails();
    scanner.spelled_emails();
    scanner.addresses();
    scanner.numbers();
    scanner.names();
    let mut spans = scanner.claimed;
    spans.sort_by_key(|s| s.start);
    spans
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokKind {
    Alpha,
    Digit,
}

#[derive(Debug, Clone)]
struct Tok {
    kind: TokKind,
    start: usize,
    end: usize,
    /// Letters folded (lower case, no accents); digits as they are.
    folded: String,
    capitalised: bool,
    all_lower: bool,
}

/// How capitals can be used as evidence of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaseMode {
    /// Ordinary writing: names are capitalised.
    Mixed,
    /// Mostly capitals (mailbox cards): capitals say nothing.
    Caps,
    /// Almost no capitals (quick notes): capitals say nothing.
    Lower,
}

fn tokenize(text: &str) -> Vec<Tok> {
    let mut toks: Vec<Tok> = Vec::new();
    for (offset, c) in text.char_indices() {
        let kind = if c.is_ascii_digit() {
            TokKind::Digit
        } else {
            let mut folded = String::new();
            let in_word = fold_char(c, |f| folded.push(f));
            if !in_word || folded.chars().any(|f| f.is_ascii_digit()) {
                // A boundary (or a digit from another script, which no rule reads): tokens only grow with adjacent
                // characters, so skipping the character closes the current token.
                continue;
            }
            if let Some(last) = toks.last_mut()
                && last.kind == TokKind::Alpha
                && last.end == offset
            {
                last.folded.push_str(&folded);
                last.end = offset + c.len_utf8();
                last.all_lower &= !c.is_uppercase();
                continue;
            }
            toks.push(Tok {
                kind: TokKind::Alpha,
                start: offset,
                end: offset + c.len_utf8(),
                capitalised: c.is_uppercase(),
                all_lower: !c.is_uppercase(),
                folded,
            });
            continue;
        };
        match toks.last_mut() {
            Some(last) if last.kind == kind && last.end == offset => {
                last.folded.push(c);
                last.end = offset + 1;
            }
            _ => toks.push(Tok {
                kind,
                start: offset,
                end: offset + 1,
                folded: c.to_string(),
                capitalised: false,
                all_lower: true,
            }),
        }
    }
    toks
}

fn case_mode(text: &str, toks: &[Tok]) -> CaseMode {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let upper = text.chars().filter(|c| c.is_uppercase()).count();
    if letters == 0 {
        return CaseMode::Mixed;
    }
    if upper * 10 >= letters * 6 {
        return CaseMode::Caps;
    }
    let words: Vec<&Tok> = toks
        .iter()
        .filter(|t| t.kind == TokKind::Alpha && t.folded.len() >= 2)
        .collect();
    let capitalised = words.iter().filter(|t| t.capitalised).count();
    if capitalised * 100 < words.len() * 12 {
        CaseMode::Lower
    } else {
        CaseMode::Mixed
    }
}

static FIRST_NAME_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| FIRST_NAMES.iter().copied().collect());
static NOT_NAME_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| NOT_NAME.iter().copied().collect());

const STREET_TYPES: &[&str] = &[
    "calle",
    "cll",
    "cl",
    "carrera",
    "cra",
    "cr",
    "kr",
    "kra",
    "crr",
    "avenida",
    "av",
    "avda",
    "diagonal",
    "dg",
    "diag",
    "transversal",
    "tv",
    "tr",
    "transv",
    "trans",
    "circular",
    "circ",
];
const HOUSE_NUMBER_WORDS: &[&str] = &["no", "nro", "numero", "num", "n"];
const STREET_QUALIFIERS: &[&str] = &["sur", "norte", "este", "oeste", "bis"];
const ADDRESS_UNITS: &[&str] = &[
    "apto",
    "apartamento",
    "apt",
    "ap",
    "int",
    "interior",
    "casa",
    "bloque",
    "bl",
    "torre",
    "of",
    "oficina",
    "local",
    "piso",
];

const DOCUMENT_CUES: &[&str] = &[
    "cc",
    "cedula",
    "ced",
    "documento",
    "doc",
    "identificacion",
    "identificado",
    "identificada",
    "id",
    "nit",
    "ti",
    "identidad",
    "pasaporte",
    "ppt",
    "pep",
    "ce",
    "extranjeria",
    "ciudadania",
    "nuip",
    "dni",
];
const PHONE_CUES: &[&str] = &[
    "cel",
    "celular",
    "cell",
    "tel",
    "telefono",
    "telefonos",
    "tels",
    "fijo",
    "movil",
    "whatsapp",
    "whatsap",
    "wasap",
    "wpp",
    "wsp",
    "contacto",
    "llamar",
    "llamen",
    "llamarme",
    "llamada",
    "llame",
    "comunicarse",
    "linea",
    "fax",
];
const NOT_PERSONAL_CUES: &[&str] = &[
    "radicado",
    "radicacion",
    "rad",
    "caso",
    "ticket",
    "solicitud",
    "pqrs",
    "pqr",
    "pqrsf",
    "consecutivo",
    "factura",
    "recibo",
    "transaccion",
    "referencia",
    "ref",
    "orden",
    "autorizacion",
    "reserva",
    "codigo",
    "credito",
    "cuenta",
    "pedido",
    "guia",
    "contrato",
    "turno",
    "mesa",
    "planilla",
    "version",
    "error",
    "valor",
    "pesos",
    "saldo",
    "pago",
    "cobro",
    "cobraron",
    "ingresos",
    "gano",
    "salario",
    "precio",
    "tarifa",
    "costo",
    "cuota",
    "monto",
    "deuda",
    "expediente",
    "proceso",
    "resolucion",
    "oficio",
    "serial",
];
const NUMBER_FILLERS: &[&str] = &[
    "no", "nro", "num", "numero", "n", "de", "del", "es", "el", "la", "mi", "su", "sus", "con",
    "o", "y", "a", "al", "nuevo", "nueva", "actual",
];
const MONEY_WORDS: &[&str] = &["pesos", "mil", "millones", "cop", "mcte", "mensuales"];
const EMAIL_CONNECTORS: &[&str] = &["punto", "guion", "raya", "bajo", "underscore"];

/// Gaps allowed between the digit groups of one number (`300 123 4567`, `43.567.890`, `(604) 448 9900`).
const NUMBER_JOINS: &[&str] = &[
    " ", "  ", ".", "-", " -", "- ", " - ", ") ", ")", " (", "(", ")-",
];
/// Longest number (in digits) the scanner assembles: `+57 604 123 4567`.
const MAX_NUMBER_DIGITS: usize = 12;
/// Words before a number that are searched for a cue.
const CUE_WINDOW: usize = 6;
/// Most words in one name.
const MAX_NAME_WORDS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cue {
    Document,
    Phone,
    NotPersonal,
}

fn cue_of(word: &str) -> Option<Cue> {
    if DOCUMENT_CUES.contains(&word) {
        Some(Cue::Document)
    } else if PHONE_CUES.contains(&word) {
        Some(Cue::Phone)
    } else if NOT_PERSONAL_CUES.contains(&word) {
        Some(Cue::NotPersonal)
    } else {
        None
    }
}

struct Scanner<'t> {
    text: &'t str,
    toks: Vec<Tok>,
    mode: CaseMode,
    claimed: Vec<Span>,
}

impl<'t> Scanner<'t> {
    fn new(text: &'t str) -> Self {
        let toks = tokenize(text);
        let mode = case_mode(text, &toks);
        Self {
            text,
            toks,
            mode,
            claimed: Vec::new(),
        }
    }

    /// The text between token `i - 1` and token `i` (before the first token: from the start of the text).
    fn gap(&self, i: usize) -> &'t str {
        let end = self.toks.get(i).map_or(self.text.len(), |t| t.start);
        let start = if i == 0 {
            0
        } else {
            self.toks.get(i - 1).map_or(0, |t| t.end)
        };
        self.text.get(start..end).unwrap_or("")
    }

    fn is_free(&self, start: usize, end: usize) -> bool {
        self.claimed
            .iter()
            .all(|s| end <= s.start || start >= s.end)
    }

    fn claim(&mut self, start: usize, end: usize, kind: SpanKind) {
        if start < end && self.is_free(start, end) {
            self.claimed.push(Span { start, end, kind });
        }
    }

    fn alpha(&self, i: usize) -> Option<&str> {
        self.toks
            .get(i)
            .filter(|t| t.kind == TokKind::Alpha)
            .map(|t| t.folded.as_str())
    }

    fn digit(&self, i: usize) -> bool {
        self.toks.get(i).is_some_and(|t| t.kind == TokKind::Digit)
    }

    // ------------------------------------------------------------------ e-mails

    fn emails(&mut self) {
        let bytes = self.text.as_bytes();
        let local =
            |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-');
        let domain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-');
        let ats: Vec<usize> = self.text.match_indices('@').map(|(i, _)| i).collect();
        for at in ats {
            let mut start = at;
            while start > 0 && local(bytes[start - 1]) {
                start -= 1;
            }
            while start < at && matches!(bytes[start], b'.' | b'-' | b'+') {
                start += 1;
            }
            let mut end = at + 1;
            while end < bytes.len() && domain(bytes[end]) {
                end += 1;
            }
            while end > at + 1 && matches!(bytes[end - 1], b'.' | b'-') {
                end -= 1;
            }
            let host = &self.text[at + 1..end];
            let top_level = host.rsplit('.').next().unwrap_or("");
            let valid = start < at
                && host.contains('.')
                && top_level.len() >= 2
                && top_level.bytes().all(|b| b.is_ascii_alphabetic());
            if valid {
                self.claim(start, end, SpanKind::Email);
            }
        }
    }

    /// `yuli punto gomez arroba gmail punto com`, as agents transcribe an address dictated on the phone.
    fn spelled_emails(&mut self) {
        for at in 0..self.toks.len() {
            if self.alpha(at) != Some("arroba") || at == 0 {
                continue;
            }
            let is_word = |s: &Self, i: usize| {
                s.toks
                    .get(i)
                    .is_some_and(|t| !EMAIL_CONNECTORS.contains(&t.folded.as_str()))
                    && s.alpha(i) != Some("arroba")
            };
            // Left: a word, glued pieces (`yuli88`), and chains of words joined by `punto`, `guion`, `guion bajo`.
            let mut first = at - 1;
            if !is_word(self, first) {
                continue;
            }
            loop {
                let connectors = (1..=2)
                    .take_while(|&c| {
                        first > c
                            && self
                                .alpha(first - c)
                                .is_some_and(|w| EMAIL_CONNECTORS.contains(&w))
                    })
                    .count();
                if first > 0 && self.gap(first).is_empty() && is_word(self, first - 1) {
                    first -= 1;
                } else if connectors > 0 && is_word(self, first - connectors - 1) {
                    first -= connectors + 1;
                } else {
                    break;
                }
            }
            // Right: a domain word and at least one dot, spelled (`punto com`) or written (`gmail.com`).
            let mut last = at + 1;
            if !is_word(self, last) {
                continue;
            }
            let mut dots = 0;
            loop {
                if self.alpha(last + 1) == Some("punto") && self.alpha(last + 2).is_some() {
                    last += 2;
                } else if self.gap(last + 1) == "." && self.alpha(last + 1).is_some() {
                    last += 1;
                } else {
                    break;
                }
                dots += 1;
            }
            if dots > 0 {
                let (start, end) = (self.toks[first].start, self.toks[last].end);
                self.claim(start, end, SpanKind::Email);
            }
        }
    }

    // ------------------------------------------------------------------ addresses

    fn addresses(&mut self) {
        for i in 0..self.toks.len() {
            if let Some((start, end)) = self.address_at(i) {
                self.claim(start, end, SpanKind::Direccion);
            }
        }
    }

    fn spaces_only(gap: &str) -> bool {
        !gap.is_empty() && gap.chars().all(|c| c == ' ')
    }

    /// Skips street qualifiers after a number: glued letters (`45A`), a spaced letter before the `#` (`50 A`),
    /// and `sur`, `bis`, ...; returns the index after them and the last index consumed.
    fn skip_qualifiers(&self, mut k: usize, before_separator: bool) -> (usize, Option<usize>) {
        let mut last = None;
        for _ in 0..2 {
            let Some(word) = self.alpha(k) else { break };
            let gap = self.gap(k);
            let glued_letter = gap.is_empty() && word.len() <= 2;
            let spaced_letter = before_separator
                && Self::spaces_only(gap)
                && word.len() == 1
                && matches!(word, "a" | "b" | "c" | "d" | "e" | "f" | "g" | "h");
            let qualifier = (gap.is_empty() || Self::spaces_only(gap))
                && STREET_QUALIFIERS.contains(&word)
                && (before_separator || word == "sur" || word == "bis");
            if glued_letter || spaced_letter || qualifier {
                last = Some(k);
                k += 1;
            } else {
                break;
            }
        }
        (k, last)
    }

    fn address_at(&self, i: usize) -> Option<(usize, usize)> {
        let street = self.alpha(i)?;
        if !STREET_TYPES.contains(&street) {
            return None;
        }
        let start = self.toks[i].start;
        let mut k = i + 1;
        let gap = self.gap(k).trim_matches(' ');
        if !self.digit(k) || !(gap.is_empty() || gap == ".") || self.gap(k).len() > 3 {
            return None;
        }
        k += 1;
        (k, _) = self.skip_qualifiers(k, true);
        // The house-number separator: `#`, or `No`, `Nro`, `N°` before the next number.
        let hash_gap = self.gap(k).trim_matches(' ');
        let by_hash = self.digit(k) && matches!(hash_gap, "#" | "#." | "# ");
        let by_word = !by_hash
            && self
                .alpha(k)
                .is_some_and(|w| HOUSE_NUMBER_WORDS.contains(&w))
            && Self::spaces_only(self.gap(k))
            && self.digit(k + 1)
            && matches!(
                self.gap(k + 1).trim_matches(' '),
                "" | "." | "°" | "º" | ".°" | "#"
            );
        // Without a separator (`Cr 70 45-20`) the dash after the second number is required.
        let bare = !by_hash
            && !by_word
            && self.digit(k)
            && Self::spaces_only(self.gap(k))
            && self.digit(k + 1)
            && self.gap(k + 1).trim_matches(' ') == "-";
        if by_word {
            k += 1;
        } else if !by_hash && !bare {
            return None;
        }
        let mut end = self.toks[k].end;
        k += 1;
        let (next, last) = self.skip_qualifiers(k, false);
        if let Some(last) = last {
            end = self.toks[last].end;
        }
        k = next;
        let dash = self.gap(k).trim_matches(' ') == "-" && self.gap(k).len() <= 3;
        if self.digit(k) && dash {
            end = self.toks[k].end;
            k += 1;
            let (next, last) = self.skip_qualifiers(k, false);
            if let Some(last) = last {
                end = self.toks[last].end;
            }
            k = next;
        } else if by_word || bare {
            // `la calle 50 no 3` is a sentence, `calle 50 no 30-12` an address.
            return None;
        }
        // Units: `apto 302`, `Bloque 3 Apto 402`, `int 201`, `Of 301`.
        for _ in 0..3 {
            let is_unit = self.alpha(k).is_some_and(|w| ADDRESS_UNITS.contains(&w))
                && Self::spaces_only(self.gap(k));
            let number_gap = self.gap(k + 1).trim_matches(' ');
            if is_unit && self.digit(k + 1) && (number_gap.is_empty() || number_gap == ".") {
                end = self.toks[k + 1].end;
                k += 2;
                if self.alpha(k).is_some_and(|w| w.len() == 1) && self.gap(k).is_empty() {
                    end = self.toks[k].end;
                    k += 1;
                }
            } else {
                break;
            }
        }
        Some((start, end))
    }

    // ------------------------------------------------------------------ numbers

    fn numbers(&mut self) {
        let mut i = 0;
        while i < self.toks.len() {
            if !self.digit(i) || !self.is_free(self.toks[i].start, self.toks[i].end) {
                i += 1;
                continue;
            }
            let mut last = i;
            let mut digits = self.toks[i].folded.len();
            while self.digit(last + 1) {
                let next = &self.toks[last + 1];
                let next_len = next.folded.len();
                let joins = NUMBER_JOINS.contains(&self.gap(last + 1))
                    && digits + next_len <= MAX_NUMBER_DIGITS
                    && (self.toks[last].folded.len() <= 4 || next_len <= 4)
                    && self.is_free(next.start, next.end);
                if !joins {
                    break;
                }
                digits += next_len;
                last += 1;
            }
            if let Some(span) = self.classify_number(i, last) {
                self.claim(span.start, span.end, span.kind);
            }
            i = last + 1;
        }
    }

    fn classify_number(&self, first: usize, last: usize) -> Option<Span> {
        let chunks: Vec<&str> = (first..=last)
            .map(|k| self.toks[k].folded.as_str())
            .collect();
        let digits: String = chunks.concat();
        let n = digits.len();
        let lens: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        let gap_before = self.gap(first);
        let mut start = self.toks[first].start;
        let end = self.toks[last].end;
        let plus = gap_before.ends_with('+');
        if plus || gap_before.ends_with('(') {
            start -= 1;
        }

        // Dates: 15-02-2025, 2025-03-18, 01.04.2025.
        let date = lens.len() == 3
            && ((lens[0] <= 2 && lens[1] <= 2 && lens[2] == 4)
                || (lens[0] == 4 && lens[1] <= 2 && lens[2] <= 2));
        if date {
            return None;
        }
        // Amounts: `$350.000`, `350.000 pesos`, `3 millones`.
        if gap_before.trim_end_matches(' ').ends_with('$') {
            return None;
        }
        let money_after = self
            .alpha(last + 1)
            .is_some_and(|w| MONEY_WORDS.contains(&w))
            && Self::spaces_only(self.gap(last + 1));
        if money_after {
            return None;
        }
        // Codes glued to letters by a dash: FE-20451, A-118, PQRS-2025-004512.
        if first > 0 && gap_before == "-" && self.alpha(first - 1).is_some() {
            return None;
        }
        let glued_prefix = (first > 0 && gap_before.is_empty())
            .then(|| self.alpha(first - 1))
            .flatten();
        let cue = match glued_prefix.and_then(cue_of) {
            Some(cue) => Some(cue),
            None => self.cue_before(first - usize::from(glued_prefix.is_some())),
        };

        let mobile = n == 10 && digits.starts_with('3');
        let landline = n == 10 && digits.starts_with("60");
        let international = n == 12
            && digits.starts_with("57")
            && (digits[2..].starts_with('3') || digits[2..].starts_with("60"));
        if mobile || landline || international || (plus && n >= 7) {
            return Some(Span {
                start,
                end,
                kind: SpanKind::Telefono,
            });
        }
        let kind = match cue {
            Some(Cue::NotPersonal) => return None,
            Some(Cue::Document) if (5..=11).contains(&n) => {
                // A passport's letters are glued to its digits (`AV456789`).
                if glued_prefix.is_some_and(|p| p.len() <= 3 && cue_of(p).is_none()) {
                    start = self.toks[first - 1].start;
                }
                SpanKind::Cedula
            }
            Some(Cue::Phone) if (7..=MAX_NUMBER_DIGITS).contains(&n) => SpanKind::Telefono,
            Some(_) => return None,
            None => {
                if glued_prefix.is_some() {
                    // Letters glued to digits without a cue: a code, not a person's number.
                    return None;
                }
                let dotted_thousands = chunks.len() >= 2
                    && (first + 1..=last).all(|k| self.gap(k) == ".")
                    && chunks[1..].iter().all(|c| c.len() == 3)
                    && digits.ends_with("000");
                let old_landline = n == 7 && chunks.len() >= 2 && lens[0] == 3;
                if dotted_thousands {
                    return None;
                } else if old_landline {
                    SpanKind::Telefono
                } else if (7..=10).contains(&n) {
                    SpanKind::Cedula
                } else {
                    return None;
                }
            }
        };
        Some(Span { start, end, kind })
    }

    /// The nearest cue among the words before token `first`, within [`CUE_WINDOW`] words and the same line.
    fn cue_before(&self, first: usize) -> Option<Cue> {
        let mut words = 0;
        let mut k = first;
        while k > 0 && words < CUE_WINDOW {
            if self.gap(k).contains('\n') {
                return None;
            }
            k -= 1;
            let Some(word) = self.alpha(k) else { continue };
            // `c.c.`, `t.i.`, `c.e.`: single letters separated by dots.
            if word.len() == 1
                && k > 0
                && let Some(previous) = self.alpha(k - 1).filter(|p| p.len() == 1)
                && let Some(cue) = cue_of(&format!("{previous}{word}"))
            {
                return Some(cue);
            }
            if let Some(cue) = cue_of(word) {
                return Some(cue);
            }
            if !NUMBER_FILLERS.contains(&word) {
                words += 1;
            }
        }
        None
    }

    // ------------------------------------------------------------------ names

    fn names(&mut self) {
        let mut found = Vec::new();
        for i in 0..self.toks.len() {
            for &(phrase, strength, needs_colon) in TRIGGERS {
                if let Some(after) = self.trigger_at(i, phrase, needs_colon)
                    && let Some(span) = self.name_from(after, Some(strength))
                {
                    found.push(span);
                }
            }
        }
        for (start, end) in found {
            self.claim(start, end, SpanKind::Nombre);
        }
        // Names without an introduction: two or more name words starting with a known first name, not inside
        // a longer phrase that a particle ties to the word before (`la sede de Santa Rosa`).
        for i in 0..self.toks.len() {
            let after_particle = i > 0
                && Self::spaces_only(self.gap(i))
                && self
                    .alpha(i - 1)
                    .is_some_and(|w| NAME_PARTICLES.contains(&w));
            let starts_name =
                self.alpha(i).is_some_and(|w| FIRST_NAME_SET.contains(w)) && !after_particle;
            if starts_name
                && let Some((start, end)) = self.name_from(i, None)
                && self.words_between(start, end) >= 2
            {
                self.claim(start, end, SpanKind::Nombre);
            }
        }
        // A lone first name closing the text after a sentence break is a signature (`...MI CREDITO. YERALDIN`).
        if let Some(last) = self.toks.len().checked_sub(1) {
            let closing = self.alpha(last).is_some_and(|w| FIRST_NAME_SET.contains(w))
                && last > 0
                && self.gap(last).contains(['.', '\n', ','])
                && self.text[self.toks[last].end..]
                    .chars()
                    .all(|c| c.is_whitespace() || c == '.');
            if closing
                && self.is_name_word(
                    last,
                    true,
                    Some(TriggerStrength::Explicit),
                    self.toks[last].all_lower,
                )
            {
                let tok = &self.toks[last];
                self.claim(tok.start, tok.end, SpanKind::Nombre);
            }
        }
    }

    fn words_between(&self, start: usize, end: usize) -> usize {
        self.toks
            .iter()
            .filter(|t| t.kind == TokKind::Alpha && t.start >= start && t.end <= end)
            .count()
    }

    /// If the trigger phrase starts at token `i`, the index of the token after it.
    fn trigger_at(&self, i: usize, phrase: &str, needs_colon: bool) -> Option<usize> {
        let mut k = i;
        for (n, word) in phrase.split(' ').enumerate() {
            if self.alpha(k) != Some(word) || (n > 0 && !Self::spaces_only(self.gap(k))) {
                return None;
            }
            k += 1;
        }
        // A trigger is a whole word sequence: `dra` must not be the tail of `Sandra`.
        if i > 0 && self.gap(i).is_empty() {
            return None;
        }
        let intro = self.gap(k);
        let intro_ok = !intro.is_empty()
            && intro.len() <= 8
            && intro
                .chars()
                .all(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | ':' | ',' | '.'));
        let colon_ok = !needs_colon || intro.contains(':');
        (intro_ok && colon_ok).then_some(k)
    }

    /// The name that starts at token `first`, if any. `trigger` is `None` for names without an introduction.
    fn name_from(&self, first: usize, trigger: Option<TriggerStrength>) -> Option<(usize, usize)> {
        let lower_start = self.toks.get(first).is_some_and(|t| t.all_lower);
        let mut words = 0;
        let mut last = None;
        let mut k = first;
        while words < MAX_NAME_WORDS {
            let Some(word) = self.alpha(k) else { break };
            let tok = &self.toks[k];
            if words > 0 && !Self::spaces_only(self.gap(k)) {
                break;
            }
            if !self.is_free(tok.start, tok.end) {
                break;
            }
            // Particles inside mixed-case names: `María de los Ángeles`.
            if words > 0 && self.mode == CaseMode::Mixed && NAME_PARTICLES.contains(&word) {
                let mut p = k;
                while p < k + 2 && self.alpha(p).is_some_and(|w| NAME_PARTICLES.contains(&w)) {
                    p += 1;
                }
                let continues = Self::spaces_only(self.gap(p))
                    && (k + 1..=p).all(|q| Self::spaces_only(self.gap(q)))
                    && self.is_name_word(p, false, trigger, lower_start);
                if continues {
                    k = p;
                    continue;
                }
                break;
            }
            if !self.is_name_word(k, words == 0, trigger, lower_start) {
                break;
            }
            words += 1;
            last = Some(k);
            k += 1;
        }
        last.map(|l| (self.toks[first].start, self.toks[l].end))
    }

    fn is_name_word(
        &self,
        k: usize,
        first: bool,
        trigger: Option<TriggerStrength>,
        lower_start: bool,
    ) -> bool {
        let Some(word) = self.alpha(k) else {
            return false;
        };
        let tok = &self.toks[k];
        let glued_to_digits = self.digit(k + 1) && self.gap(k + 1).is_empty();
        if word.chars().count() < 2 || NOT_NAME_SET.contains(word) || glued_to_digits {
            return false;
        }
        if tok.start > 0 && self.gap(k).is_empty() {
            return false;
        }
        let known_first = FIRST_NAME_SET.contains(word);
        match self.mode {
            CaseMode::Mixed => {
                if lower_start {
                    // An all lower-case name in ordinary text: only after an introduction, from a known first name.
                    tok.all_lower && (!first || (known_first && trigger.is_some()))
                } else {
                    tok.capitalised && (!first || trigger.is_some() || known_first)
                }
            }
            CaseMode::Caps | CaseMode::Lower => match (first, trigger) {
                (false, _) => true,
                (true, Some(TriggerStrength::Explicit)) => true,
                (true, _) => known_first,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Masks `text` and compares the masked text.
    fn check(text: &str, expected: &str) {
        assert_eq!(mask(text).text, expected, "input: {text}");
    }

    #[test]
    fn documents_by_cue_including_glued_and_dotted() {
        check(
            "CC1234567 NO ME DEJARON ENTRAR",
            "CC[CEDULA] NO ME DEJARON ENTRAR",
        );
        check(
            "identificada con C.C. 43.567.890 quien",
            "identificada con C.C. [CEDULA] quien",
        );
        check("NIT 900.321.654-2, reclama", "NIT [CEDULA], reclama");
        check("pasaporte AV456789 |", "pasaporte [CEDULA] |");
        check("Documento: PPT 5123987", "Documento: PPT [CEDULA]");
        check("cc 70 456 789 tel", "cc [CEDULA] tel");
    }

    #[test]
    fn phones_in_every_format() {
        check("cel3001234567 xfa", "cel[TELEFONO] xfa");
        check("llamar al 310 456 7890.", "llamar al [TELEFONO].");
        check("Contacto +57 315 222 3344", "Contacto [TELEFONO]");
        check("Tel: (604) 448 9900 ext 12", "Tel: [TELEFONO] ext 12");
        check("al fijo 444 55 66", "al fijo [TELEFONO]");
        check(
            "cel 300-123-4567 o 301.234.5678",
            "cel [TELEFONO] o [TELEFONO]",
        );
        // Two mobiles in a row are two numbers, not one of twenty digits.
        check("3001234567 3109876543", "[TELEFONO] [TELEFONO]");
        // A mobile after a document cue is still a phone.
        check(
            "ti 1001234567 dejo numero de la mama 3127654321",
            "ti [CEDULA] dejo numero de la mama [TELEFONO]",
        );
    }

    #[test]
    fn numbers_that_are_not_personal_data_stay() {
        for text in [
            "por valor de $350.000 el 15/02/2025",
            "radicado 2024-0012345 y radicado No. 20250004567",
            "el radicado PQRS-2025-004512 y la factura FE-20451",
            "desde el 01-04-2025 o el 2025-03-18",
            "Número de transacción 8877665544",
            "el número de autorización es 123456789",
            "ingresos de 2.500.000 mensuales, 3 millones",
            "subió de 410.000 a 468.500",
            "RESERVA 778812, caso 558877, turno A-118, versión 4.2.1",
        ] {
            check(text, text);
        }
    }

    #[test]
    fn emails_written_and_spelled() {
        check("Correo: sandra.ospina@gmail.com.", "Correo: [EMAIL].");
        check(
            "MI CORREO YESENIARIOS85@GMAIL.COM XFA",
            "MI CORREO [EMAIL] XFA",
        );
        check(
            "dicta su correo: yuli punto gomez arroba gmail punto com. Solicita",
            "dicta su correo: [EMAIL]. Solicita",
        );
        check("a @ b y user@localhost", "a @ b y user@localhost");
    }

    #[test]
    fn street_addresses() {
        check(
            "vive en la Calle 45 # 78-23 de Medellín",
            "vive en la [DIRECCION] de Medellín",
        );
        check("VIVO EN LA CRA 52 NO 76-40 Y", "VIVO EN LA [DIRECCION] Y");
        check("CL 10 SUR # 43A-25 Y NO", "[DIRECCION] Y NO");
        check("Cra. 43A # 1 Sur-100 y", "[DIRECCION] y");
        check("Calle 104 # 64C-31 Bloque 3 Apto 402\n", "[DIRECCION]\n");
        // A street without a house number is not an address.
        check(
            "vive en la carrera 70 y la calle 50 no tiene rampa",
            "vive en la carrera 70 y la calle 50 no tiene rampa",
        );
    }

    #[test]
    fn names_after_introductions_and_roles() {
        check(
            "Se comunica la afiliada Luz Marina Restrepo Gómez identificada con CC 43.567.890",
            "Se comunica la afiliada [NOMBRE] identificada con CC [CEDULA]",
        );
        check(
            "MI NOMBRE ES JHON JAIRO RESTREPO CC 8.456.123",
            "MI NOMBRE ES [NOMBRE] CC [CEDULA]",
        );
        check(
            "usuaria rosa elena mejia cc 32555888 se acerca",
            "usuaria [NOMBRE] cc [CEDULA] se acerca",
        );
        check(
            "la funcionaria Marcela de la sede de San Antonio",
            "la funcionaria [NOMBRE] de la sede de San Antonio",
        );
        check(
            "Nombre: Camilo Andrés Vélez\nDocumento:",
            "Nombre: [NOMBRE]\nDocumento:",
        );
        check(
            "Atentamente,\nRicardo Vargas\nCel. 316 789 0123",
            "Atentamente,\n[NOMBRE]\nCel. [TELEFONO]",
        );
        check(
            "María de los Ángeles Pérez manifiesta",
            "[NOMBRE] manifiesta",
        );
        // Roles followed by verbs or common words are not names.
        for text in [
            "SOY AFILIADO HACE 10 AÑOS",
            "el afiliado deletrea el correo",
            "Usuaria no afiliada consulta por los precios",
            "LA SEÑORA DE LA TAQUILLA ME TRATO MAL",
            "Soy venezolano con PPT",
            "no hay luz en el parque",
        ] {
            check(text, text);
        }
    }

    #[test]
    fn spans_are_byte_offsets_into_the_input() {
        let text = "Sra. Ñuñez, cel 3001234567";
        let masked = mask(text);
        let phone = masked
            .spans
            .iter()
            .find(|s| s.kind == SpanKind::Telefono)
            .expect("the phone is found");
        assert_eq!(&text[phone.start..phone.end], "3001234567");
        assert_eq!(SpanKind::from_id("direccion"), Some(SpanKind::Direccion));
        assert_eq!(
            serde_json::to_string(&SpanKind::Cedula).expect("serialises"),
            "\"cedula\""
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_spans_are_well_formed(text in any::<String>()) {
            let masked = mask(&text);
            let mut previous_end = 0;
            for span in &masked.spans {
                prop_assert!(span.start < span.end && span.end <= text.len());
                prop_assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
                prop_assert!(span.start >= previous_end, "spans overlap or are unsorted");
                previous_end = span.end;
            }
        }

        #[test]
        fn never_panics_on_intake_like_text(
            text in "[A-Za-zÁÉÍÓÚÑáéíóúñ0-9 .,:;#@+()$/\n-]{0,120}"
        ) {
            let masked = mask(&text);
            for span in &masked.spans {
                prop_assert!(masked.text.contains(span.kind.placeholder()));
            }
        }
    }
}
