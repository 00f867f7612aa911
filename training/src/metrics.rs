//! Classification metrics per head: accuracy, macro- and weighted-F1, per-class precision/recall/F1/support,
//! confusion matrix, expected calibration error with reliability bins, and accuracy at reduced coverage.
//!
//! Conventions follow scikit-learn so that figures can be compared with the peers: macro-F1 averages over the
//! labels present in the gold or the predictions, and a precision or recall of 0/0 counts as 0. Gold labels the
//! model does not know are kept as extra rows of the confusion matrix and always count as errors.

use serde::Serialize;

/// Precision, recall and F1 of one label.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassMetrics {
    /// Label id.
    pub label: String,
    /// Share of predictions of this label that were right.
    pub precision: f64,
    /// Share of this label's gold comments that were found.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Gold comments with this label.
    pub support: usize,
}

/// One bin of the reliability diagram.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReliabilityBin {
    /// Lower edge of the confidence bin.
    pub lower: f64,
    /// Upper edge.
    pub upper: f64,
    /// Predictions in the bin.
    pub count: usize,
    /// Mean confidence of those predictions.
    pub confidence: f64,
    /// Their accuracy.
    pub accuracy: f64,
}

/// Accuracy when only the most confident share of comments is answered automatically.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CoveragePoint {
    /// Share of comments answered (1.0, 0.9, 0.8).
    pub coverage: f64,
    /// Accuracy on those.
    pub accuracy: f64,
    /// Lowest confidence answered.
    pub min_confidence: f64,
}

/// Everything measured for one head.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HeadMetrics {
    /// Head name.
    pub head: String,
    /// Comments evaluated.
    pub n: usize,
    /// Share right.
    pub accuracy: f64,
    /// Unweighted mean of per-label F1.
    pub macro_f1: f64,
    /// Support-weighted mean of per-label F1.
    pub weighted_f1: f64,
    /// Expected calibration error (15 equal-width bins).
    pub ece: f64,
    /// Per label, in the model's label order, then unknown gold labels.
    pub per_class: Vec<ClassMetrics>,
    /// Row = gold, column = predicted, over `labels`.
    pub confusion: Vec<Vec<usize>>,
    /// Labels of the confusion matrix: the model's labels, then gold labels it does not know.
    pub labels: Vec<String>,
    /// Reliability diagram bins.
    pub reliability: Vec<ReliabilityBin>,
    /// Accuracy at 100, 90 and 80 % coverage.
    pub coverage: Vec<CoveragePoint>,
}

/// Macro-F1 of label indices (labels `0..k`, extra gold indices allowed) without building the full report.
pub fn macro_f1(gold: &[u32], predicted: &[u32], k: usize) -> f64 {
    let counts = LabelCounts::of(gold, predicted, k);
    let mut sum = 0.0;
    let mut present = 0;
    for c in 0..counts.tp.len() {
        if counts.gold[c] + counts.predicted[c] == 0 {
            continue;
        }
        present += 1;
        sum += counts.f1(c);
    }
    if present == 0 {
        0.0
    } else {
        sum / present as f64
    }
}

/// Per label `0..k`: its F1 and its gold count, the terms [`macro_f1`] averages.
pub fn label_f1(gold: &[u32], predicted: &[u32], k: usize) -> Vec<(f64, usize)> {
    let counts = LabelCounts::of(gold, predicted, k);
    (0..k).map(|c| (counts.f1(c), counts.gold[c])).collect()
}

/// True positives, gold and predicted counts per label index, over `0..k` and any higher index that occurs.
struct LabelCounts {
    tp: Vec<usize>,
    gold: Vec<usize>,
    predicted: Vec<usize>,
}

impl LabelCounts {
    fn of(gold: &[u32], predicted: &[u32], k: usize) -> Self {
        let n = gold
            .iter()
            .chain(predicted)
            .map(|&g| g as usize + 1)
            .max()
            .unwrap_or(0)
            .max(k);
        let mut counts = LabelCounts {
            tp: vec![0; n],
            gold: vec![0; n],
            predicted: vec![0; n],
        };
        for (&g, &p) in gold.iter().zip(predicted) {
            counts.gold[g as usize] += 1;
            counts.predicted[p as usize] += 1;
            if g == p {
                counts.tp[g as usize] += 1;
            }
        }
        counts
    }

    fn f1(&self, label: usize) -> f64 {
        f1(self.tp[label], self.predicted[label], self.gold[label])
    }
}

/// `part / whole`, and 0 for an empty whole (scikit-learn's `zero_division=0`).
fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn f1(tp: usize, predicted: usize, gold: usize) -> f64 {
    if tp == 0 {
        return 0.0;
    }
    let p = tp as f64 / predicted as f64;
    let r = tp as f64 / gold as f64;
    2.0 * p * r / (p + r)
}

/// Computes every metric of one head. `gold` indices `>= labels.len()` name `unknown_gold[i - labels.len()]`.
pub fn evaluate_head(
    head: &str,
    labels: &[String],
    gold: &[u32],
    predicted: &[u32],
    confidence: &[f32],
    unknown_gold: &[String],
) -> HeadMetrics {
    let mut all_labels: Vec<String> = labels.to_vec();
    all_labels.extend_from_slice(unknown_gold);
    let n_labels = all_labels.len();
    let mut confusion = vec![vec![0usize; n_labels]; n_labels];
    for (&g, &p) in gold.iter().zip(predicted) {
        confusion[g as usize][p as usize] += 1;
    }
    let n = gold.len();
    let correct: usize = (0..n_labels).map(|c| confusion[c][c]).sum();
    let mut per_class = Vec::with_capacity(n_labels);
    let (mut macro_sum, mut present, mut weighted_sum) = (0.0, 0usize, 0.0);
    for c in 0..n_labels {
        let tp = confusion[c][c];
        let support: usize = confusion[c].iter().sum();
        let predicted_count: usize = confusion.iter().map(|row| row[c]).sum();
        let class_f1 = f1(tp, predicted_count, support);
        if support + predicted_count > 0 {
            present += 1;
            macro_sum += class_f1;
        }
        weighted_sum += class_f1 * support as f64;
        per_class.push(ClassMetrics {
            label: all_labels[c].clone(),
            precision: share(tp, predicted_count),
            recall: share(tp, support),
            f1: class_f1,
            support,
        });
    }
    let (ece, reliability) = calibration(gold, predicted, confidence, 15);
    HeadMetrics {
        head: head.to_string(),
        n,
        accuracy: share(correct, n),
        macro_f1: if present == 0 {
            0.0
        } else {
            macro_sum / present as f64
        },
        weighted_f1: if n == 0 { 0.0 } else { weighted_sum / n as f64 },
        ece,
        per_class,
        confusion,
        labels: all_labels,
        reliability,
        coverage: coverage(gold, predicted, confidence, &[1.0, 0.9, 0.8]),
    }
}

fn calibration(
    gold: &[u32],
    predicted: &[u32],
    confidence: &[f32],
    bins: usize,
) -> (f64, Vec<ReliabilityBin>) {
    let mut count = vec![0usize; bins];
    let mut conf_sum = vec![0.0f64; bins];
    let mut right = vec![0usize; bins];
    for ((&g, &p), &c) in gold.iter().zip(predicted).zip(confidence) {
        let b = ((f64::from(c) * bins as f64) as usize).min(bins - 1);
        count[b] += 1;
        conf_sum[b] += f64::from(c);
        right[b] += usize::from(g == p);
    }
    let n = gold.len().max(1) as f64;
    let mut ece = 0.0;
    let mut out = Vec::with_capacity(bins);
    for b in 0..bins {
        let (confidence, accuracy) = if count[b] == 0 {
            (0.0, 0.0)
        } else {
            (
                conf_sum[b] / count[b] as f64,
                right[b] as f64 / count[b] as f64,
            )
        };
        ece += count[b] as f64 / n * (confidence - accuracy).abs();
        out.push(ReliabilityBin {
            lower: b as f64 / bins as f64,
            upper: (b + 1) as f64 / bins as f64,
            count: count[b],
            confidence,
            accuracy,
        });
    }
    (ece, out)
}

fn coverage(
    gold: &[u32],
    predicted: &[u32],
    confidence: &[f32],
    levels: &[f64],
) -> Vec<CoveragePoint> {
    let mut order: Vec<usize> = (0..gold.len()).collect();
    order.sort_by(|&a, &b| confidence[b].total_cmp(&confidence[a]));
    levels
        .iter()
        .map(|&coverage| {
            let m = ((gold.len() as f64 * coverage).round() as usize).min(gold.len());
            let right = order[..m]
                .iter()
                .filter(|&&i| gold[i] == predicted[i])
                .count();
            CoveragePoint {
                coverage,
                accuracy: share(right, m),
                min_confidence: if m == 0 {
                    1.0
                } else {
                    f64::from(confidence[order[m - 1]])
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::prelude::ToConfusionMatrix;

    #[test]
    fn matches_scikit_learn_on_a_small_case() {
        // sklearn.metrics.f1_score([0,0,1,1,2,2], [0,1,1,1,2,0], average='macro') = 0.6556 (per class 0.5, 0.8, 0.667)
        let gold = [0, 0, 1, 1, 2, 2];
        let predicted = [0, 1, 1, 1, 2, 0];
        assert!((macro_f1(&gold, &predicted, 3) - 0.655_556).abs() < 1e-5);
        let per_label = label_f1(&gold, &predicted, 3);
        for ((f1, comments), expected) in per_label.iter().zip([0.5, 0.8, 2.0 / 3.0]) {
            assert!((f1 - expected).abs() < 1e-12, "{per_label:?}");
            assert_eq!(*comments, 2);
        }
        let labels: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let m = evaluate_head("h", &labels, &gold, &predicted, &[0.9; 6], &[]);
        assert!((m.accuracy - 4.0 / 6.0).abs() < 1e-12);
        assert!((m.macro_f1 - 0.655_556).abs() < 1e-5);
        assert_eq!(
            m.confusion,
            vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 1]]
        );
    }

    #[test]
    fn agrees_with_linfa_confusion_matrix() {
        let gold = ndarray::array![0usize, 0, 1, 1, 2, 2, 2, 1, 0];
        let predicted = ndarray::array![0usize, 2, 1, 1, 2, 0, 2, 1, 0];
        let cm = predicted.confusion_matrix(&gold).expect("same length");
        let g: Vec<u32> = gold.iter().map(|&x| x as u32).collect();
        let p: Vec<u32> = predicted.iter().map(|&x| x as u32).collect();
        let labels: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let ours = evaluate_head("h", &labels, &g, &p, &[0.5; 9], &[]);
        assert!((f64::from(cm.accuracy()) - ours.accuracy).abs() < 1e-6);
        let linfa_f1: f64 = cm
            .split_one_vs_all()
            .iter()
            .map(|b| f64::from(b.f1_score()))
            .sum::<f64>()
            / 3.0;
        assert!(
            (linfa_f1 - ours.macro_f1).abs() < 1e-5,
            "linfa {linfa_f1} ours {}",
            ours.macro_f1
        );
    }

    #[test]
    fn unknown_gold_labels_are_errors() {
        let labels: Vec<String> = ["a", "b"].map(String::from).to_vec();
        let m = evaluate_head(
            "h",
            &labels,
            &[0, 2, 1],
            &[0, 1, 1],
            &[0.9, 0.8, 0.7],
            &["zeta".into()],
        );
        assert_eq!(m.labels.len(), 3);
        assert!((m.accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.per_class[2].support, 1);
        assert_eq!(m.per_class[2].f1, 0.0);
    }

    #[test]
    fn calibration_and_coverage() {
        let labels: Vec<String> = ["a", "b"].map(String::from).to_vec();
        let m = evaluate_head(
            "h",
            &labels,
            &[0, 0, 1, 1],
            &[0, 0, 1, 0],
            &[1.0, 1.0, 0.95, 0.55],
            &[],
        );
        // Bin 14 holds 1.0, 1.0, 0.95 (all right): |0.9833 - 1| · 3/4; bin 8 holds 0.55 (wrong): 0.55 · 1/4.
        let expected = (2.95f64 / 3.0 - 1.0).abs() * 0.75 + 0.55 * 0.25;
        assert!((m.ece - expected).abs() < 1e-6, "{} vs {expected}", m.ece);
        assert_eq!(m.coverage[0].accuracy, 0.75);
        assert_eq!(m.coverage[2].coverage, 0.8);
        assert_eq!(m.coverage[2].accuracy, 1.0);
    }
}
