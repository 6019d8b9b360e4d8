//! The web console: its login and CSRF rules over plain HTTP, and its pages in headless
//! Chromium (Debian's chromium and chromium-driver) against a listener that the simulator
//! feeds. The browser test runs when ORDER_LISTENER_TEST_CHROMEDRIVER names chromedriver, and
//! saves a screenshot of each page into `target/console-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use fantoccini::{Client, ClientBuilder, Locator};
use order_listener::store::DeliveryState;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::*;
use crate::seller::simulate_into;

/// Form bodies, as a browser sends them.
trait FormBody {
    fn form_of(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_of(self, pairs: &[(&str, &str)]) -> Self {
        let encode = |text: &str| {
            percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        };
        let body = pairs
            .iter()
            .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of the first `name="csrf"` field of a page.
fn csrf_of(page: &str) -> String {
    let start = page.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

/// Logs in over plain HTTP; returns the `Cookie` header value.
async fn log_in(app: &TestApp, http: &reqwest::Client) -> String {
    let response = http
        .post(format!("{}/console/login", app.admin_base))
        .form_of(&[("token", ADMIN_TOKEN), ("next", "/console/orders")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(response.headers()["location"], "/console/orders");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_console_needs_a_login_and_its_cookie_reads_the_api_but_never_changes_it() {
    let app = spawn_app().await;
    let http = no_redirects();
    let admin = &app.admin_base;

    let response = http
        .get(format!("{admin}/console/orders?state=held"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(
        response.headers()["location"],
        "/console/login?next=%2Fconsole%2Forders%3Fstate%3Dheld"
    );
    let wrong = http
        .post(format!("{admin}/console/login"))
        .form_of(&[("token", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let cross_site = http
        .post(format!("{admin}/console/login"))
        .header("origin", "http://evil.example")
        .form_of(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status().as_u16(), 403);

    // Every stored value is escaped.
    let mut hostile = onap_event(
        "console-xss-1",
        "ServiceOrderCreationNotification",
        0,
        "SO-XSS",
        "acknowledged",
        vec![onap_item("1", "add", "acknowledged")],
    );
    hostile["event"]["externalId"] = json!("<script>alert('x')</script>");
    assert_eq!(app.post(&hostile).await.status().as_u16(), 201);

    let cookie = log_in(&app, &http).await;
    let page = http
        .get(format!("{admin}/console/orders"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let page = page.text().await.unwrap();
    assert!(page.contains(r#"<html lang="en">"#));
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(!page.contains("<script>alert"));
    let csrf = csrf_of(&page);

    // A page that cannot be shown is an HTML page that says why, with the API's status.
    for (path, status, says) in [
        (
            "/console/orders/NO-SUCH-ORDER",
            404,
            "/console/orders/NO-SUCH-ORDER",
        ),
        ("/console/orders?state=bogus", 400, "bogus"),
    ] {
        let refused = http
            .get(format!("{admin}{path}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), status, "{path}");
        assert!(
            refused.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let text = refused.text().await.unwrap();
        assert!(text.contains(r#"<html lang="en">"#), "{path}: {text}");
        assert!(text.contains(says), "{path}: {text}");
        assert!(
            text.contains(r#"href="/console/orders""#),
            "{path}: a way back"
        );
    }

    // The cookie reads the API (the page's EventSource needs that) …
    let read = http
        .get(format!("{admin}/api/v1/service-orders/SO-XSS"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status().as_u16(), 200);
    // … but never changes anything through it: POST routes want the Bearer token.
    let change = http
        .post(format!("{admin}/api/v1/dead-letters/1/retry"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(change.status().as_u16(), 401);
    // A console form without the session's CSRF token is refused.
    let forged = http
        .post(format!("{admin}/console/dead-letters/1/retry"))
        .header("cookie", &cookie)
        .form_of(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);

    let logout = http
        .post(format!("{admin}/console/logout"))
        .header("cookie", &cookie)
        .form_of(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status().as_u16(), 303);
    assert!(
        logout.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = http
        .get(format!("{admin}/console/orders"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status().as_u16(), 303, "the session ended at logout");
    app.stop().await;
}

/// chromedriver, started on a free port, stopped when dropped.
struct Driver {
    child: tokio::process::Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Driver {
    async fn start(path: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = tokio::process::Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::time::timeout(PATIENCE, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains("started successfully") {
                    return;
                }
            }
            panic!("chromedriver exited before it was ready");
        })
        .await
        .expect("chromedriver is ready in time");
        // Keep draining its output so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _profile: tempfile::tempdir().unwrap(),
        }
    }

    /// A headless Chromium session.
    async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", self._profile.path().display()),
                ],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("chromedriver opens a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// `target/console-screenshots/`, wherever the target directory is.
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the test tmp dir is inside the target dir")
        .join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
}

/// Runs the real binary's `simulate` against the app; returns each order's id and state.
async fn simulate(app: &TestApp, orders: usize) -> Vec<(String, String)> {
    let orders = orders.to_string();
    let args = ["--seed", "641", "--orders", &orders, "--max-items", "3"];
    let summary = simulate_into(&app.listener_url, &args).await;
    summary["truth"]
        .as_array()
        .unwrap()
        .iter()
        .map(|order| {
            (
                order["id"].as_str().unwrap().to_owned(),
                order["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Waits for an element, up to [`PATIENCE`].
async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("no {css} within {PATIENCE:?}: {error}"))
}

/// The `data-order-id` of every row of the orders table.
async fn listed_orders(browser: &Client) -> Vec<(String, String)> {
    let mut listed = Vec::new();
    for row in browser
        .find_all(Locator::Css("#orders-table tbody tr[data-order-id]"))
        .await
        .unwrap()
    {
        listed.push((
            row.attr("data-order-id").await.unwrap().unwrap(),
            row.attr("data-state").await.unwrap().unwrap_or_default(),
        ));
    }
    listed
}

/// Submits the page's filter form.
async fn submit_filters(browser: &Client) {
    browser
        .find(Locator::Css("form.filters button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test]
async fn in_chromium_the_console_lists_filters_follows_the_stream_and_retries_dead_letters() {
    let Some(chromedriver) = service(
        "ORDER_LISTENER_TEST_CHROMEDRIVER",
        "/usr/bin/chromedriver, to drive headless Chromium",
    ) else {
        return;
    };
    let receiver = WebhookReceiver::start(500).await;
    let app = spawn_app_with_file(&format!(
        r#"
[sinks.hooks]
type = "http"
url = "{}"
retry_schedule = ["100ms"]
retry_horizon = "300ms"
"#,
        receiver.url
    ))
    .await;
    let orders = simulate(&app, 8).await;
    let driver = Driver::start(Path::new(&chromedriver)).await;
    let browser = driver.browser().await;
    let admin = app.admin_base.clone();

    // Without the cookie the console sends the browser to the login page.
    browser
        .goto(&format!("{admin}/console/orders"))
        .await
        .unwrap();
    assert_eq!(
        browser.current_url().await.unwrap().path(),
        "/console/login"
    );
    screenshot(&browser, "login").await;
    browser
        .find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(ADMIN_TOKEN)
        .await
        .unwrap();
    browser
        .find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&browser, "#orders-table").await;
    assert_eq!(
        browser.current_url().await.unwrap().path(),
        "/console/orders"
    );

    // Every simulated order is listed.
    let listed = listed_orders(&browser).await;
    for (id, state) in &orders {
        assert!(
            listed.contains(&(id.clone(), state.clone())),
            "{id} ({state}) in {listed:?}"
        );
    }
    screenshot(&browser, "orders").await;

    // The state filter.
    let (_, state) = &orders[0];
    let expected: Vec<&String> = orders
        .iter()
        .filter(|(_, other)| other == state)
        .map(|(id, _)| id)
        .collect();
    browser
        .find(Locator::Id("state"))
        .await
        .unwrap()
        .select_by_value(state)
        .await
        .unwrap();
    submit_filters(&browser).await;
    wait_for(
        &browser,
        &format!("#state option[value='{state}'][selected]"),
    )
    .await;
    let filtered = listed_orders(&browser).await;
    assert_eq!(filtered.len(), expected.len(), "{filtered:?}");
    assert!(
        filtered
            .iter()
            .all(|(id, listed_state)| listed_state == state && expected.contains(&id))
    );

    // The text search, on the id.
    let (searched, _) = &orders[orders.len() - 1];
    browser
        .goto(&format!("{admin}/console/orders"))
        .await
        .unwrap();
    browser
        .find(Locator::Id("q"))
        .await
        .unwrap()
        .send_keys(searched)
        .await
        .unwrap();
    submit_filters(&browser).await;
    wait_for(&browser, &format!("input#q[value='{searched}']")).await;
    let found = listed_orders(&browser).await;
    assert_eq!(
        found.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        vec![searched]
    );

    // An order's page follows the stream: a new event shows up without a reload.
    let (followed, followed_state) = &orders[1];
    browser
        .goto(&format!("{admin}/console/orders/{followed}"))
        .await
        .unwrap();
    let shown_id = browser.find(Locator::Id("order-id")).await.unwrap();
    assert_eq!(shown_id.text().await.unwrap(), *followed);
    browser
        .execute("window.sameDocument = true; return true;", vec![])
        .await
        .unwrap();
    let live_event = json!({
        "eventId": "console-live-event",
        "eventDate": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "eventType": "ServiceOrderStateChangeNotification",
        "event": {"id": followed, "state": followed_state, "orderItem": []},
    });
    assert_eq!(app.post(&live_event).await.status().as_u16(), 201);
    wait_for(&browser, "li[data-event-id='console-live-event']").await;
    let same_document = browser
        .execute("return window.sameDocument === true;", vec![])
        .await
        .unwrap();
    assert_eq!(same_document, json!(true), "the page was not reloaded");
    browser
        .find(Locator::Css(
            "li[data-event-id='console-live-event'] summary",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    screenshot(&browser, "order").await;

    // The events page, filtered by type.
    browser
        .goto(&format!("{admin}/console/events"))
        .await
        .unwrap();
    wait_for(&browser, "tr[data-event-id='console-live-event']").await;
    screenshot(&browser, "events").await;
    browser
        .find(Locator::Id("type"))
        .await
        .unwrap()
        .select_by_value("ServiceOrderCreationNotification")
        .await
        .unwrap();
    submit_filters(&browser).await;
    wait_for(
        &browser,
        "#type option[value='ServiceOrderCreationNotification'][selected]",
    )
    .await;
    let rows = browser
        .find_all(Locator::Css("#events-table tbody tr[data-event-id]"))
        .await
        .unwrap();
    assert_eq!(rows.len(), orders.len(), "one creation per order");

    // The overview.
    browser.goto(&format!("{admin}/console/")).await.unwrap();
    wait_for(&browser, "svg.chart rect").await;
    let p99 = browser.find(Locator::Id("commit-p99")).await.unwrap();
    assert!(p99.text().await.unwrap().starts_with('≤'));
    screenshot(&browser, "overview").await;

    // A dead letter's Retry button queues the delivery again.
    let store = app.store.clone();
    let dead_letter = || async {
        store
            .dead_letters(Some(&"hooks".parse().unwrap()), None, 1000)
            .await
            .unwrap()
            .into_iter()
            .find(|letter| letter.event_id.as_str() == "console-live-event")
    };
    let letter = eventually("the live event's delivery is a dead letter", async || {
        dead_letter().await
    })
    .await;
    receiver.answer(200);
    browser
        .goto(&format!("{admin}/console/sinks"))
        .await
        .unwrap();
    screenshot(&browser, "sinks").await;
    browser
        .find(Locator::Css(&format!(
            "tr[data-delivery-id='{}'] button",
            letter.id
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let result = wait_for(&browser, "#retry-result").await;
    assert_eq!(
        result.text().await.unwrap(),
        format!("Delivery {} is queued again.", letter.id)
    );
    let event_id = letter.event_id.clone();
    let delivery_state = || async {
        store
            .deliveries_of(&event_id)
            .await
            .unwrap()
            .into_iter()
            .find(|delivery| delivery.id == letter.id)
            .map(|delivery| delivery.state)
            .unwrap()
    };
    let state = delivery_state().await;
    assert!(
        state == DeliveryState::Pending || state == DeliveryState::Delivered,
        "queued again: {state}"
    );
    eventually("the retried delivery is delivered", async || {
        (delivery_state().await == DeliveryState::Delivered).then_some(())
    })
    .await;

    // Logging out ends the session.
    browser
        .find(Locator::Css("form.logout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&browser, "input#token").await;
    browser
        .goto(&format!("{admin}/console/sinks"))
        .await
        .unwrap();
    assert_eq!(
        browser.current_url().await.unwrap().path(),
        "/console/login"
    );

    browser.close().await.unwrap();
    drop(driver);
    app.stop().await;
}

/// `serve` on a fresh data directory with no admin token configured.
fn fresh_serve(data_dir: &Path) -> RunningBinary {
    spawn_serve(
        std::process::Command::new(binary())
            .args([
                "serve",
                "--plain-http",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .env_remove("ORDER_LISTENER_ADMIN_TOKEN"),
    )
}

#[tokio::test]
async fn a_fresh_data_directory_prints_an_admin_token_and_a_console_link_that_works_once() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let first = fresh_serve(dir.path());
    let token = banner_value(&first.banner, "admin token").expect("the banner shows a token");
    let link = banner_value(&first.banner, "console").expect("the banner shows a login link");
    assert!(link.contains("/console/login?code="), "{link}");
    let admin = link.split("/console/").next().unwrap().to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // The link opens the console: a session cookie, then the overview.
    let opened = http.get(&link).send().await.unwrap();
    assert_eq!(opened.status(), 303);
    assert_eq!(opened.headers()["location"], "/console/");
    let cookie = opened.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let overview = http
        .get(format!("{admin}/console/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(overview.status(), 200);
    // Once only.
    assert_eq!(http.get(&link).send().await.unwrap().status(), 401);
    // The token opens the admin API.
    let events = |token: String| {
        http.get(format!("{admin}/api/v1/events"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(events(token.clone()).await.unwrap().status(), 200);
    assert_eq!(events("ola_wrong".into()).await.unwrap().status(), 401);
    drop(first);

    // The next start keeps the token, shows it no more and prints no link.
    let second = fresh_serve(dir.path());
    assert_eq!(banner_value(&second.banner, "admin token"), None);
    assert_eq!(banner_value(&second.banner, "console"), None);
    let admin = second.admin_url();
    let answer = http
        .get(format!("{admin}/api/v1/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let stored =
        std::fs::read_to_string(dir.path().join("credentials/admin-token.sha256")).unwrap();
    assert!(!stored.contains(&token), "only the token's hash is kept");
}

#[tokio::test]
async fn in_chromium_the_console_link_of_a_first_start_opens_the_console() {
    let Some(chromedriver) = service(
        "ORDER_LISTENER_TEST_CHROMEDRIVER",
        "/usr/bin/chromedriver, to drive headless Chromium",
    ) else {
        return;
    };
    init();
    let dir = tempfile::tempdir().unwrap();
    let serving = fresh_serve(dir.path());
    let link = banner_value(&serving.banner, "console").expect("the banner shows a login link");
    let driver = Driver::start(Path::new(&chromedriver)).await;
    let browser = driver.browser().await;
    browser.goto(&link).await.unwrap();
    let url = browser.current_url().await.unwrap();
    assert_eq!(url.path(), "/console/", "the link lands on the overview");
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("nav"))
        .await
        .expect("the console's navigation is shown");
    // The session works on the other pages.
    let orders = link.replace(&link[link.find("/console/").unwrap()..], "/console/orders");
    browser.goto(&orders).await.unwrap();
    assert_eq!(
        browser.current_url().await.unwrap().path(),
        "/console/orders"
    );
    browser.close().await.unwrap();
}
