//! The review page in a real browser: `pqrs serve` on an ephemeral port with a temporary prediction log and an API
//! key, a few comments classified through `/v1/classify`, then headless Chromium driven over WebDriver
//! (chromedriver) to enter the key, load the queue, correct one label with the keyboard and confirm another with a
//! click; the API must then hold both reviews.
//!
//! Ignored by default because it needs Debian's `chromium` and `chromium-driver`: `tests/browser/run.sh` installs
//! them when missing, builds `pqrs` and runs this test with `--ignored`. Nothing here uses the network: the server,
//! chromedriver and the browser all run on 127.0.0.1. Environment: `PQRS_BIN` (the binary, else the one next to
//! this test), `PQRS_CACHE_DIR` (where the default model is cached; else a temporary directory, so the model is
//! trained on the fly), `CHROMIUM` and `CHROMEDRIVER` (default `/usr/bin/chromium`, `/usr/bin/chromedriver`),
//! `PQRS_REVIEW_SCREENSHOT` (a PNG of the page with the queue loaded; default `/tmp/review-page.png`).
//!
//! The server and chromedriver are started with the `tests` crate's harness (`tests/src/`); chromedriver runs in a
//! process group of its own, killed as a whole when the test ends, whether it passed or not, so that its Chromium
//! processes never outlive a failed test.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tests::{Group, IfMissing, Ready, Server, pqrs_binary, serve_command, start_and_read};

const KEY: &str = "browser-key-0123456789";
const REVIEWER: &str = "Revisora QA";
/// How long the page may take to show what it was asked for (the first model load can be slow in a debug build).
const PATIENCE: Duration = Duration::from_secs(30);

/// Comments to classify: different types and areas, so that the queue has several items to order.
const COMMENTS: [&str; 6] = [
    "Llevo tres meses sin recibir la cuota monetaria y nadie me responde en la sede",
    "Pésima atención en la sede de Bello, me hicieron esperar tres horas y la funcionaria me trató mal",
    "Solicito el certificado de afiliación de mi esposa para presentarlo en el colegio",
    "Deberían abrir más horarios los sábados en el centro recreativo",
    "Excelente atención de la enfermera en la cita médica, muchas gracias",
    "Me cobraron dos veces la cuota del crédito de libranza este mes",
];

/// A JSON client of the API, independent of the browser.
struct Api {
    client: HttpClient<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {KEY}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                body.map(Value::to_string).unwrap_or_default(),
            )))
            .expect("the request is well formed");
        let response = self
            .client
            .request(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("the body is read")
            .to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, value)
    }

    async fn get(&self, path: &str) -> Value {
        let (status, value) = self.call("GET", path, None).await;
        assert_eq!(status, 200, "GET {path}: {value}");
        value
    }
}

/// Waits for an element matching `css`, with a message naming it when it never comes.
async fn wait_for(browser: &Client, css: &str) -> Element {
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("the page never showed `{css}`: {e}"))
}

/// Waits until the element matching `css` is displayed and its text contains `expected`; returns the whole text.
async fn wait_for_text(browser: &Client, css: &str, expected: &str) -> String {
    let started = Instant::now();
    loop {
        let mut text = String::new();
        if let Ok(element) = browser.find(Locator::Css(css)).await {
            text = element.text().await.unwrap_or_default();
            if element.is_displayed().await.unwrap_or(false) && text.contains(expected) {
                return text;
            }
        }
        assert!(
            started.elapsed() < PATIENCE,
            "`{css}` never said {expected:?}; it says {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the agreement table's row of `head` starts with the cells `expected` (reviewed, agreed).
async fn wait_for_cells(browser: &Client, head: &str, expected: &[&str]) {
    let css = format!("#agreement-table tr[data-head=\"{head}\"] td");
    let started = Instant::now();
    loop {
        let mut cells = Vec::new();
        for cell in browser
            .find_all(Locator::Css(&css))
            .await
            .unwrap_or_default()
        {
            cells.push(cell.text().await.unwrap_or_default().trim().to_string());
        }
        if cells.len() >= expected.len() && cells[..expected.len()] == *expected {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the dashboard row of {head} never read {expected:?}; it reads {cells:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Types `key` into the key form and submits it.
async fn submit_key(browser: &Client, key: &str) {
    let key_field = wait_for(browser, "#api-key").await;
    key_field.send_keys(key).await.unwrap();
    browser
        .find(Locator::Css("#login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits until the first comment's `head` is reviewed and returns what the page says of the review.
async fn review_result(browser: &Client, head: &str) -> String {
    let done = wait_for(
        browser,
        &format!("#item-0 fieldset.head.done[data-head=\"{head}\"]"),
    )
    .await;
    done.find(Locator::Css(".result"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver; run tests/browser/run.sh"]
async fn a_reviewer_corrects_a_label_in_headless_chromium_and_the_correction_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let cache = std::env::var_os("PQRS_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("cache"));

    // The server, with its own prediction log.
    let mut serve = serve_command(&pqrs_binary(IfMissing::Fail), &cache, KEY);
    serve.arg("--db").arg(dir.path().join("pqrs.sqlite3"));
    let server = Server::start(serve, dir.path().join("serve.log"));
    let base = format!("http://{}", server.addr());
    let api = Api {
        client: HttpClient::builder(TokioExecutor::new()).build_http(),
        base: base.clone(),
    };

    // A few predictions, logged by the server.
    for (n, text) in COMMENTS.iter().enumerate() {
        let body = json!({
            "text": text,
            "id": format!("navegador-{n}"),
            "channel": "web",
            "received_at": format!("2026-03-0{}T10:00:00-05:00", n + 2),
        });
        let (status, answer) = api.call("POST", "/v1/classify", Some(&body)).await;
        assert_eq!(status, 200, "{answer}");
    }
    // The log is written off the request path: wait until the queue holds every comment.
    let started = Instant::now();
    let queue = loop {
        let queue = api.get("/v1/review/queue?limit=50").await;
        if queue["total"].as_u64() == Some(COMMENTS.len() as u64) {
            break queue;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the queue never held the {} comments: {queue}",
            COMMENTS.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let first_id = queue["items"][0]["id"].as_str().unwrap().to_string();

    // Headless Chromium through chromedriver, with a profile of its own and nothing that phones home.
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let chromedriver =
        std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    let mut driver = Command::new(&chromedriver);
    driver.arg("--port=0");
    let (_driver, port) = start_and_read(
        driver,
        Group::Own,
        Ready::AnyLine("started successfully on port "),
        &dir.path().join("chromedriver.log"),
    );
    let profile = dir.path().join("chromium-profile");
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1800",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let browser = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities.as_object().unwrap().clone())
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("chromedriver opens a Chromium session");

    browser.goto(&format!("{base}/review")).await.unwrap();
    assert_eq!(
        browser.title().await.unwrap(),
        "Revisión de clasificaciones · pqrs-router"
    );

    // A wrong key is refused with a message, and the key form stays.
    wait_for(&browser, "#reviewer")
        .await
        .send_keys(REVIEWER)
        .await
        .unwrap();
    submit_key(&browser, "clave-equivocada").await;
    let refusal = wait_for_text(&browser, "#alert", "no es válida").await;
    assert!(refusal.contains("clave"), "{refusal}");
    assert!(
        browser
            .find(Locator::Css("#login"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );

    // The right key: the queue loads, most uncertain first, as the API orders it.
    submit_key(&browser, KEY).await;
    let first = wait_for(&browser, "#queue li.item.current").await;
    assert_eq!(
        first.attr("data-id").await.unwrap().as_deref(),
        Some(first_id.as_str())
    );
    let items = browser
        .find_all(Locator::Css("#queue li.item"))
        .await
        .unwrap();
    assert_eq!(items.len(), COMMENTS.len());
    let text = first.find(Locator::Css("blockquote.text")).await.unwrap();
    assert_eq!(
        text.text().await.unwrap(),
        queue["items"][0]["text"].as_str().unwrap(),
        "the page shows the masked text the API gives"
    );
    let marks = browser.find_all(Locator::Css("#queue mark")).await.unwrap();
    assert!(!marks.is_empty(), "no explanation n-gram is highlighted");

    // Correct the active head of the first comment with the keyboard: the number of a label that is not the
    // predicted one.
    let active = wait_for(&browser, "#item-0 fieldset.head.active").await;
    let head = active
        .attr("data-head")
        .await
        .unwrap()
        .expect("a head name");
    let predicted = queue["items"][0]["heads"][&head]["label"]
        .as_str()
        .unwrap()
        .to_string();
    let alternative = active
        .find(Locator::Css("button.choice:not(.predicted)"))
        .await
        .expect("a label other than the prediction is offered");
    let corrected = alternative.attr("data-label").await.unwrap().unwrap();
    let shortcut = alternative
        .attr("aria-keyshortcuts")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(corrected, predicted);
    first.send_keys(&shortcut).await.unwrap();
    let result = review_result(&browser, &head).await;
    assert!(result.starts_with("Corregida"), "{result}");
    assert!(result.contains(REVIEWER), "{result}");

    // Confirm the next head with one click on its button.
    let next = wait_for(&browser, "#item-0 fieldset.head.active").await;
    let confirmed_head = next.attr("data-head").await.unwrap().unwrap();
    assert_ne!(confirmed_head, head, "the page moves on to the next head");
    next.find(Locator::Css("button.confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let result = review_result(&browser, &confirmed_head).await;
    assert!(result.starts_with("Confirmada"), "{result}");

    // The dashboard follows the reviews: for the corrected head one reviewed and none agreed, for the confirmed
    // head one of one.
    wait_for_cells(&browser, &head, &["1", "0"]).await;
    wait_for_cells(&browser, &confirmed_head, &["1", "1"]).await;

    let png = browser.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    let screenshot = std::env::var_os("PQRS_REVIEW_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/review-page.png"));
    std::fs::write(&screenshot, &png).unwrap();
    eprintln!("screenshot of the review page: {}", screenshot.display());

    // Both reviews are stored, as the API tells: the comment has one head left, so it is still in the queue.
    let queue = api.get("/v1/review/queue?limit=50").await;
    let item = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["id"] == first_id.as_str())
        .unwrap_or_else(|| panic!("{first_id} left the queue with a head unreviewed: {queue}"));
    let corrections = item["corrections"].as_array().unwrap();
    assert!(
        corrections.iter().any(|c| c["head"] == head.as_str()
            && c["correct_label"] == corrected.as_str()
            && c["reviewer"] == REVIEWER),
        "the correction is not stored: {corrections:?}"
    );
    assert!(
        corrections
            .iter()
            .any(|c| c["head"] == confirmed_head.as_str()
                && c["correct_label"] == item["heads"][&confirmed_head]["label"]
                && c["reviewer"] == REVIEWER),
        "the confirmation is not stored: {corrections:?}"
    );
    let stats = api.get("/v1/review/stats").await;
    assert_eq!(stats["agreement"][&head]["reviewed"], 1, "{stats}");
    assert_eq!(stats["agreement"][&head]["agreed"], 0, "{stats}");
    assert_eq!(
        stats["agreement"][&confirmed_head]["reviewed"], 1,
        "{stats}"
    );
    assert_eq!(stats["agreement"][&confirmed_head]["agreed"], 1, "{stats}");

    // j moves to the next comment.
    let current = wait_for(&browser, "#queue li.item.current").await;
    current.send_keys("j").await.unwrap();
    wait_for(&browser, "#item-1.current").await;

    // With the server gone, reloading (r) says so instead of failing silently.
    drop(server);
    let current = wait_for(&browser, "#queue li.item.current").await;
    current.send_keys("r").await.unwrap();
    let message = wait_for_text(&browser, "#alert", "No se pudo contactar el servidor").await;
    assert!(message.contains("Reintentar"), "no retry button: {message}");
    browser.close().await.unwrap();
}
