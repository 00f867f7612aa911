//! Reads the committed fixtures (a Latin-1 CSV, a malformed CSV, an XLSX) and checks that arbitrary XLSX cells
//! never panic the reader.

use std::path::PathBuf;

use datasets::{ColumnMapping, RejectReason, read_labeled};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn mapping(date: bool) -> ColumnMapping {
    ColumnMapping {
        text: vec!["texto".into()],
        labels: vec![("type".into(), "tipo".into())],
        date: date.then(|| "fecha".into()),
        ..Default::default()
    }
}

fn write_workbook(path: &std::path::Path, rows: &[[&str; 3]]) {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book
        .add_worksheet()
        .set_name("PQRS")
        .expect("valid sheet name");
    for (r, row) in rows.iter().enumerate() {
        for (c, value) in row.iter().enumerate() {
            sheet
                .write_string(r as u32, c as u16, *value)
                .expect("cell within limits");
        }
    }
    book.save(path).expect("workbook saved");
}

#[test]
fn latin1_csv_with_semicolons_and_crlf() {
    let set = read_labeled(&fixture("latin1.csv"), &mapping(true)).expect("fixture reads");
    assert_eq!(set.report.encoding, "windows-1252");
    assert_eq!(set.report.delimiter, Some(';'));
    assert_eq!(set.records.len(), 3);
    assert_eq!(
        set.records[0].text,
        "La funcionaria me trató muy mal en la sede"
    );
    assert_eq!(
        set.records[1].text,
        "NO ME HAN PAGADO LA CUOTA DEL NIÑO\r\nDESDE ENERO"
    );
    assert_eq!(set.records[2].labels, vec!["peticion"]);
}

#[test]
fn malformed_csv_reports_every_reason_with_its_line() {
    let set = read_labeled(&fixture("malformed.csv"), &mapping(true)).expect("fixture reads");
    let r = &set.report;
    assert_eq!((r.rows_read, r.rows_accepted), (6, 1));
    let first_line = |reason| r.rejected.get(&reason).map(|(n, ex)| (*n, ex[0].0));
    assert_eq!(first_line(RejectReason::EmptyText), Some((1, 3)));
    assert_eq!(first_line(RejectReason::MissingLabel), Some((1, 4)));
    assert_eq!(first_line(RejectReason::BadDate), Some((1, 5)));
    assert_eq!(first_line(RejectReason::WrongColumnCount), Some((2, 6)));
}

#[test]
fn xlsx_first_and_named_sheet() {
    let set = read_labeled(&fixture("history.xlsx"), &mapping(false)).expect("fixture reads");
    assert_eq!(set.records.len(), 2);
    assert_eq!(set.records[0].labels, vec!["felicitacion"]);
    assert_eq!(set.records[1].line, 4, "row numbers count the blank row");
    let mut named = mapping(false);
    named.sheet = Some("PQRS".into());
    assert_eq!(
        read_labeled(&fixture("history.xlsx"), &named)
            .expect("named sheet")
            .records
            .len(),
        2
    );
    named.sheet = Some("Otra".into());
    let err = read_labeled(&fixture("history.xlsx"), &named).expect_err("no such sheet");
    assert!(err.to_string().contains("Otra"), "{err}");
}

/// Regenerates `fixtures/history.xlsx` (run with `--ignored` after changing it).
#[test]
#[ignore]
fn write_xlsx_fixture() {
    write_workbook(
        &fixture("history.xlsx"),
        &[
            ["texto", "tipo", "canal"],
            [
                "Muy buena atención en la sede de San Ignacio, gracias",
                "Felicitación",
                "presencial",
            ],
            ["", "", ""],
            [
                "LA TARJETA DEL SUBSIDIO ESTA BLOQUEADA",
                " Reclamo",
                "buzon",
            ],
            ["", "queja", "web"],
        ],
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    #[test]
    fn arbitrary_xlsx_cells_never_panic(text in "\\PC{0,300}", label in "\\PC{0,20}") {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("p.xlsx");
        write_workbook(&path, &[["texto", "tipo", "x"], [&text, &label, "1"]]);
        let set = read_labeled(&path, &mapping(false)).expect("header is valid");
        proptest::prop_assert_eq!(set.report.rows_read, set.report.rows_accepted + set.report.rows_rejected());
    }
}
