//! Readers of labeled history: CSV (sniffed delimiter, UTF-8 or Windows-1252), JSONL and XLSX, streamed row by row
//! into validated [`Record`]s, with every bad row counted by reason and line number.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use calamine::{Data, Reader as _};
use chrono::NaiveDate;

use crate::{
    ColumnMapping, Error, LabeledSet, ReadReport, Record, RejectReason, Result, normalize_label,
};

/// How many bytes are looked at to choose the delimiter and the encoding.
const SNIFF_BYTES: usize = 64 * 1024;

/// Reads a whole labeled file into memory. The format is chosen by extension.
pub fn read_labeled(path: &Path, mapping: &ColumnMapping) -> Result<LabeledSet> {
    let mut records = Vec::new();
    let (heads, report) = for_each_record(path, mapping, |r| records.push(r))?;
    Ok(LabeledSet {
        heads,
        records,
        report,
    })
}

/// Reads CSV from any reader (used for the embedded corpus and for tests).
pub fn read_labeled_from(reader: impl Read, mapping: &ColumnMapping) -> Result<LabeledSet> {
    let mut records = Vec::new();
    let mut report = ReadReport::default();
    read_csv(BufReader::new(reader), mapping, &mut report, |r| {
        records.push(r)
    })?;
    Ok(LabeledSet {
        heads: heads_of(mapping),
        records,
        report,
    })
}

/// Streams the accepted records of a file to `sink`, one at a time, so that memory stays bounded whatever the
/// file's size. Returns the head names and the read report.
pub fn for_each_record(
    path: &Path,
    mapping: &ColumnMapping,
    mut sink: impl FnMut(Record),
) -> Result<(Vec<String>, ReadReport)> {
    mapping.validate()?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut report = ReadReport::default();
    match ext.as_str() {
        "csv" | "tsv" | "txt" => {
            let file = File::open(path).map_err(io_err)?;
            read_csv(
                BufReader::with_capacity(SNIFF_BYTES, file),
                mapping,
                &mut report,
                &mut sink,
            )?;
        }
        "jsonl" | "ndjson" => {
            let file = File::open(path).map_err(io_err)?;
            read_jsonl(BufReader::new(file), mapping, &mut report, &mut sink).map_err(io_err)?;
        }
        "xlsx" | "xlsm" => read_xlsx(path, mapping, &mut report, &mut sink)?,
        other => return Err(Error::UnsupportedFormat(other.to_string())),
    }
    Ok((heads_of(mapping), report))
}

fn heads_of(mapping: &ColumnMapping) -> Vec<String> {
    mapping.labels.iter().map(|(h, _)| h.clone()).collect()
}

/// Where each mapped column sits in a row.
struct Columns {
    text: Vec<usize>,
    labels: Vec<usize>,
    id: Option<usize>,
    date: Option<usize>,
    channel: Option<usize>,
    width: usize,
}

impl Columns {
    fn locate(header: &[String], mapping: &ColumnMapping) -> Result<Self> {
        let find = |name: &str| -> Result<usize> {
            let wanted = name.trim();
            header
                .iter()
                .position(|h| h.trim() == wanted)
                .ok_or_else(|| Error::MissingColumn {
                    column: name.to_string(),
                    available: header.join(", "),
                })
        };
        let optional = |name: &Option<String>| name.as_deref().map(find).transpose();
        Ok(Columns {
            text: mapping
                .text
                .iter()
                .map(|c| find(c))
                .collect::<Result<_>>()?,
            labels: mapping
                .labels
                .iter()
                .map(|(_, c)| find(c))
                .collect::<Result<_>>()?,
            id: optional(&mapping.id)?,
            date: optional(&mapping.date)?,
            channel: optional(&mapping.channel)?,
            width: header.len(),
        })
    }

    /// Turns one row's fields into a record, or the reason it is rejected.
    fn record(
        &self,
        line: u64,
        field: &dyn Fn(usize) -> Option<String>,
    ) -> std::result::Result<Record, (RejectReason, String)> {
        let mut text = String::new();
        for &i in &self.text {
            let part = field(i).unwrap_or_default();
            let part = part.trim();
            if !part.is_empty() {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(part);
            }
        }
        if text.is_empty() {
            return Err((
                RejectReason::EmptyText,
                "no text in the text columns".into(),
            ));
        }
        let mut labels = Vec::with_capacity(self.labels.len());
        for &i in &self.labels {
            let label = normalize_label(&field(i).unwrap_or_default());
            if label.is_empty() {
                return Err((
                    RejectReason::MissingLabel,
                    format!("empty label in column {}", i + 1),
                ));
            }
            labels.push(label);
        }
        let date = match self.date {
            None => None,
            Some(i) => {
                let raw = field(i).unwrap_or_default();
                match parse_date(&raw) {
                    Some(d) => Some(d),
                    None => {
                        return Err((
                            RejectReason::BadDate,
                            format!("cannot parse date {:?}", truncate(&raw, 40)),
                        ));
                    }
                }
            }
        };
        let non_empty =
            |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        Ok(Record {
            line,
            id: self.id.and_then(|i| non_empty(field(i))),
            text,
            labels,
            date,
            channel: self.channel.and_then(|i| non_empty(field(i))),
        })
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// Parses the date formats Colombian exports use: ISO, day-first with `/` or `-`, and date-times of either.
pub fn parse_date(raw: &str) -> Option<NaiveDate> {
    let raw = raw.trim();
    let date_part = raw.split(['T', ' ']).next().unwrap_or(raw);
    ["%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%d-%m-%Y", "%Y%m%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(date_part, f).ok())
}

/// Chooses the delimiter that splits the header line into the most fields, ignoring quoted parts.
fn sniff_delimiter(head: &[u8]) -> u8 {
    let first_line = head.split(|&b| b == b'\n').next().unwrap_or(head);
    let mut best = (b',', 0usize);
    for candidate in [b',', b';', b'\t', b'|'] {
        let mut in_quotes = false;
        let mut count = 0;
        for &b in first_line {
            match b {
                b'"' => in_quotes = !in_quotes,
                b if b == candidate && !in_quotes => count += 1,
                _ => {}
            }
        }
        if count > best.1 {
            best = (candidate, count);
        }
    }
    best.0
}

/// True when the bytes are UTF-8, allowing a character cut at the end of the sniffed window.
fn looks_utf8(head: &[u8]) -> bool {
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

fn decode_field(bytes: &[u8], utf8_file: bool, report: &mut ReadReport) -> String {
    if utf8_file {
        match std::str::from_utf8(bytes) {
            Ok(s) => return s.to_string(),
            Err(_) => report.fields_recoded += 1,
        }
    }
    encoding_rs::WINDOWS_1252
        .decode_without_bom_handling(bytes)
        .0
        .into_owned()
}

fn read_csv<R: BufRead>(
    mut input: R,
    mapping: &ColumnMapping,
    report: &mut ReadReport,
    mut sink: impl FnMut(Record),
) -> Result<()> {
    let head = input.fill_buf().map_err(|e| Error::Csv(e.into()))?;
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let delimiter = sniff_delimiter(head);
    let utf8_file = looks_utf8(head);
    report.delimiter = Some(delimiter as char);
    report.encoding = if utf8_file { "utf-8" } else { "windows-1252" };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(false)
        .from_reader(input);
    let mut row = csv::ByteRecord::new();
    let header: Vec<String> = loop {
        match reader.read_byte_record(&mut row) {
            Ok(false) => return Err(Error::NoHeader),
            Ok(true) if row.iter().all(|f| f.is_empty()) => continue,
            Ok(true) => {
                break row
                    .iter()
                    .map(|f| {
                        decode_field(f, utf8_file, report)
                            .trim_start_matches('\u{feff}')
                            .to_string()
                    })
                    .collect();
            }
            Err(e) => return Err(Error::Csv(e)),
        }
    };
    let columns = Columns::locate(&header, mapping)?;
    loop {
        match reader.read_byte_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {
                let line = row.position().map_or(0, |p| p.line());
                if row.len() == 1 && row.get(0).is_some_and(|f| f.is_empty()) {
                    continue; // A blank line is not a row.
                }
                report.rows_read += 1;
                if row.len() != columns.width {
                    report.reject(
                        RejectReason::WrongColumnCount,
                        line,
                        format!("{} fields, header has {}", row.len(), columns.width),
                    );
                    continue;
                }
                let mut fields: Vec<String> = Vec::with_capacity(row.len());
                for f in row.iter() {
                    fields.push(decode_field(f, utf8_file, report));
                }
                accept(
                    &columns,
                    line,
                    &|i| fields.get(i).cloned(),
                    report,
                    &mut sink,
                );
            }
            Err(e) => {
                report.rows_read += 1;
                let line = e.position().map_or(0, |p| p.line());
                report.reject(RejectReason::Unparsable, line, e.to_string());
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
            }
        }
    }
    Ok(())
}

fn accept(
    columns: &Columns,
    line: u64,
    field: &dyn Fn(usize) -> Option<String>,
    report: &mut ReadReport,
    sink: &mut impl FnMut(Record),
) {
    match columns.record(line, field) {
        Ok(record) => {
            report.rows_accepted += 1;
            sink(record);
        }
        Err((reason, detail)) => report.reject(reason, line, detail),
    }
}

fn json_field(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn read_jsonl(
    input: impl BufRead,
    mapping: &ColumnMapping,
    report: &mut ReadReport,
    mut sink: impl FnMut(Record),
) -> std::io::Result<()> {
    report.encoding = "utf-8";
    // JSONL has no header: every mapped key is a column, looked up by name in each object.
    let mut names: Vec<String> = mapping.text.clone();
    names.extend(mapping.labels.iter().map(|(_, c)| c.clone()));
    names.extend(
        [&mapping.id, &mapping.date, &mapping.channel]
            .into_iter()
            .flatten()
            .cloned(),
    );
    names.dedup();
    let columns = Columns::locate(&names, mapping)
        .expect("every mapped name is in the list built from the mapping");
    let mut buf = Vec::new();
    let mut input = input;
    let mut line = 0u64;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line += 1;
        let text = String::from_utf8_lossy(&buf);
        if text.trim().is_empty() {
            continue;
        }
        report.rows_read += 1;
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(obj)) => {
                let field = |i: usize| names.get(i).and_then(|n| obj.get(n)).and_then(json_field);
                accept(&columns, line, &field, report, &mut sink);
            }
            Ok(_) => report.reject(RejectReason::BadJson, line, "not a json object"),
            Err(e) => report.reject(RejectReason::BadJson, line, e.to_string()),
        }
    }
    Ok(())
}

fn cell_text(cell: &Data) -> Option<String> {
    match cell {
        Data::Empty => None,
        Data::String(s) => Some(s.clone()),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(format!("{}", *f as i64)),
        Data::DateTime(d) => {
            let (y, m, day, ..) = d.to_ymd_hms_milli();
            Some(format!("{y:04}-{m:02}-{day:02}"))
        }
        Data::DateTimeIso(s) | Data::DurationIso(s) => Some(s.clone()),
        Data::Error(_) => None,
        other => Some(other.to_string()),
    }
}

fn read_xlsx(
    path: &Path,
    mapping: &ColumnMapping,
    report: &mut ReadReport,
    mut sink: impl FnMut(Record),
) -> Result<()> {
    report.encoding = "utf-8";
    let mut workbook =
        calamine::open_workbook_auto(path).map_err(|e| Error::Xlsx(e.to_string()))?;
    let sheet = match &mapping.sheet {
        Some(name) => name.clone(),
        None => workbook
            .sheet_names()
            .first()
            .cloned()
            .ok_or_else(|| Error::Xlsx("workbook has no sheets".into()))?,
    };
    let range = workbook
        .worksheet_range(&sheet)
        .map_err(|e| Error::Xlsx(format!("sheet `{sheet}`: {e}")))?;
    let start_row = range.start().map_or(0, |(r, _)| u64::from(r));
    let mut rows = range.rows().enumerate();
    let header: Vec<String> = loop {
        match rows.next() {
            None => return Err(Error::NoHeader),
            Some((_, row)) if row.iter().all(|c| matches!(c, Data::Empty)) => continue,
            Some((_, row)) => {
                break row
                    .iter()
                    .map(|c| cell_text(c).unwrap_or_default())
                    .collect();
            }
        }
    };
    let columns = Columns::locate(&header, mapping)?;
    for (i, row) in rows {
        if row.iter().all(|c| matches!(c, Data::Empty)) {
            continue;
        }
        report.rows_read += 1;
        let line = start_row + i as u64 + 1;
        accept(
            &columns,
            line,
            &|j| row.get(j).and_then(cell_text),
            report,
            &mut sink,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(text: &[&str], labels: &[(&str, &str)]) -> ColumnMapping {
        ColumnMapping {
            text: text.iter().map(|s| s.to_string()).collect(),
            labels: labels
                .iter()
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn read(bytes: &[u8], m: &ColumnMapping) -> LabeledSet {
        read_labeled_from(bytes, m).expect("readable csv")
    }

    #[test]
    fn semicolons_quotes_and_multiline_fields() {
        let csv = "texto;tipo\n\"hola; qué tal\nsegunda línea\";Queja\nbien;Felicitación \n";
        let set = read(csv.as_bytes(), &mapping(&["texto"], &[("type", "tipo")]));
        assert_eq!(set.report.delimiter, Some(';'));
        assert_eq!(set.records.len(), 2);
        assert_eq!(set.records[0].text, "hola; qué tal\nsegunda línea");
        assert_eq!(set.records[1].labels, vec!["felicitacion"]);
        assert_eq!(set.records[1].line, 4);
    }

    #[test]
    fn bom_and_latin1_are_decoded() {
        let mut bom = b"\xEF\xBB\xBFtexto,tipo\nno me pagaron,Reclamo\n".to_vec();
        let set = read(&bom, &mapping(&["texto"], &[("type", "tipo")]));
        assert_eq!(set.records.len(), 1);
        bom.clear();
        bom.extend_from_slice(
            b"texto,tipo\nla funcionaria me trat\xF3 mal,Queja\nNi\xF1o sin cupo,Petici\xF3n\n",
        );
        let set = read(&bom, &mapping(&["texto"], &[("type", "tipo")]));
        assert_eq!(set.report.encoding, "windows-1252");
        assert_eq!(set.records[0].text, "la funcionaria me trató mal");
        assert_eq!(set.records[1].labels, vec!["peticion"]);
    }

    #[test]
    fn bad_rows_are_counted_with_line_numbers() {
        let csv = "id,texto,tipo,fecha\n1,,queja,2024-01-02\n2,hola,,2024-01-02\n3,hola,queja,ayer\n4,hola,queja\n5,bien,reclamo,02/01/2024\n";
        let mut m = mapping(&["texto"], &[("type", "tipo")]);
        m.date = Some("fecha".into());
        m.id = Some("id".into());
        let set = read(csv.as_bytes(), &m);
        let r = &set.report;
        assert_eq!((r.rows_read, r.rows_accepted, r.rows_rejected()), (5, 1, 4));
        for (reason, line) in [
            (RejectReason::EmptyText, 2),
            (RejectReason::MissingLabel, 3),
            (RejectReason::BadDate, 4),
            (RejectReason::WrongColumnCount, 5),
        ] {
            let (n, examples) = &r.rejected[&reason];
            assert_eq!((*n, examples[0].0), (1, line), "{reason:?}");
        }
        assert_eq!(set.records[0].date, NaiveDate::from_ymd_opt(2024, 1, 2));
        assert_eq!(set.records[0].id.as_deref(), Some("5"));
    }

    #[test]
    fn several_text_columns_are_joined_and_missing_columns_named() {
        let csv = "desc,solicitud,area\nno llegó el pago,revisen por favor,subsidio\n";
        let set = read(
            csv.as_bytes(),
            &mapping(&["desc", "solicitud"], &[("area", "area")]),
        );
        assert_eq!(set.records[0].text, "no llegó el pago\nrevisen por favor");
        let err = read_labeled_from(csv.as_bytes(), &mapping(&["texto"], &[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "column `texto` not found; the file has: desc, solicitud, area"
        );
    }

    #[test]
    fn dates_in_colombian_formats() {
        for (raw, ok) in [
            ("2023-09-01", true),
            ("01/09/2023", true),
            ("2023-09-01 10:22:00", true),
            ("2023-09-01T10:22:00-05:00", true),
            ("1 sept", false),
            ("", false),
        ] {
            assert_eq!(parse_date(raw).is_some(), ok, "{raw}");
        }
    }

    #[test]
    fn jsonl_lines_are_objects() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("h.jsonl");
        std::fs::write(&path, "{\"texto\":\"hola\",\"tipo\":\"Queja\"}\n\n[1,2]\n{\"texto\":\"x\",\"tipo\":3}\nnope\n").expect("write");
        let set = read_labeled(&path, &mapping(&["texto"], &[("type", "tipo")])).expect("jsonl");
        assert_eq!(set.records.len(), 2);
        assert_eq!(set.records[1].labels, vec!["3"]);
        assert_eq!(set.report.rejected[&RejectReason::BadJson].0, 2);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_in_a_field_never_panic(field in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let mut csv = b"texto,tipo\n".to_vec();
            csv.extend_from_slice(&field);
            csv.extend_from_slice(b",queja\nhola,reclamo\n");
            let set = read_labeled_from(&csv[..], &mapping(&["texto"], &[("type", "tipo")])).expect("header is valid");
            proptest::prop_assert_eq!(set.report.rows_read, set.report.rows_accepted + set.report.rows_rejected());
        }
    }
}
