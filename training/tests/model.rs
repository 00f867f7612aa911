//! End-to-end checks of the fast classifier trained on the shipped corpus: golden predictions, determinism,
//! properties of every output, artifact round trip and evaluation floors on the committed test split.

use std::sync::LazyLock;

use models::{Model, Precision, PredictOptions, Scratch};
use proptest::prelude::*;

/// The default model, trained once for the whole test binary.
static DEFAULT: LazyLock<Model> = LazyLock::new(|| {
    let (mut model, _) = training::train_default().expect("the shipped corpus trains");
    let bytes = model.to_bytes(Precision::F32);
    Model::from_bytes(&bytes).expect("a fresh artifact loads")
});

/// Comments written for this test (not in the corpus), with the labels a delegate would give them.
const GOLDEN_TEXTS: &[&str] = &[
    "Quiero felicitar a la señora de la taquilla de la piscina, muy amable y atenta con mis hijos",
    "llevo 3 meses sin recibir la cuota monetaria y nadie me da razon, estoy aburrida",
    "me descontaron dos veces la cuota del credito de libre inversion en la nomina de marzo",
    "SOLICITO CERTIFICADO DE AFILIACION PARA PRESENTAR EN EL COLEGIO XFA",
    "Sugiero que pongan mas cajeros en la sede del centro porque la fila es eterna",
    "el medico de la ips me atendio grosero y ni me miro, pesima atencion",
    "la empresa pago los aportes de abril y siguen apareciendo en mora en el estado de cuenta",
    "quiero saber como postularme al subsidio de vivienda para comprar casa nueva",
    "la afiliada manifiesta que no le han entregado el medicamento para la presion desde hace 20 dias",
    "en la linea de atencion me dejaron esperando 40 minutos y colgaron",
    "el paquete del hotel en santa fe de antioquia no incluia el desayuno que nos vendieron",
    "necesito la devolucion del dinero que pague por el curso que cancelaron",
];

/// Golden file: one line per text, `label/label/label confidence/confidence/confidence` for type, theme, area.
const GOLDEN: &str = include_str!("golden.txt");

fn golden_line(model: &Model, text: &str) -> (Vec<String>, Vec<f32>) {
    let p = model.linear.predict(
        text,
        PredictOptions {
            top_k: 1,
            explain: 0,
        },
        &mut Scratch::default(),
    );
    let heads = ["type", "theme", "area"];
    let labels = heads
        .iter()
        .map(|h| p.head(h).expect("default heads").label.clone())
        .collect();
    let confidences = heads
        .iter()
        .map(|h| p.head(h).expect("default heads").confidence)
        .collect();
    (labels, confidences)
}

#[test]
fn golden_predictions_are_stable() {
    let lines: Vec<&str> = GOLDEN.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines.len(),
        GOLDEN_TEXTS.len(),
        "golden.txt is out of date: run the ignored regenerator"
    );
    for (text, line) in GOLDEN_TEXTS.iter().zip(lines) {
        let (labels, confidences) = golden_line(&DEFAULT, text);
        let (want_labels, want_conf) = line.split_once(' ').expect("labels and confidences");
        assert_eq!(labels.join("/"), want_labels, "{text}");
        for (got, want) in confidences.iter().zip(want_conf.split('/')) {
            let want: f32 = want.parse().expect("a number");
            assert!(
                (got - want).abs() < 0.02,
                "{text}: confidence {got} vs golden {want}"
            );
        }
    }
}

/// Rewrites golden.txt after a deliberate change of the corpus or the trainer: `cargo test -p training --test
/// model -- --ignored regenerate_golden`, then read the diff before committing it.
#[test]
#[ignore]
fn regenerate_golden() {
    let mut out = String::from(
        "# type/theme/area labels and confidences of GOLDEN_TEXTS under the default model\n",
    );
    for text in GOLDEN_TEXTS {
        let (labels, confidences) = golden_line(&DEFAULT, text);
        let conf: Vec<String> = confidences.iter().map(|c| format!("{c:.3}")).collect();
        out.push_str(&format!("{} {}\n", labels.join("/"), conf.join("/")));
    }
    std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden.txt"),
        out,
    )
    .unwrap();
}

#[test]
fn most_golden_comments_get_the_label_a_delegate_would_give() {
    // (type, area) a delegate gives each golden text; the model must agree on most, not all.
    let expected = [
        ("felicitacion", "turismo"),
        ("queja", "subsidio"),
        ("reclamo", "creditos"),
        ("peticion", "administrativas"),
        ("sugerencia", "administrativas"),
        ("queja", "ips_salud"),
        ("reclamo", "cartera"),
        ("peticion", "vivienda"),
        ("reclamo", "eps_subsidiada"),
        ("queja", "central_llamadas"),
        ("reclamo", "turismo"),
        ("reclamo", "tesoreria"),
    ];
    let mut agree = 0;
    for (text, (ty, area)) in GOLDEN_TEXTS.iter().zip(expected) {
        let p = DEFAULT
            .linear
            .predict(text, PredictOptions::default(), &mut Scratch::default());
        agree += usize::from(p.head("type").unwrap().label == ty);
        agree += usize::from(p.head("area").unwrap().label == area);
    }
    assert!(
        agree >= 16,
        "only {agree} of 24 type/area labels agree with a delegate"
    );
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let set = datasets::corpus::train().unwrap();
    let small = set.subset(&(0..600).collect::<Vec<_>>());
    let config = training::default_config();
    let (a, _) = training::fit(&small, &config, None, &training::Silent).unwrap();
    let (b, _) = training::fit(&small, &config, None, &training::Silent).unwrap();
    assert_eq!(a.linear, b.linear);
}

#[test]
fn corpus_test_split_meets_floors() {
    let test = datasets::corpus::test().unwrap();
    let evaluation = training::evaluate(&DEFAULT, &test).unwrap();
    let f1 = |head: &str| {
        evaluation
            .heads
            .iter()
            .find(|h| h.head == head)
            .unwrap()
            .macro_f1
    };
    // Floors well under the measured figures (type 0.91, theme 0.71, area 0.80 on 2026-11-29), so that a
    // regression fails without flakiness.
    assert!(f1("type") > 0.85, "type {}", f1("type"));
    assert!(f1("theme") > 0.62, "theme {}", f1("theme"));
    assert!(f1("area") > 0.74, "area {}", f1("area"));
}

#[test]
fn evaluation_counts_unknown_gold_labels_as_errors() {
    let mut test = datasets::corpus::test().unwrap();
    test.records.truncate(50);
    let type_head = test.head_index("type").unwrap();
    test.records[0].labels[type_head] = "denuncia".into();
    let evaluation = training::evaluate(&DEFAULT, &test).unwrap();
    assert_eq!(evaluation.unknown_labels["type"]["denuncia"], 1);
    let type_metrics = evaluation.heads.iter().find(|h| h.head == "type").unwrap();
    assert!(type_metrics.labels.contains(&"denuncia".to_string()));
}

#[test]
fn artifact_round_trip_keeps_predictions() {
    let mut model = DEFAULT.clone();
    let f32_bytes = model.to_bytes(Precision::F32);
    assert_eq!(
        Model::from_bytes(&f32_bytes).unwrap().linear,
        DEFAULT.linear
    );
    let f16_bytes = model.to_bytes(Precision::F16);
    assert!(f16_bytes.len() < f32_bytes.len() * 6 / 10);
    let half = Model::from_bytes(&f16_bytes).unwrap();
    for text in GOLDEN_TEXTS {
        let a = DEFAULT
            .linear
            .predict(text, PredictOptions::default(), &mut Scratch::default());
        let b = half
            .linear
            .predict(text, PredictOptions::default(), &mut Scratch::default());
        for (x, y) in a.heads.iter().zip(&b.heads) {
            assert!(
                (x.confidence - y.confidence).abs() < 0.01
                    || x.label != y.label && (x.confidence - 0.5).abs() < 0.05
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_text_gives_a_distribution_and_quotes_its_own_ngrams(text in "\\PC{0,300}") {
        let mut scratch = Scratch::default();
        let p = DEFAULT.linear.predict(&text, PredictOptions { top_k: 3, explain: 5 }, &mut scratch);
        let normalized = models::Normalizer::new(DEFAULT.linear.normalizer).normalize(&text);
        let mut at = 0;
        for (head, model_head) in p.heads.iter().zip(&DEFAULT.linear.heads) {
            let k = model_head.labels.len();
            let sum: f32 = scratch.probabilities[at..at + k].iter().sum();
            prop_assert!((sum - 1.0).abs() < 1e-4, "head {} sums to {sum}", head.head);
            prop_assert!(head.confidence >= 0.0 && head.confidence <= 1.0);
            prop_assert!(!head.top_k.is_empty() && head.top_k.len() <= 3);
            for evidence in &head.explanation {
                prop_assert!(normalized.contains(&evidence.ngram), "{:?} not in {:?}", evidence.ngram, normalized);
            }
            at += k;
        }
        let theme = p.head("theme").unwrap();
        let area = p.head("area").unwrap();
        let taxonomy = DEFAULT.info.taxonomy.as_ref().unwrap();
        let theme_area = &taxonomy.themes.iter().find(|t| t.id == theme.label).unwrap().area;
        prop_assert_eq!(theme_area, &area.label);
    }

    #[test]
    fn spanish_like_text_gives_a_distribution(words in proptest::collection::vec("[a-záéíóúñ]{1,12}", 0..40)) {
        let text = words.join(" ");
        let p = DEFAULT.linear.predict(&text, PredictOptions::default(), &mut Scratch::default());
        prop_assert_eq!(p.heads.len(), 3);
    }
}
