//! The fast classifier: linear softmax heads over TF-IDF-weighted hashed n-grams, with temperature calibration,
//! per-class review thresholds, a parent constraint between heads (theme ⊂ area) and n-gram explanations.
//!
//! Data flows one way: text → [`Normalizer`] → [`Featurizer`] buckets → compact rows → sparse TF-IDF vector →
//! one logit block per head → calibrated softmax → parent-constrained decode → [`Prediction`].
//!
//! Layout, chosen for the hot path: the `2^table_bits` hash buckets are remapped to the rows seen at training
//! (`row_of_bucket`, `u32::MAX` for never seen, which are skipped exactly as scikit-learn drops
//! out-of-vocabulary terms). Each row holds the weights of *all* heads' classes side by side, so one feature
//! costs one contiguous read of `total_classes` floats.

use std::cmp::Ordering;

use crate::features::{FeatureConfig, FeatureScratch, Featurizer, NgramSpan};
use crate::normalize::{NormalizeScratch, Normalizer, NormalizerConfig};
use crate::prediction::{Evidence, HeadPrediction, Prediction, Scored};
use crate::prefetch::{prefetch, prefetch_range};

/// N-grams present in more than about a fifth of the training comments (smoothed idf below this) are left out of
/// explanations.
pub const EXPLAIN_MIN_IDF: f32 = 2.5;

/// Marks a bucket that no training comment used.
pub const UNSEEN: u32 = u32::MAX;

/// One label set (type, theme, area, or any head of the user's data).
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// Head name (`type`).
    pub name: String,
    /// Label ids in column order.
    pub labels: Vec<String>,
    /// Softmax temperature fitted on validation (1.0 = uncalibrated).
    pub temperature: f32,
    /// Per-label confidence under which a prediction needs human review (same order as `labels`).
    pub thresholds: Vec<f32>,
    /// When every label of this head belongs to exactly one label of another head (theme → area).
    pub parent: Option<ParentLink>,
}

/// The constraint "this head's label determines that head's label", used at decode time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentLink {
    /// Index of the parent head in the model's head list.
    pub head: usize,
    /// For each label of the child head, the index of its parent label.
    pub parent_of_label: Vec<u32>,
}

/// The trained weights and everything needed to apply them.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    /// Normaliser configuration used at training.
    pub normalizer: NormalizerConfig,
    /// Featuriser configuration used at training.
    pub features: FeatureConfig,
    /// For each hash bucket, its row in `idf`/`weights`, or [`UNSEEN`].
    pub row_of_bucket: Vec<u32>,
    /// Inverse document frequency of each row.
    pub idf: Vec<f32>,
    /// Row-major `rows × total_classes` weights; head `h` owns columns `offsets[h]..offsets[h+1]`.
    pub weights: Vec<f32>,
    /// One bias per class, same column layout.
    pub bias: Vec<f32>,
    /// The heads in column order.
    pub heads: Vec<Head>,
    /// Row-major `rows × heads`: the mean of each head's weights in each row, which every explanation subtracts
    /// from the chosen label's weight. Derived from `weights` by [`LinearModel::new`], never stored in an
    /// artifact: computing it once here instead of once per candidate n-gram makes explanations nearly free.
    head_means: Vec<f32>,
}

/// Reusable buffers for one thread: with them, scoring a comment allocates nothing once they have grown.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    normalize: NormalizeScratch,
    features: FeatureScratch,
    /// The normalised text of the last comment scored.
    pub normalized: String,
    /// The bucket of every n-gram of the comment, in text order: collected first, so that their rows can be
    /// prefetched while the featuriser still hashes, then resolved in a second pass.
    buckets: Vec<u32>,
    rows: Vec<u32>,
    /// The radix sort's second buffer for `rows`.
    spare_rows: Vec<u32>,
    vector: Vec<(u32, f32)>,
    /// Calibrated, parent-constrained probabilities of the last comment, all heads side by side.
    pub probabilities: Vec<f32>,
    /// Chosen label index of each head for the last comment (see [`LinearModel::decode`]).
    pub chosen: Vec<usize>,
    /// While explaining: one key per feature occurrence, `row << 32 | unquotable << 31 | occurrence`; sorted by
    /// row (stably), a row's occurrences stay together in text order.
    keyed_rows: Vec<u64>,
    /// The radix sort's second buffer for `keyed_rows`.
    spare_keyed_rows: Vec<u64>,
    /// While explaining: the span of every n-gram of the comment (seen or not), indexed by the key's occurrence
    /// number.
    spans: Vec<NgramSpan>,
    /// N-grams an explanation may quote: one per row of `vector`, at its first quotable occurrence.
    candidates: Vec<Candidate>,
    /// Per head, the strongest evidence found so far, strongest first.
    strongest: Vec<Vec<Ranked>>,
    /// Indices of one head's labels in top-k order.
    order: Vec<usize>,
}

/// A row of the comment's vector that an explanation may quote.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    /// Index in `Scratch::vector`.
    index: usize,
    /// Where the row first occurs, quotably, in the normalised text.
    span: NgramSpan,
    /// Occurrence number: the order in which the featuriser emitted it.
    occurrence: u32,
}

/// A piece of evidence for one head: a candidate and its contribution to the chosen label.
#[derive(Debug, Clone, Copy)]
struct Ranked {
    weight: f32,
    span: NgramSpan,
    occurrence: u32,
}

impl Ranked {
    /// Explanation order: strongest first, then earliest in the text, then first emitted.
    fn order(&self, other: &Self) -> Ordering {
        other
            .weight
            .total_cmp(&self.weight)
            .then(self.span.start.cmp(&other.span.start))
            .then(self.occurrence.cmp(&other.occurrence))
    }
}

/// How many rows ahead of the one being read the scoring loops prefetch: far enough for a row to arrive from
/// the last-level cache while the rows before it are summed, near enough not to evict them.
const ROWS_AHEAD: usize = 4;

/// Occurrence numbers take 31 bits of a key; occurrences past this one are counted but never quoted.
const MAX_OCCURRENCE: u32 = (1 << 31) - 1;
/// The key bit of an occurrence too short to quote.
const UNQUOTABLE: u64 = 1 << 31;

/// What [`LinearModel::predict`] should include.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PredictOptions {
    /// Labels in each head's top-k (at least 1).
    pub top_k: usize,
    /// N-grams in each head's explanation (0: none, and no cost).
    pub explain: usize,
}

impl Default for PredictOptions {
    fn default() -> Self {
        Self {
            top_k: 3,
            explain: 5,
        }
    }
}

impl Scratch {
    /// The TF-IDF vector of the last comment vectorised or scored: `(row, value)` sorted by row, the word block and
    /// the character block each L2-normalised. Used to compare comments in the model's own feature space.
    pub fn vector(&self) -> &[(u32, f32)] {
        &self.vector
    }
}

impl LinearModel {
    /// A model from its parts, with the per-row head means explanations use. Shapes are not checked here (see
    /// [`LinearModel::check_shapes`]); mismatched parts only give a model that `check_shapes` refuses.
    pub fn new(
        normalizer: NormalizerConfig,
        features: FeatureConfig,
        row_of_bucket: Vec<u32>,
        idf: Vec<f32>,
        weights: Vec<f32>,
        bias: Vec<f32>,
        heads: Vec<Head>,
    ) -> Self {
        let head_means = head_means(&weights, &heads);
        Self {
            normalizer,
            features,
            row_of_bucket,
            idf,
            weights,
            bias,
            heads,
            head_means,
        }
    }

    /// Total number of classes over all heads.
    pub fn total_classes(&self) -> usize {
        self.heads.iter().map(|h| h.labels.len()).sum()
    }

    /// Column offset of each head, plus the total at the end.
    pub fn offsets(&self) -> Vec<usize> {
        let mut offsets = Vec::with_capacity(self.heads.len() + 1);
        let mut at = 0;
        offsets.push(0);
        for head in &self.heads {
            at += head.labels.len();
            offsets.push(at);
        }
        offsets
    }

    /// Checks the internal shapes; used by the artifact loader and by tests.
    pub fn check_shapes(&self) -> Result<(), String> {
        let classes = self.total_classes();
        let rows = self.idf.len();
        if self.row_of_bucket.len() != self.features.table_size() {
            return Err(format!(
                "bucket map has {} entries, table has {}",
                self.row_of_bucket.len(),
                self.features.table_size()
            ));
        }
        if let Some(bad) = self
            .row_of_bucket
            .iter()
            .find(|&&r| r != UNSEEN && r as usize >= rows)
        {
            return Err(format!("bucket map points at row {bad}, only {rows} rows"));
        }
        if self.weights.len() != rows * classes {
            return Err(format!(
                "weights have {} values, expected {rows} rows × {classes} classes",
                self.weights.len()
            ));
        }
        if self.head_means.len() != rows * self.heads.len() {
            return Err(format!(
                "head means have {} values, expected {rows} rows × {} heads",
                self.head_means.len(),
                self.heads.len()
            ));
        }
        if self.bias.len() != classes {
            return Err(format!(
                "bias has {} values, expected {classes}",
                self.bias.len()
            ));
        }
        for (index, head) in self.heads.iter().enumerate() {
            if head.labels.is_empty() {
                return Err(format!("head `{}` has no labels", head.name));
            }
            if head.thresholds.len() != head.labels.len() {
                return Err(format!(
                    "head `{}`: thresholds do not match labels",
                    head.name
                ));
            }
            if !(head.temperature.is_finite() && head.temperature > 0.0) {
                return Err(format!(
                    "head `{}`: temperature must be positive",
                    head.name
                ));
            }
            if let Some(link) = &head.parent {
                let parent = self
                    .heads
                    .get(link.head)
                    .filter(|_| link.head != index)
                    .ok_or_else(|| format!("head `{}`: parent head out of range", head.name))?;
                if parent.parent.is_some() {
                    return Err(format!(
                        "head `{}`: parent chains are not supported",
                        head.name
                    ));
                }
                if link.parent_of_label.len() != head.labels.len()
                    || link
                        .parent_of_label
                        .iter()
                        .any(|&p| p as usize >= parent.labels.len())
                {
                    return Err(format!(
                        "head `{}`: parent map does not match labels",
                        head.name
                    ));
                }
            }
        }
        if self
            .weights
            .iter()
            .chain(&self.bias)
            .chain(&self.idf)
            .any(|w| !w.is_finite())
        {
            return Err("weights contain a non-finite value".into());
        }
        Ok(())
    }

    /// Normalises and featurises `text` into `scratch.vector`: sorted rows with L2-normalised, sublinear-tf
    /// TF-IDF values. Shared by training and prediction so that the two can never disagree.
    pub fn vectorize(&self, text: &str, scratch: &mut Scratch) {
        let normalizer = Normalizer::new(self.normalizer);
        normalizer.normalize_into(text, &mut scratch.normalized, &mut scratch.normalize);
        let featurizer = Featurizer::new(self.features);
        let Scratch {
            features,
            normalized,
            buckets,
            rows,
            spare_rows,
            vector,
            ..
        } = scratch;
        let row_of_bucket = &self.row_of_bucket;
        buckets.clear();
        featurizer.for_each(normalized, features, |bucket, _| {
            prefetch(row_of_bucket, bucket as usize);
            buckets.push(bucket);
        });
        rows.clear();
        for &bucket in buckets.iter() {
            let row = row_of_bucket[bucket as usize];
            if row != UNSEEN {
                prefetch(&self.idf, row as usize);
                rows.push(row);
            }
        }
        radix_sort_by_row(rows, spare_rows, self.row_bits(), |row| row);
        let first_char = first_char_row(&self.row_of_bucket, featurizer.first_char_bucket());
        tfidf_from_sorted(rows, |row| row, &self.idf, first_char, vector, |_, _| {});
    }

    /// Bits a row number needs: the radix sorts make one pass per 8 of them.
    fn row_bits(&self) -> u32 {
        u32::BITS - (self.idf.len().saturating_sub(1) as u32).leading_zeros()
    }

    /// [`LinearModel::vectorize`], also collecting in `scratch.candidates` the n-grams an explanation may quote:
    /// the first occurrence of every row, leaving out ubiquitous words ("que", "me") and one-letter fragments,
    /// which explain nothing to a reader even when their weight is positive. The vector is the same, value for
    /// value: only the sort key carries the occurrences along.
    fn vectorize_with_candidates(&self, text: &str, scratch: &mut Scratch) {
        let Scratch {
            normalize,
            features,
            normalized,
            buckets,
            vector,
            keyed_rows,
            spare_keyed_rows,
            spans,
            candidates,
            ..
        } = scratch;
        Normalizer::new(self.normalizer).normalize_into(text, normalized, normalize);
        let featurizer = Featurizer::new(self.features);
        let row_of_bucket = &self.row_of_bucket;
        buckets.clear();
        spans.clear();
        featurizer.for_each(normalized, features, |bucket, span| {
            prefetch(row_of_bucket, bucket as usize);
            buckets.push(bucket);
            spans.push(span);
        });
        keyed_rows.clear();
        for (occurrence, (&bucket, span)) in buckets.iter().zip(spans.iter()).enumerate() {
            let row = row_of_bucket[bucket as usize];
            if row == UNSEEN {
                continue;
            }
            prefetch(&self.idf, row as usize);
            // Occurrence numbers count every n-gram, seen or not: the order among the seen ones, which is all
            // that ties are broken on, is the text order either way.
            let mut key = u64::from(row) << 32;
            match u32::try_from(occurrence) {
                Ok(occurrence) if occurrence < MAX_OCCURRENCE => {
                    if span.end - span.start < 2 {
                        key |= UNQUOTABLE;
                    }
                    key |= u64::from(occurrence);
                }
                _ => key |= UNQUOTABLE | u64::from(MAX_OCCURRENCE),
            }
            keyed_rows.push(key);
        }
        // Stable by row: within a row the occurrences stay in text order.
        radix_sort_by_row(keyed_rows, spare_keyed_rows, self.row_bits(), |key| {
            (key >> 32) as u32
        });
        candidates.clear();
        let first_char = first_char_row(&self.row_of_bucket, featurizer.first_char_bucket());
        tfidf_from_sorted(
            keyed_rows,
            |key| (key >> 32) as u32,
            &self.idf,
            first_char,
            vector,
            |index, occurrences| {
                // The row's first quotable occurrence, if it has one.
                let Some(&key) = occurrences.iter().find(|&&key| key & UNQUOTABLE == 0) else {
                    return;
                };
                let row = (key >> 32) as usize;
                if self.idf[row] < EXPLAIN_MIN_IDF {
                    return;
                }
                let occurrence = (key & u64::from(MAX_OCCURRENCE)) as u32;
                candidates.push(Candidate {
                    index,
                    span: spans[occurrence as usize],
                    occurrence,
                });
            },
        );
    }

    /// Scores `text` into `scratch.probabilities` (all heads, calibrated and parent-constrained). The hot path:
    /// no allocation once `scratch` has grown.
    pub fn score(&self, text: &str, scratch: &mut Scratch) {
        self.vectorize(text, scratch);
        self.score_vectorized(scratch);
    }

    fn score_vectorized(&self, scratch: &mut Scratch) {
        let Scratch {
            vector,
            probabilities,
            ..
        } = scratch;
        self.probabilities_into(vector.len(), |i| vector[i], probabilities);
    }

    /// Scores an already vectorised comment (rows and TF-IDF values, as [`LinearModel::vectorize`] makes them);
    /// the trainer uses it to evaluate without normalising the text again.
    pub fn score_vector(&self, rows: &[u32], values: &[f32], scratch: &mut Scratch) {
        let len = rows.len().min(values.len());
        self.probabilities_into(len, |i| (rows[i], values[i]), &mut scratch.probabilities);
    }

    /// Logits of the `len` entries `(row, value)` that `entry(i)` gives, then calibrated probabilities.
    fn probabilities_into(
        &self,
        len: usize,
        entry: impl Fn(usize) -> (u32, f32),
        logits: &mut Vec<f32>,
    ) {
        let classes = self.total_classes();
        logits.clear();
        logits.extend_from_slice(&self.bias);
        for i in 0..len {
            if i + ROWS_AHEAD < len {
                let (ahead, _) = entry(i + ROWS_AHEAD);
                prefetch_range(&self.weights, ahead as usize * classes, classes);
            }
            let (row, value) = entry(i);
            let start = row as usize * classes;
            let weights = &self.weights[start..start + classes];
            for (logit, w) in logits.iter_mut().zip(weights) {
                *logit += value * w;
            }
        }
        let mut at = 0;
        for head in &self.heads {
            let block = &mut logits[at..at + head.labels.len()];
            softmax_in_place(block, head.temperature);
            at += head.labels.len();
        }
        self.apply_parent_constraints(logits);
    }

    /// Replaces the probabilities of each child head and its parent with the joint distribution restricted to
    /// consistent pairs: q(child) ∝ p(child) · p(parent(child)), and q(parent) = Σ q(child) over its children.
    /// Decoding the child from q then always yields a child whose parent is the decoded parent.
    fn apply_parent_constraints(&self, probabilities: &mut [f32]) {
        let mut offsets = [0usize; 16];
        if self.heads.len() >= offsets.len() || self.heads.iter().all(|h| h.parent.is_none()) {
            return;
        }
        let mut at = 0;
        for (i, head) in self.heads.iter().enumerate() {
            offsets[i] = at;
            at += head.labels.len();
        }
        for (child_index, head) in self.heads.iter().enumerate() {
            let Some(link) = &head.parent else { continue };
            let child = offsets[child_index];
            let parent = offsets[link.head];
            let parent_len = self.heads[link.head].labels.len();
            let mut total = 0.0f32;
            for (label, &p) in link.parent_of_label.iter().enumerate() {
                let q = probabilities[child + label] * probabilities[parent + p as usize];
                probabilities[child + label] = q;
                total += q;
            }
            if !(total > 0.0 && total.is_finite()) {
                // Degenerate only if every consistent pair has probability 0; fall back to uniform.
                let n = head.labels.len() as f32;
                probabilities[child..child + head.labels.len()].fill(1.0 / n);
                total = 1.0;
            }
            probabilities[parent..parent + parent_len].fill(0.0);
            for (label, &p) in link.parent_of_label.iter().enumerate() {
                let q = probabilities[child + label] / total;
                probabilities[child + label] = q;
                probabilities[parent + p as usize] += q;
            }
        }
    }

    /// Chooses one label per head from `probabilities` into `chosen`: parents first by their (joint) marginal,
    /// then each child as its most probable label *within the chosen parent*, so that theme and area can never
    /// disagree. The area decides where the comment goes, so it is decided on its own evidence, summed over its
    /// themes, rather than following a single theme.
    pub fn decode(&self, probabilities: &[f32], chosen: &mut Vec<usize>) {
        chosen.clear();
        let mut at = 0;
        let mut offsets = [0usize; 16];
        for (i, head) in self.heads.iter().enumerate() {
            if i < offsets.len() {
                offsets[i] = at;
            }
            chosen.push(argmax(&probabilities[at..at + head.labels.len()]));
            at += head.labels.len();
        }
        for (i, head) in self.heads.iter().enumerate() {
            let (Some(link), true) = (&head.parent, i < offsets.len()) else {
                continue;
            };
            let parent_label = chosen[link.head] as u32;
            let block = &probabilities[offsets[i]..offsets[i] + head.labels.len()];
            let mut best: Option<usize> = None;
            for (label, &p) in link.parent_of_label.iter().enumerate() {
                if p == parent_label && best.is_none_or(|b| block[label] > block[b]) {
                    best = Some(label);
                }
            }
            if let Some(best) = best {
                chosen[i] = best;
            }
        }
    }

    /// Full prediction for one comment: label, confidence, top-k, review flag and explanation per head.
    pub fn predict(
        &self,
        text: &str,
        options: PredictOptions,
        scratch: &mut Scratch,
    ) -> Prediction {
        if options.explain > 0 {
            self.vectorize_with_candidates(text, scratch);
        } else {
            self.vectorize(text, scratch);
        }
        self.score_vectorized(scratch);
        let mut chosen = std::mem::take(&mut scratch.chosen);
        self.decode(&scratch.probabilities, &mut chosen);
        if options.explain > 0 {
            self.rank_evidence(scratch, &chosen, options.explain);
        }
        let mut heads = Vec::with_capacity(self.heads.len());
        let mut at = 0;
        for (index, head) in self.heads.iter().enumerate() {
            let probs = &scratch.probabilities[at..at + head.labels.len()];
            let best = chosen[index];
            let confidence = probs[best];
            top_indices(probs, options.top_k.max(1), &mut scratch.order);
            let top_k = scratch
                .order
                .iter()
                .map(|&i| Scored {
                    label: head.labels[i].clone(),
                    probability: probs[i],
                })
                .collect();
            let explanation = if options.explain > 0 {
                scratch.strongest[index]
                    .iter()
                    .map(|ranked| Evidence {
                        ngram: scratch.normalized[ranked.span.start..ranked.span.end].to_string(),
                        weight: ranked.weight,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            heads.push(HeadPrediction {
                head: head.name.clone(),
                label: head.labels[best].clone(),
                confidence,
                top_k,
                needs_review: confidence < head.thresholds[best],
                explanation,
            });
            at += head.labels.len();
        }
        scratch.chosen = chosen;
        Prediction { heads }
    }

    /// Predicts many comments in parallel (rayon), one scratch per worker thread.
    pub fn predict_batch<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        options: PredictOptions,
    ) -> Vec<Prediction> {
        use rayon::prelude::*;
        texts
            .par_iter()
            .map_init(Scratch::default, |scratch, text| {
                self.predict(text.as_ref(), options, scratch)
            })
            .collect()
    }

    /// For every head, the `n` candidates of the last vectorised comment that pushed its chosen label up the
    /// most, relative to the head's other labels, into `scratch.strongest`. One pass over the candidates reads
    /// each weight row once for all heads, and each head keeps only its `n` strongest, so nothing is sorted.
    fn rank_evidence(&self, scratch: &mut Scratch, chosen: &[usize], n: usize) {
        let Scratch {
            normalized,
            vector,
            candidates,
            strongest,
            ..
        } = scratch;
        let classes = self.total_classes();
        strongest.resize_with(self.heads.len(), Vec::new);
        for list in strongest.iter_mut() {
            list.clear();
        }
        let head_count = self.heads.len();
        for (i, candidate) in candidates.iter().enumerate() {
            if let Some(ahead) = candidates.get(i + ROWS_AHEAD) {
                let (row, _) = vector[ahead.index];
                prefetch(&self.head_means, row as usize * head_count);
            }
            let (row, value) = vector[candidate.index];
            let row = row as usize;
            let weights = &self.weights[row * classes..(row + 1) * classes];
            let means = &self.head_means[row * head_count..(row + 1) * head_count];
            let mut at = 0;
            for (((head, &label), list), &mean) in self
                .heads
                .iter()
                .zip(chosen)
                .zip(strongest.iter_mut())
                .zip(means)
            {
                // Contribution of a row: its value times (weight for the label − mean weight of the head's
                // labels), so that n-grams common to every label do not crowd out the ones that discriminate.
                let weight = value * (weights[at + label] - mean);
                if weight > 0.0 {
                    let ranked = Ranked {
                        weight,
                        span: candidate.span,
                        occurrence: candidate.occurrence,
                    };
                    keep_strongest(list, n, ranked, normalized);
                }
                at += head.labels.len();
            }
        }
    }
}

/// Per row of `weights` (`total_classes` wide), the mean of each head's columns, row-major `rows × heads`. Each
/// mean is the sequential sum from −0.0 divided by the head's width: the explanations' weights were defined by
/// that order before the means were cached, so they stay the same to the last bit.
fn head_means(weights: &[f32], heads: &[Head]) -> Vec<f32> {
    let classes: usize = heads.iter().map(|h| h.labels.len()).sum();
    if classes == 0 {
        return Vec::new();
    }
    let mut means = Vec::with_capacity(weights.len() / classes * heads.len());
    for row in weights.chunks_exact(classes) {
        let mut at = 0;
        for head in heads {
            let width = head.labels.len();
            let sum = row[at..at + width].iter().fold(-0.0f32, |sum, w| sum + w);
            means.push(sum / width as f32);
            at += width;
        }
    }
    means
}

/// Offers `ranked` to `list`, which holds at most `n` pieces of evidence with distinct text, strongest first.
/// Several rows can quote the same text (a word and its char n-gram "<word>"): only the strongest is kept, and
/// the list is then exactly the first `n` distinct texts of all offers sorted by [`Ranked::order`].
fn keep_strongest(list: &mut Vec<Ranked>, n: usize, ranked: Ranked, normalized: &str) {
    if list.len() >= n
        && list
            .last()
            .is_some_and(|last| ranked.order(last) != Ordering::Less)
    {
        return;
    }
    let text = &normalized[ranked.span.start..ranked.span.end];
    if let Some(twin) = list
        .iter()
        .position(|e| &normalized[e.span.start..e.span.end] == text)
    {
        if ranked.order(&list[twin]) != Ordering::Less {
            return;
        }
        list.remove(twin);
    } else if list.len() >= n {
        list.pop();
    }
    let at = list.partition_point(|e| e.order(&ranked) == Ordering::Less);
    list.insert(at, ranked);
}

/// The indices of the `k` largest of `values` (largest first, the lower index first on ties) into `out`.
fn top_indices(values: &[f32], k: usize, out: &mut Vec<usize>) {
    out.clear();
    let ahead =
        |a: usize, b: usize| values[b].total_cmp(&values[a]).then(a.cmp(&b)) == Ordering::Less;
    for i in 0..values.len() {
        if out.len() >= k && out.last().is_some_and(|&last| !ahead(i, last)) {
            continue;
        }
        if out.len() >= k {
            out.pop();
        }
        let at = out.partition_point(|&j| ahead(j, i));
        out.insert(at, i);
    }
}

/// Sorts `rows`, counts repeats and writes `(row, (1 + ln tf) · idf)` into `vector`, L2-normalising the word
/// block (rows below `first_char_row`) and the character block separately, like scikit-learn's union of two
/// TF-IDF vectorisers.
pub fn tfidf_from_rows(
    rows: &mut [u32],
    idf: &[f32],
    first_char_row: u32,
    vector: &mut Vec<(u32, f32)>,
) {
    rows.sort_unstable();
    tfidf_from_sorted(rows, |row| row, idf, first_char_row, vector, |_, _| {});
}

/// Sorts `items` by `row_of(item)`, whose values fit in `bits` bits, keeping items of the same row in their order:
/// a least-significant-digit radix sort, one pass per byte, through `spare`. A comment has a few hundred n-grams
/// and a model under 2^16 rows needs two passes: several times cheaper than a comparison sort.
fn radix_sort_by_row<T: Copy + Default>(
    items: &mut Vec<T>,
    spare: &mut Vec<T>,
    bits: u32,
    row_of: impl Fn(T) -> u32,
) {
    let mut shift = 0;
    while shift < bits.max(1) {
        let mut counts = [0usize; 256];
        for &item in items.iter() {
            counts[((row_of(item) >> shift) & 0xff) as usize] += 1;
        }
        let mut next = 0;
        for count in counts.iter_mut() {
            let items_here = *count;
            *count = next;
            next += items_here;
        }
        spare.clear();
        spare.resize(items.len(), T::default());
        for &item in items.iter() {
            let digit = ((row_of(item) >> shift) & 0xff) as usize;
            spare[counts[digit]] = item;
            counts[digit] += 1;
        }
        std::mem::swap(items, spare);
        shift += 8;
    }
}

/// [`tfidf_from_rows`] over items already sorted by row; `first_of_row(index in vector, occurrences)` sees the
/// items of each row.
fn tfidf_from_sorted<T: Copy>(
    items: &[T],
    row_of: impl Fn(T) -> u32,
    idf: &[f32],
    first_char_row: u32,
    vector: &mut Vec<(u32, f32)>,
    mut first_of_row: impl FnMut(usize, &[T]),
) {
    vector.clear();
    let mut i = 0;
    let mut norms = [0.0f32; 2];
    while i < items.len() {
        let row = row_of(items[i]);
        let mut j = i + 1;
        while j < items.len() && row_of(items[j]) == row {
            j += 1;
        }
        // Most n-grams occur once, and ln 1 = 0 exactly: no need to call ln for them.
        let tf = j - i;
        let sublinear = if tf == 1 { 1.0 } else { 1.0 + (tf as f32).ln() };
        let value = sublinear * idf[row as usize];
        norms[usize::from(row >= first_char_row)] += value * value;
        first_of_row(vector.len(), &items[i..j]);
        vector.push((row, value));
        i = j;
    }
    let inverse = norms.map(|n| if n > 0.0 { n.sqrt().recip() } else { 0.0 });
    for (row, v) in vector.iter_mut() {
        *v *= inverse[usize::from(*row >= first_char_row)];
    }
}

/// The first row whose bucket is in the character half of the table: rows are numbered in bucket order, so
/// every row below it is a word feature.
pub fn first_char_row(row_of_bucket: &[u32], first_char_bucket: u32) -> u32 {
    row_of_bucket[first_char_bucket as usize..]
        .iter()
        .copied()
        .find(|&r| r != UNSEEN)
        .unwrap_or_else(|| row_of_bucket.iter().filter(|&&r| r != UNSEEN).count() as u32)
}

/// Numerically stable softmax of `logits / temperature`, in place.
pub fn softmax_in_place(logits: &mut [f32], temperature: f32) {
    let inv_t = temperature.recip();
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for l in logits.iter_mut() {
        *l = ((*l - max) * inv_t).exp();
        sum += *l;
    }
    for l in logits.iter_mut() {
        *l /= sum;
    }
}

/// Index of the largest value (the first on ties).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A two-head model whose weights are set by hand: "queja" pushes type=queja, "subsidio" pushes theme=cuota.
    pub(crate) fn tiny_model() -> LinearModel {
        let features = FeatureConfig {
            table_bits: 10,
            word_bigrams: false,
            char_min: 0,
            char_max: 0,
        };
        let normalizer = NormalizerConfig::default();
        let featurizer = Featurizer::new(features);
        let mut row_of_bucket = vec![UNSEEN; features.table_size()];
        let words = ["queja", "felicito", "subsidio", "credito"];
        for (row, word) in words.iter().enumerate() {
            featurizer.for_each(word, &mut FeatureScratch::default(), |b, _| {
                row_of_bucket[b as usize] = row as u32
            });
        }
        // columns: type [queja, felicitacion], theme [cuota, credito_libre], area [subsidio, creditos]
        #[rustfmt::skip]
        let weights = vec![
            3.0, -3.0,  0.0, 0.0,  0.0, 0.0, // queja
            -3.0, 3.0,  0.0, 0.0,  0.0, 0.0, // felicito
            0.0, 0.0,   3.0, -3.0, 2.0, -2.0, // subsidio
            0.0, 0.0,   -3.0, 3.0, -2.0, 2.0, // credito
        ];
        LinearModel::new(
            normalizer,
            features,
            row_of_bucket,
            vec![3.0; 4],
            weights,
            vec![0.0; 6],
            vec![
                Head {
                    name: "type".into(),
                    labels: vec!["queja".into(), "felicitacion".into()],
                    temperature: 1.0,
                    thresholds: vec![0.6, 0.6],
                    parent: None,
                },
                Head {
                    name: "theme".into(),
                    labels: vec!["cuota".into(), "credito_libre".into()],
                    temperature: 1.0,
                    thresholds: vec![0.5, 0.5],
                    parent: Some(ParentLink {
                        head: 2,
                        parent_of_label: vec![0, 1],
                    }),
                },
                Head {
                    name: "area".into(),
                    labels: vec!["subsidio".into(), "creditos".into()],
                    temperature: 1.0,
                    thresholds: vec![0.5, 0.5],
                    parent: None,
                },
            ],
        )
    }

    #[test]
    fn predicts_with_explanations_from_the_text() {
        let model = tiny_model();
        model.check_shapes().unwrap();
        let p = model.predict(
            "QUEJA por el SUBSIDIO!!!",
            PredictOptions::default(),
            &mut Scratch::default(),
        );
        assert_eq!(p.head("type").unwrap().label, "queja");
        assert_eq!(p.head("theme").unwrap().label, "cuota");
        assert_eq!(p.head("area").unwrap().label, "subsidio");
        assert_eq!(p.head("type").unwrap().explanation[0].ngram, "queja");
        assert_eq!(p.head("area").unwrap().explanation[0].ngram, "subsidio");
    }

    #[test]
    fn parent_constraint_keeps_theme_inside_area() {
        let model = tiny_model();
        let mut scratch = Scratch::default();
        for text in [
            "subsidio",
            "credito",
            "subsidio credito",
            "nada",
            "credito credito subsidio",
        ] {
            let p = model.predict(text, PredictOptions::default(), &mut scratch);
            let theme = p.head("theme").unwrap();
            let area = p.head("area").unwrap();
            let expected_area = if theme.label == "cuota" {
                "subsidio"
            } else {
                "creditos"
            };
            assert_eq!(area.label, expected_area, "{text}");
            let sum: f32 = scratch.probabilities[2..4].iter().sum();
            assert!((sum - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn unknown_text_gives_uniform_and_review() {
        let model = tiny_model();
        let p = model.predict("zzz", PredictOptions::default(), &mut Scratch::default());
        let ty = p.head("type").unwrap();
        assert!((ty.confidence - 0.5).abs() < 1e-6);
        assert!(ty.needs_review);
        assert!(ty.explanation.is_empty());
    }

    #[test]
    fn tfidf_counts_sublinearly_and_normalises() {
        let mut rows = vec![2, 0, 2, 2];
        let mut vector = Vec::new();
        tfidf_from_rows(&mut rows, &[1.0, 1.0, 2.0], 10, &mut vector);
        let a = 1.0f32;
        let b = (1.0 + 3.0f32.ln()) * 2.0;
        let norm = (a * a + b * b).sqrt();
        assert_eq!(vector.len(), 2);
        assert!((vector[0].1 - a / norm).abs() < 1e-6 && (vector[1].1 - b / norm).abs() < 1e-6);
        tfidf_from_rows(&mut rows, &[1.0, 1.0, 2.0], 1, &mut vector);
        // Word block (row 0) and char block (row 2) are normalised separately.
        assert_eq!(vector.len(), 2);
        assert!(vector.iter().all(|(_, v)| (v - 1.0).abs() < 1e-6));
    }

    /// A model with character n-grams in a 1,024-bucket table (so that n-grams share rows, as hashed rows do)
    /// and every row seen; integer weights make contributions tie, fractional ones make sums round.
    fn colliding_model(integer_weights: bool) -> LinearModel {
        let features = FeatureConfig {
            table_bits: 10,
            word_bigrams: true,
            char_min: 2,
            char_max: 4,
        };
        let tiny = tiny_model();
        let rows = features.table_size();
        let classes = tiny.total_classes();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let idf = (0..rows)
            .map(|_| [1.0, 2.0, 3.0][(next() % 3) as usize])
            .collect();
        let weights = (0..rows * classes)
            .map(|_| {
                let w = (next() % 7) as f32 - 3.0;
                if integer_weights {
                    w
                } else {
                    w / 3.0 + (next() % 1000) as f32 * 1e-4
                }
            })
            .collect();
        let model = LinearModel::new(
            tiny.normalizer,
            features,
            (0..rows as u32).collect(),
            idf,
            weights,
            tiny.bias,
            tiny.heads,
        );
        model.check_shapes().unwrap();
        model
    }

    /// The explanation as first specified: featurise again, keep the first quotable occurrence of every row,
    /// sort all positive contributions (stable, strongest first, then earliest), keep the first `n` texts.
    fn reference_explanation(
        model: &LinearModel,
        text: &str,
        head: usize,
        label: usize,
        n: usize,
    ) -> Vec<Evidence> {
        let mut scratch = Scratch::default();
        model.score(text, &mut scratch);
        let mut seen = vec![false; scratch.vector.len()];
        let mut candidates = Vec::new();
        Featurizer::new(model.features).for_each(
            &scratch.normalized,
            &mut FeatureScratch::default(),
            |bucket, span| {
                let row = model.row_of_bucket[bucket as usize];
                if row == UNSEEN
                    || model.idf[row as usize] < EXPLAIN_MIN_IDF
                    || span.end - span.start < 2
                {
                    return;
                }
                if let Ok(i) = scratch.vector.binary_search_by_key(&row, |&(r, _)| r)
                    && !seen[i]
                {
                    seen[i] = true;
                    candidates.push((i, span.start, span.end));
                }
            },
        );
        let classes = model.total_classes();
        let offset: usize = model.heads[..head].iter().map(|h| h.labels.len()).sum();
        let width = model.heads[head].labels.len();
        let mut evidence = Vec::new();
        for (index, start, end) in candidates {
            let (row, value) = scratch.vector[index];
            let from = row as usize * classes + offset;
            let weights = &model.weights[from..from + width];
            let mean = weights.iter().sum::<f32>() / width as f32;
            let c = value * (weights[label] - mean);
            if c > 0.0 {
                evidence.push((c, start, end));
            }
        }
        evidence.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut out: Vec<Evidence> = Vec::new();
        for (weight, start, end) in evidence {
            let ngram = &scratch.normalized[start..end];
            if out.iter().any(|e| e.ngram == ngram) {
                continue;
            }
            out.push(Evidence {
                ngram: ngram.to_string(),
                weight,
            });
            if out.len() == n {
                break;
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn one_pass_explanations_match_the_sorted_reference(
            text in "[a-eñ #]{0,60}( [a-z]{1,6}){0,12}",
            n in 1usize..8,
            top_k in 1usize..4,
            integer_weights: bool,
        ) {
            let model = colliding_model(integer_weights);
            let mut scratch = Scratch::default();
            let got = model.predict(&text, PredictOptions { top_k, explain: n }, &mut scratch);
            let plain = model.predict(&text, PredictOptions { top_k, explain: 0 }, &mut scratch);
            for (index, head) in got.heads.iter().enumerate() {
                let label = model.heads[index].labels.iter().position(|l| *l == head.label).unwrap();
                let want = reference_explanation(&model, &text, index, label, n);
                proptest::prop_assert_eq!(&head.explanation, &want);
                proptest::prop_assert_eq!(&head.top_k, &plain.heads[index].top_k);
                proptest::prop_assert_eq!(head.confidence, plain.heads[index].confidence);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn radix_sort_is_a_stable_sort_by_row(
            keys in proptest::collection::vec((0u32..70_000, 0u32..1_000), 0..600),
        ) {
            let mut items: Vec<u64> = keys.iter().map(|&(row, tag)| u64::from(row) << 32 | u64::from(tag)).collect();
            let mut expected = items.clone();
            expected.sort_by_key(|key| key >> 32);
            radix_sort_by_row(&mut items, &mut Vec::new(), 17, |key| (key >> 32) as u32);
            proptest::prop_assert_eq!(items, expected);
        }
    }

    #[test]
    fn top_indices_are_the_largest_first_with_the_lower_index_on_ties() {
        let mut out = Vec::new();
        top_indices(&[0.1, 0.3, 0.3, 0.2, 0.05], 3, &mut out);
        assert_eq!(out, [1, 2, 3]);
        top_indices(&[0.5, 0.5], 5, &mut out);
        assert_eq!(out, [0, 1]);
    }

    #[test]
    fn batch_matches_single() {
        let model = tiny_model();
        let texts = ["queja subsidio", "felicito credito", ""];
        let batch = model.predict_batch(&texts, PredictOptions::default());
        for (text, p) in texts.iter().zip(batch) {
            assert_eq!(
                p,
                model.predict(text, PredictOptions::default(), &mut Scratch::default())
            );
        }
    }
}
