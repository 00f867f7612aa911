//! Evaluation reports: a text summary for the terminal, and `report.md`, `metrics.json` and SVG charts
//! (confusion heat map, reliability diagram) written to a directory.

use std::fmt::Write as _;
use std::path::Path;

use models::Model;

use crate::evaluate::Evaluation;
use crate::metrics::HeadMetrics;
use crate::{Error, Result};

/// One line per head: n, accuracy, macro- and weighted-F1, ECE and accuracy at 90/80 % coverage.
pub fn summary_table(evaluation: &Evaluation) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:>6} {:>9} {:>9} {:>9} {:>6} {:>8} {:>8}",
        "head", "n", "accuracy", "macro-F1", "wght-F1", "ECE", "acc@90%", "acc@80%"
    );
    for h in &evaluation.heads {
        let _ = writeln!(
            out,
            "{:<12} {:>6} {:>9.4} {:>9.4} {:>9.4} {:>6.3} {:>8.4} {:>8.4}",
            h.head,
            h.n,
            h.accuracy,
            h.macro_f1,
            h.weighted_f1,
            h.ece,
            h.coverage.get(1).map_or(f64::NAN, |c| c.accuracy),
            h.coverage.get(2).map_or(f64::NAN, |c| c.accuracy),
        );
    }
    for (head, unknown) in &evaluation.unknown_labels {
        let list: Vec<String> = unknown.iter().map(|(l, n)| format!("{l} ({n})")).collect();
        let _ = writeln!(
            out,
            "head `{head}`: gold labels unknown to the model, counted as errors: {}",
            list.join(", ")
        );
    }
    out
}

fn write_file(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(|source| Error::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Writes `report.md`, `metrics.json`, `confusion_<head>.svg` and `reliability_<head>.svg` into `dir`.
pub fn write(dir: &Path, evaluation: &Evaluation, model: &Model) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let heads: serde_json::Map<String, serde_json::Value> = evaluation
        .heads
        .iter()
        .map(|h| {
            (
                h.head.clone(),
                serde_json::to_value(h).expect("metrics serialise"),
            )
        })
        .collect();
    let json = serde_json::json!({
        "model_id": model.info.id,
        "model_created_at": model.info.created_at,
        "n": evaluation.n,
        "scoring_seconds": evaluation.seconds,
        "heads": heads,
        "unknown_labels": evaluation.unknown_labels,
    });
    write_file(
        &dir.join("metrics.json"),
        &serde_json::to_string_pretty(&json).expect("json serialises"),
    )?;

    let mut md = String::new();
    let _ = writeln!(md, "# Evaluation report\n");
    let _ = writeln!(
        md,
        "Model `{}` (created {}), {} comments, scored in {:.3} s.\n",
        model.info.id, model.info.created_at, evaluation.n, evaluation.seconds
    );
    let _ = writeln!(md, "```\n{}```\n", summary_table(evaluation));
    for h in &evaluation.heads {
        head_section(&mut md, h);
        write_file(
            &dir.join(format!("confusion_{}.svg", file_safe(&h.head))),
            &confusion_svg(h),
        )?;
        write_file(
            &dir.join(format!("reliability_{}.svg", file_safe(&h.head))),
            &reliability_svg(h),
        )?;
    }
    write_file(&dir.join("report.md"), &md)
}

fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn head_section(md: &mut String, h: &HeadMetrics) {
    let name = file_safe(&h.head);
    let _ = writeln!(md, "## Head `{}`\n", h.head);
    let _ = writeln!(
        md,
        "accuracy {:.4} · macro-F1 {:.4} · weighted-F1 {:.4} · ECE {:.4}\n",
        h.accuracy, h.macro_f1, h.weighted_f1, h.ece
    );
    let _ = writeln!(
        md,
        "| coverage | accuracy | lowest confidence answered |\n|---:|---:|---:|"
    );
    for c in &h.coverage {
        let _ = writeln!(
            md,
            "| {:.0} % | {:.4} | {:.3} |",
            c.coverage * 100.0,
            c.accuracy,
            c.min_confidence
        );
    }
    let _ = writeln!(
        md,
        "\n| label | precision | recall | F1 | support |\n|---|---:|---:|---:|---:|"
    );
    for c in &h.per_class {
        let _ = writeln!(
            md,
            "| {} | {:.3} | {:.3} | {:.3} | {} |",
            c.label, c.precision, c.recall, c.f1, c.support
        );
    }
    let _ = writeln!(
        md,
        "\nConfusion matrix (rows gold, columns predicted):\n\n```"
    );
    let width = h.labels.iter().map(|l| l.len()).max().unwrap_or(4).min(24);
    let _ = write!(md, "{:>width$} ", "");
    for j in 0..h.labels.len() {
        let _ = write!(md, "{j:>5}");
    }
    let _ = writeln!(md);
    for (i, row) in h.confusion.iter().enumerate() {
        let label: String = h.labels[i].chars().take(width).collect();
        let _ = write!(md, "{label:>width$} ");
        for v in row {
            let _ = write!(md, "{v:>5}");
        }
        let _ = writeln!(md, "   ({i})");
    }
    let _ = writeln!(md, "```\n");
    let _ = writeln!(
        md,
        "![confusion](confusion_{name}.svg) ![reliability](reliability_{name}.svg)\n"
    );
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Heat map of the row-normalised confusion matrix.
pub fn confusion_svg(h: &HeadMetrics) -> String {
    let n = h.labels.len();
    let cell = if n > 30 { 14.0 } else { 28.0 };
    let margin = 190.0;
    let size = margin + cell * n as f64 + 20.0;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" font-family="sans-serif" font-size="{fs}">"#,
        fs = if n > 30 { 8 } else { 11 }
    );
    let _ = write!(
        svg,
        r#"<text x="4" y="14" font-size="13">{} (rows gold, columns predicted)</text>"#,
        escape(&h.head)
    );
    for (i, row) in h.confusion.iter().enumerate() {
        let total: usize = row.iter().sum();
        let y = margin + cell * i as f64;
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            margin - 4.0,
            y + cell * 0.7,
            escape(&h.labels[i])
        );
        for (j, &v) in row.iter().enumerate() {
            let share = if total == 0 {
                0.0
            } else {
                v as f64 / total as f64
            };
            let shade = (255.0 * (1.0 - share)) as u8;
            let x = margin + cell * j as f64;
            let _ = write!(
                svg,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="rgb({shade},{shade},255)" stroke="#ddd"><title>{} → {}: {v}</title></rect>"##,
                escape(&h.labels[i]),
                escape(&h.labels[j])
            );
            if v > 0 && n <= 30 {
                let color = if share > 0.5 { "white" } else { "black" };
                let _ = write!(
                    svg,
                    r#"<text x="{}" y="{}" text-anchor="middle" fill="{color}">{v}</text>"#,
                    x + cell / 2.0,
                    y + cell * 0.65
                );
            }
        }
    }
    for (j, label) in h.labels.iter().enumerate() {
        let x = margin + cell * j as f64 + cell * 0.7;
        let _ = write!(
            svg,
            r#"<text transform="translate({x},{}) rotate(-60)">{}</text>"#,
            margin - 4.0,
            escape(label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Reliability diagram: accuracy per confidence bin against the diagonal, bar width by count.
pub fn reliability_svg(h: &HeadMetrics) -> String {
    let (w, hgt, m) = (360.0, 360.0, 40.0);
    let plot = w - 2.0 * m;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{hgt}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        svg,
        r#"<text x="{m}" y="20" font-size="13">{}: reliability (ECE {:.3})</text>"#,
        escape(&h.head),
        h.ece
    );
    let _ = write!(
        svg,
        r##"<rect x="{m}" y="{m}" width="{plot}" height="{plot}" fill="none" stroke="#999"/>"##
    );
    let _ = write!(
        svg,
        r##"<line x1="{m}" y1="{}" x2="{}" y2="{m}" stroke="#bbb" stroke-dasharray="4"/>"##,
        m + plot,
        m + plot
    );
    let max_count = h
        .reliability
        .iter()
        .map(|b| b.count)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    for b in &h.reliability {
        if b.count == 0 {
            continue;
        }
        let x = m + plot * b.lower;
        let width = plot * (b.upper - b.lower);
        let height = plot * b.accuracy;
        let opacity = 0.25 + 0.75 * b.count as f64 / max_count;
        let _ = write!(
            svg,
            r##"<rect x="{x}" y="{}" width="{width}" height="{height}" fill="#3b6fd8" fill-opacity="{opacity:.2}" stroke="#fff"><title>confidence {:.2}-{:.2}: {} comments, accuracy {:.3}, mean confidence {:.3}</title></rect>"##,
            m + plot - height,
            b.lower,
            b.upper,
            b.count,
            b.accuracy,
            b.confidence
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">confidence</text>"#,
        m + plot / 2.0,
        hgt - 8.0
    );
    let _ = write!(
        svg,
        r#"<text transform="translate(14,{}) rotate(-90)" text-anchor="middle">accuracy</text>"#,
        m + plot / 2.0
    );
    svg.push_str("</svg>\n");
    svg
}
