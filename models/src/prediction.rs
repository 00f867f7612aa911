//! What a classifier says about one comment: per head a label, a calibrated confidence, top-k, review flag and
//! explanation. These are domain types; `service` converts them into its own wire types.

/// One label with its calibrated probability.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Label id from the head's label set (e.g. `queja`).
    pub label: String,
    /// Calibrated probability in `[0, 1]`.
    pub probability: f32,
}

/// One feature that pushed the chosen label up, as text the reader can find in the comment.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// The n-gram as it appears after normalisation (a word, a word pair or a character n-gram).
    pub ngram: String,
    /// Its contribution to the chosen label's logit (positive: supports the label).
    pub weight: f32,
}

/// The answer of one head (type, theme, area, or any head the user's data has).
#[derive(Debug, Clone, PartialEq)]
pub struct HeadPrediction {
    /// Name of the head (e.g. `type`).
    pub head: String,
    /// Chosen label.
    pub label: String,
    /// Calibrated probability of the chosen label.
    pub confidence: f32,
    /// The k most probable labels, most probable first (the chosen label first).
    pub top_k: Vec<Scored>,
    /// True when `confidence` is below the label's review threshold chosen on validation.
    pub needs_review: bool,
    /// The n-grams that contributed most to the chosen label, strongest first.
    pub explanation: Vec<Evidence>,
}

/// The answer for one comment: one entry per head, in the model's head order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Prediction {
    /// Per-head answers.
    pub heads: Vec<HeadPrediction>,
}

impl Prediction {
    /// The answer of the named head, if the model has it.
    pub fn head(&self, name: &str) -> Option<&HeadPrediction> {
        self.heads.iter().find(|h| h.head == name)
    }

    /// True when any head asks for human review.
    pub fn needs_review(&self) -> bool {
        self.heads.iter().any(|h| h.needs_review)
    }
}
