//! The alternatives kept for measurement: the parallel SGD schedules (Hogwild, synchronous mini-batches) and the
//! low-rank embedding-bag design, checked against the shipped sequential full-rank trainer on the shipped corpus.

use datasets::LabeledSet;
use models::classifier::Scratch;
use training::lowrank::{LowRankConfig, LowRankScratch, fit_low_rank};
use training::{SgdSchedule, Silent, TrainConfig};

/// A slice of the corpus small enough for a debug-profile test.
fn small_train() -> LabeledSet {
    let train = datasets::corpus::train().unwrap();
    let keep: Vec<usize> = (0..train.records.len()).step_by(3).collect();
    train.subset(&keep)
}

fn config(sgd: SgdSchedule) -> TrainConfig {
    TrainConfig {
        epochs: 6,
        sgd,
        ..training::default_config()
    }
}

/// Every head's probabilities for the test split, flattened.
fn test_probabilities(model: &models::Model) -> Vec<f32> {
    let test = datasets::corpus::test().unwrap();
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    for record in &test.records {
        model.linear.score(&record.text, &mut scratch);
        out.extend_from_slice(&scratch.probabilities);
    }
    out
}

fn type_accuracy(model: &models::Model) -> f64 {
    let test = datasets::corpus::test().unwrap();
    let head = test.head_index("type").unwrap();
    let prediction_head = model
        .linear
        .heads
        .iter()
        .position(|h| h.name == "type")
        .unwrap();
    let mut scratch = Scratch::default();
    let options = models::classifier::PredictOptions {
        top_k: 1,
        explain: 0,
    };
    let right = test
        .records
        .iter()
        .filter(|r| {
            let p = model.linear.predict(&r.text, options, &mut scratch);
            p.heads[prediction_head].label == r.labels[head]
        })
        .count();
    right as f64 / test.records.len() as f64
}

#[test]
fn schedules_parse_from_the_command_line() {
    assert_eq!(
        "sequential".parse::<SgdSchedule>(),
        Ok(SgdSchedule::Sequential)
    );
    assert_eq!("hogwild".parse::<SgdSchedule>(), Ok(SgdSchedule::Hogwild));
    assert_eq!(
        "minibatch:128".parse::<SgdSchedule>(),
        Ok(SgdSchedule::MiniBatch { size: 128 })
    );
    assert!("minibatch:0".parse::<SgdSchedule>().is_err());
    assert!("adam".parse::<SgdSchedule>().is_err());
}

#[test]
fn a_mini_batch_of_one_is_exactly_sequential_sgd() {
    let set = small_train();
    let (sequential, _) =
        training::fit(&set, &config(SgdSchedule::Sequential), None, &Silent).unwrap();
    let (batched, _) = training::fit(
        &set,
        &config(SgdSchedule::MiniBatch { size: 1 }),
        None,
        &Silent,
    )
    .unwrap();
    assert_eq!(sequential.linear.weights, batched.linear.weights);
}

#[test]
fn mini_batches_are_deterministic_and_learn() {
    let set = small_train();
    let schedule = SgdSchedule::MiniBatch { size: 32 };
    let (first, _) = training::fit(&set, &config(schedule), None, &Silent).unwrap();
    let (second, _) = training::fit(&set, &config(schedule), None, &Silent).unwrap();
    assert_eq!(test_probabilities(&first), test_probabilities(&second));
    let (sequential, _) =
        training::fit(&set, &config(SgdSchedule::Sequential), None, &Silent).unwrap();
    assert!(
        type_accuracy(&first) > type_accuracy(&sequential) - 0.08,
        "mini-batch {} vs sequential {}",
        type_accuracy(&first),
        type_accuracy(&sequential)
    );
}

#[test]
fn hogwild_learns_as_well_as_sequential_sgd() {
    let set = small_train();
    let (hogwild, _) = training::fit(&set, &config(SgdSchedule::Hogwild), None, &Silent).unwrap();
    let (sequential, _) =
        training::fit(&set, &config(SgdSchedule::Sequential), None, &Silent).unwrap();
    let (h, s) = (type_accuracy(&hogwild), type_accuracy(&sequential));
    assert!(h > s - 0.08, "hogwild {h} vs sequential {s}");
    assert!(h > 0.5, "five types: chance is 0.2, got {h}");
}

#[test]
fn low_rank_design_learns_and_is_deterministic() {
    let set = small_train();
    let low_rank = LowRankConfig {
        dim: 16,
        learning_rate: 0.5,
    };
    let cfg = config(SgdSchedule::Sequential);
    let (model, report) = fit_low_rank(&set, &cfg, low_rank).unwrap();
    let (again, _) = fit_low_rank(&set, &cfg, low_rank).unwrap();
    assert!(report.best_epoch >= 1 && report.best_epoch <= cfg.epochs);
    let test = datasets::corpus::test().unwrap();
    let type_head = test.head_index("type").unwrap();
    let (mut scratch, mut scratch_again) = (LowRankScratch::default(), LowRankScratch::default());
    let mut right = 0;
    for record in &test.records {
        model.score(&record.text, &mut scratch);
        again.score(&record.text, &mut scratch_again);
        assert_eq!(scratch.probabilities, scratch_again.probabilities);
        let mut at = 0;
        for head in &model.heads {
            let sum: f32 = scratch.probabilities[at..at + head.labels.len()]
                .iter()
                .sum();
            assert!((sum - 1.0).abs() < 1e-4, "head {} sums to {sum}", head.name);
            at += head.labels.len();
        }
        let chosen = model.chosen(&scratch);
        if model.heads[type_head].labels[chosen[type_head]] == record.labels[type_head] {
            right += 1;
        }
    }
    let accuracy = right as f64 / test.records.len() as f64;
    assert!(accuracy > 0.5, "five types: chance is 0.2, got {accuracy}");
}
