//! The HTTPS service over real HTTP: a gateway started with `postern run`, and reqwest (rustls)
//! or curl as the client. Authentication everywhere, CSRF, the staged-then-committed flow of
//! the REST API and the Classic UI, bad input, the seed's TLS 1.3-only check.

use std::path::Path;
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode, redirect};
use serde_json::{Value, json};

mod common;

use common::{Gateway, cli, cli_c, send_mail, starttls_protocol, wait_mail_log};

fn client() -> Client {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
    Client::builder()
        // The gateway presents its factory self-signed certificate.
        .danger_accept_invalid_certs(true)
        .cookie_store(true)
        .redirect(redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

fn api(gateway: &Gateway, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", gateway.ngui)
}

fn classic(gateway: &Gateway, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", gateway.gui)
}

async fn token(http: &Client, gateway: &Gateway) -> String {
    let answer = http
        .post(api(gateway, "/api/v1/login"))
        .json(&json!({ "username": "admin", "password": gateway.admin_password() }))
        .send()
        .await
        .expect("login");
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.expect("JSON");
    body["token"].as_str().expect("a token").to_owned()
}

/// An API request with the bearer `token` and, when given, a JSON body.
async fn call(
    http: &Client,
    method: Method,
    url: impl reqwest::IntoUrl,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = http.request(method.clone(), url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// The text of the page at `url`.
async fn page_text(http: &Client, url: impl reqwest::IntoUrl) -> String {
    let answer = http.get(url).send().await.expect("GET");
    answer.text().await.expect("text")
}

/// The answer to a Classic UI form.
async fn post_form<T: serde::Serialize + ?Sized>(
    http: &Client,
    url: String,
    fields: &T,
) -> reqwest::Response {
    http.post(url).form(fields).send().await.expect("POST")
}

/// The JSON answer of an API `GET` with `token`.
async fn get_json(http: &Client, url: &str, token: &str) -> Value {
    let answer = http.get(url).bearer_auth(token).send().await.expect("GET");
    answer.json().await.expect("JSON")
}

/// Waits until `url` answers at all (the service restarts after a GUI HTTPS commit).
async fn until_serving(http: &Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if http.get(url).send().await.is_ok() {
            return;
        }
        assert!(Instant::now() < deadline, "{url} does not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn restarts_of_httpd(data: &Path) -> String {
    let status = cli_c(data, "status");
    status
        .stdout
        .lines()
        .find(|l| l.contains("httpd"))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn nothing_but_login_and_assets_answers_without_a_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gateway = Gateway::start(dir.path(), &[]);
    let http = client();

    // The Classic UI sends every page to the login page, and changes nothing.
    for path in ["/", "/system/ssl", "/system/ssl/edit", "/commit"] {
        let answer = http.get(classic(&gateway, path)).send().await.expect("GET");
        assert_eq!(answer.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(answer.headers()["location"], "/login", "{path}");
    }
    let answer = post_form(
        &http,
        classic(&gateway, "/system/ssl/edit"),
        &[("gui-tls13", "on"), ("gui-tls12", "on")],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let login = http
        .get(classic(&gateway, "/login"))
        .send()
        .await
        .expect("GET");
    assert_eq!(login.status(), StatusCode::OK);
    assert!(login.text().await.expect("text").contains("id=\"login\""));

    // Assets: only the known names; no way out of the list.
    let css = http
        .get(classic(&gateway, "/assets/style.css"))
        .send()
        .await
        .expect("GET");
    assert_eq!(css.status(), StatusCode::OK);
    for path in [
        "/assets/..%2f..%2fCargo.toml",
        "/assets/../../etc/passwd",
        "/assets/%2e%2e/config",
        "/assets/",
    ] {
        let answer = http.get(classic(&gateway, path)).send().await.expect("GET");
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
    }

    // Every operation the OpenAPI document lists exists, and all but login and the document
    // itself want a token, answered in JSON.
    let doc: Value = http
        .get(api(&gateway, "/api/v1/openapi.json"))
        .send()
        .await
        .expect("GET openapi")
        .json()
        .await
        .expect("JSON");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 13, "{doc}");
    let token = token(&http, &gateway).await;
    for (path, operations) in paths {
        let methods = operations.as_object().expect("operations").keys();
        for method in methods.filter(|m| *m != "parameters") {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            let public = path.ends_with("/login") || path.ends_with("/openapi.json");
            let anonymous = http
                .request(method.clone(), api(&gateway, path))
                .send()
                .await
                .expect("request");
            if public {
                assert_ne!(
                    anonymous.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {path}"
                );
            } else {
                assert_eq!(
                    anonymous.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {path}"
                );
                let body: Value = anonymous.json().await.expect("a JSON error");
                assert!(body["error"].is_string(), "{method} {path}: {body}");
            }
            if path.ends_with("/logout") {
                continue;
            }
            let with_token = http
                .request(method.clone(), api(&gateway, path))
                .bearer_auth(&token)
                .send()
                .await
                .expect("request");
            assert!(
                ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED]
                    .contains(&with_token.status()),
                "{method} {path} is in the document but not served: {}",
                with_token.status()
            );
        }
    }
    let unknown = call(
        &http,
        Method::GET,
        api(&gateway, "/api/v1/no-such-thing"),
        &token,
        None,
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let body: Value = unknown.json().await.expect("a JSON error");
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn the_api_stages_refuses_a_gap_and_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let http = client();
    let token = token(&http, &gateway).await;
    let ssl = api(&gateway, "/api/v1/config/ssl");

    let before: Value = get_json(&http, &ssl, &token).await;
    assert_eq!(
        before["settings"]["inbound_smtp"]["method"],
        "tlsv1_1tlsv1_2"
    );
    assert_eq!(before["pending"], false);
    assert_eq!(
        before["settings"]["tls13_ciphers"][0],
        "TLS_AES_256_GCM_SHA384"
    );

    // A selection with a gap is refused with the reason, and nothing is staged.
    let gap = call(
        &http,
        Method::PUT,
        &ssl,
        &token,
        Some(json!({ "inbound_smtp": { "protocols": ["tlsv1_3", "tlsv1_1"] } })),
    )
    .await;
    assert_eq!(gap.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = gap.json().await.expect("JSON");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("TLS v1.3 cannot be enabled with TLS v1.1"),
        "{body}"
    );
    // Bad input gets a JSON error, never a crash.
    for (body, status) in [
        ("{not json", StatusCode::BAD_REQUEST),
        (
            r#"{"inbound_smtp": {"protocols": "tlsv1_2"}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (r#"{"unknown": 1}"#, StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let answer = http
            .put(&ssl)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("PUT");
        assert_eq!(answer.status(), status, "{body}");
        let error: Value = answer.json().await.expect("a JSON error");
        assert!(error["error"].is_string(), "{body}: {error}");
    }
    let huge = format!(
        r#"{{"gui_https": {{"ciphers": "{}"}}}}"#,
        "A".repeat(200_000)
    );
    // The server answers 413 as soon as the limit is passed and closes the connection; a client
    // still writing the rest may see the close (broken pipe) before the answer. Either way the
    // body is refused, and the service goes on.
    let answer = http
        .put(&ssl)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await;
    if let Ok(answer) = answer {
        assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    let nothing = call(
        &http,
        Method::POST,
        api(&gateway, "/api/v1/commit"),
        &token,
        None,
    )
    .await;
    assert_eq!(nothing.status(), StatusCode::CONFLICT);

    // Staged: the session sees it, the appliance does not yet.
    let staged = call(
        &http,
        Method::PUT,
        &ssl,
        &token,
        Some(json!({ "inbound_smtp": { "protocols": ["tlsv1_3", "tlsv1_2", "tlsv1_1"] } })),
    )
    .await;
    assert_eq!(staged.status(), StatusCode::OK);
    let staged: Value = staged.json().await.expect("JSON");
    assert_eq!(staged["pending"], true);
    assert_eq!(
        staged["settings"]["inbound_smtp"]["method"],
        "tlsv1_1tlsv1_2tlsv1_3"
    );
    let print = cli_c(data, "sslconfig print");
    assert!(
        print
            .stdout
            .contains("Inbound SMTP method: tlsv1_1tlsv1_2\n"),
        "{print:?}"
    );

    let committed = call(
        &http,
        Method::POST,
        api(&gateway, "/api/v1/commit"),
        &token,
        Some(json!({ "comment": "TLS 1.3 inbound over the API" })),
    )
    .await;
    assert_eq!(committed.status(), StatusCode::OK);
    let committed: Value = committed.json().await.expect("JSON");
    assert!(committed["generation"].as_u64().expect("generation") >= 2);
    let print = cli_c(data, "sslconfig print");
    assert!(
        print
            .stdout
            .contains("Inbound SMTP method: tlsv1_1tlsv1_2tlsv1_3"),
        "{print:?}"
    );
    let detail = cli_c(data, "commitdetail");
    assert!(
        detail.stdout.contains("TLS 1.3 inbound over the API"),
        "{detail:?}"
    );

    // Clear drops what is staged; logout ends the token.
    call(
        &http,
        Method::PUT,
        &ssl,
        &token,
        Some(json!({ "outbound_smtp": { "protocols": ["tlsv1_2"] } })),
    )
    .await;
    let cleared: Value = call(
        &http,
        Method::POST,
        api(&gateway, "/api/v1/clear"),
        &token,
        None,
    )
    .await
    .json()
    .await
    .expect("JSON");
    assert_eq!(cleared["pending"], false);
    let after: Value = get_json(&http, &ssl, &token).await;
    assert_eq!(
        after["settings"]["outbound_smtp"]["method"],
        "tlsv1_1tlsv1_2"
    );
    let out = call(
        &http,
        Method::POST,
        api(&gateway, "/api/v1/logout"),
        &token,
        None,
    )
    .await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let gone = call(&http, Method::GET, &ssl, &token, None).await;
    assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);

    let log = std::fs::read_to_string(data.join("logs/gui_logs/gui.current")).expect("gui_logs");
    assert!(
        log.contains("The user admin successfully logged on from 127.0.0.1"),
        "{log}"
    );
    assert!(log.contains("committed generation"), "{log}");
}

/// The hidden CSRF field of the first form on a page.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..at + 64].to_owned()
}

#[tokio::test]
async fn the_classic_ui_logs_in_refuses_forged_forms_and_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let http = client();

    let wrong = post_form(
        &http,
        classic(&gateway, "/login"),
        &[("username", "admin"), ("password", "not-the-password")],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        wrong
            .text()
            .await
            .expect("text")
            .contains("id=\"login-error\"")
    );

    let password = gateway.admin_password();
    let ok = post_form(
        &http,
        classic(&gateway, "/login"),
        &[("username", "admin"), ("password", password.as_str())],
    )
    .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let cookie = ok.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }

    let edit = http
        .get(classic(&gateway, "/system/ssl/edit"))
        .send()
        .await
        .expect("GET");
    assert_eq!(edit.status(), StatusCode::OK);
    let page = edit.text().await.expect("text");
    assert!(page.contains("id=\"gui-tls13-ciphers\""), "{page}");
    let csrf = csrf_of(&page);

    let form = |csrf: Option<&str>| {
        let mut fields = vec![
            ("gui-tls13", "on"),
            ("gui-tls12", "on"),
            ("gui-tls11", "on"),
            ("gui-ciphers", "ECDHE+AESGCM:ECDHE+AES:!aNULL"),
            ("inbound-tls12", "on"),
            ("inbound-tls11", "on"),
            ("inbound-ciphers", "ECDHE+AESGCM:ECDHE+AES:!aNULL"),
            ("outbound-tls12", "on"),
            ("outbound-tls11", "on"),
            ("outbound-ciphers", "ECDHE+AESGCM:ECDHE+AES:!aNULL"),
        ];
        if let Some(c) = csrf {
            fields.push(("csrf", c));
        }
        fields
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vec<_>>()
    };
    // Without the token, or with another, the form is refused and nothing is staged.
    let wrong_token = "0".repeat(64);
    for fields in [form(None), form(Some(&wrong_token))] {
        let forged = post_form(&http, classic(&gateway, "/system/ssl/edit"), &fields).await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    }
    let view = page_text(&http, classic(&gateway, "/system/ssl")).await;
    assert!(!view.contains("id=\"uncommitted\""), "{view}");

    // A gap is refused by the server too.
    let mut gap = form(Some(&csrf));
    gap.retain(|(k, _)| k != "gui-tls12");
    let refused = post_form(&http, classic(&gateway, "/system/ssl/edit"), &gap).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = refused.text().await.expect("text");
    assert!(text.contains("id=\"form-error\""), "{text}");
    assert!(
        text.contains("TLS v1.3 cannot be enabled with TLS v1.1"),
        "{text}"
    );

    let staged = post_form(
        &http,
        classic(&gateway, "/system/ssl/edit"),
        &form(Some(&csrf)),
    )
    .await;
    assert_eq!(staged.status(), StatusCode::SEE_OTHER);
    let view = page_text(&http, classic(&gateway, "/system/ssl")).await;
    assert!(view.contains("id=\"uncommitted\""), "{view}");
    assert!(view.contains("TLS v1.1, TLS v1.2, TLS v1.3"), "{view}");
    assert!(
        cli_c(data, "sslconfig print")
            .stdout
            .contains("GUI HTTPS method: tlsv1_1tlsv1_2\n")
    );

    let committed = post_form(
        &http,
        classic(&gateway, "/commit"),
        &[("csrf", csrf.as_str()), ("comment", "GUI gets TLS 1.3")],
    )
    .await;
    assert_eq!(committed.status(), StatusCode::SEE_OTHER);
    let location = committed.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(location.starts_with("/system/ssl?committed="), "{location}");
    assert!(
        cli_c(data, "sslconfig print")
            .stdout
            .contains("GUI HTTPS method: tlsv1_1tlsv1_2tlsv1_3")
    );

    // The GUI HTTPS change restarts the service; the session survives it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !restarts_of_httpd(data).contains("1 restart") {
        assert!(
            Instant::now() < deadline,
            "httpd was not restarted: {}",
            restarts_of_httpd(data)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until_serving(&http, &classic(&gateway, "/login")).await;
    let view = http
        .get(classic(&gateway, &location))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        view.status(),
        StatusCode::OK,
        "the session did not survive the restart"
    );
    let text = view.text().await.expect("text");
    assert!(text.contains("id=\"notice\""), "{text}");
    assert!(!text.contains("id=\"uncommitted\""), "{text}");

    // Logging out ends the session: its cookie no longer opens pages.
    let csrf = csrf_of(&text);
    let out = post_form(
        &http,
        classic(&gateway, "/logout"),
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let old_cookie = cookie.split(';').next().expect("name=value").to_owned();
    let stale = client()
        .get(classic(&gateway, "/system/ssl"))
        .header("cookie", old_cookie)
        .send()
        .await
        .expect("GET");
    assert_eq!(stale.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn repeated_failures_lock_the_account_and_a_thousand_logins_are_all_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let http = client();
    let login = api(&gateway, "/api/v1/login");

    // A thousand logins at once for unknown users: each gets an answer, none a crash.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let http = http.clone();
        let login = login.clone();
        tasks.spawn(async move {
            http.post(&login)
                .json(&json!({ "username": format!("nobody{i}"), "password": "guess-guess" }))
                .send()
                .await
                .map(|a| a.status())
        });
    }
    let mut answered = 0;
    while let Some(result) = tasks.join_next().await {
        let status = result.expect("task").expect("an answer");
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::SERVICE_UNAVAILABLE].contains(&status),
            "{status}"
        );
        answered += 1;
    }
    assert_eq!(answered, 1000);
    // The right password still works, and the service never restarted.
    token(&http, &gateway).await;
    assert!(
        restarts_of_httpd(data).contains("0 restarts"),
        "{}",
        restarts_of_httpd(data)
    );

    for _ in 0..5 {
        let answer = http
            .post(&login)
            .json(&json!({ "username": "admin", "password": "wrong-wrong" }))
            .send()
            .await
            .expect("POST");
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    }
    let locked = http
        .post(&login)
        .json(&json!({ "username": "admin", "password": gateway.admin_password() }))
        .send()
        .await
        .expect("POST");
    assert_eq!(locked.status(), StatusCode::FORBIDDEN);
    let body: Value = locked.json().await.expect("JSON");
    assert!(
        body["error"].as_str().expect("error").contains("locked"),
        "{body}"
    );
    // The CLI on the console is not locked out.
    assert!(cli_c(data, "sslconfig print").status.success());
}

/// `curl` limited to TLS 1.2 at most (`--tls-max 1.2`) or not: whether it gets an HTTP answer.
fn curl_connects(url: &str, tls12_max: bool) -> bool {
    let mut curl = Command::new("curl");
    curl.args(["-sk", "-o", "/dev/null", "--max-time", "10"]);
    if tls12_max {
        curl.args(["--tls-max", "1.2"]);
    }
    curl.arg(url)
        .status()
        .expect("curl (installed by cargo xtask ci)")
        .success()
}

/// The seed's browser check: with GUI HTTPS TLS v1.3 only, a client without TLS v1.3 cannot
/// connect to either UI; with TLS v1.2 back in the range, it can.
#[tokio::test]
async fn a_client_without_tls13_is_refused_when_gui_https_is_tls13_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let http = client();
    let urls = [
        classic(&gateway, "/login"),
        api(&gateway, "/api/v1/openapi.json"),
    ];
    for url in &urls {
        assert!(curl_connects(url, true), "{url}");
    }

    let (ok, out) = cli(data, "sslconfig gui 1\ncommit\nGUI HTTPS TLS 1.3 only\n");
    assert!(ok, "{out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while curl_connects(&urls[0], true) || !curl_connects(&urls[0], false) {
        assert!(
            Instant::now() < deadline,
            "GUI HTTPS did not become TLS 1.3 only"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for url in &urls {
        assert!(!curl_connects(url, true), "a TLS 1.2 client reached {url}");
        assert!(
            curl_connects(url, false),
            "a TLS 1.3 client did not reach {url}"
        );
    }
    let log = std::fs::read_to_string(data.join("logs/gui_logs/gui.current")).expect("gui_logs");
    assert!(log.contains("TLS failed: ("), "{log}");

    let (ok, out) = cli(data, "sslconfig gui 1-3\ncommit\nback to 1.1-1.3\n");
    assert!(ok, "{out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !curl_connects(&urls[0], true) {
        assert!(
            Instant::now() < deadline,
            "TLS 1.2 clients are still refused"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(curl_connects(&urls[1], true));
    until_serving(&http, &urls[1]).await;
}

/// Routes, destination controls, the RAT and the certificates over the API; the same settings
/// through the Classic UI's forms, with the reasons of a refusal on the page.
#[tokio::test]
async fn mail_flow_settings_over_the_api_and_the_classic_ui() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let http = client();
    let token = token(&http, &gateway).await;
    let put = |path: &str, body: Value| {
        http.put(api(&gateway, path))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let route = put(
        "/api/v1/routes/example.com",
        json!({ "hosts": ["127.0.0.1:2526"] }),
    )
    .await
    .expect("PUT");
    assert_eq!(route.status(), StatusCode::OK);
    let body: Value = route.json().await.expect("JSON");
    assert_eq!(body["routes"][0]["hosts"][0], "127.0.0.1:2526", "{body}");
    assert_eq!(body["pending"], true);
    let bad = put("/api/v1/routes/not a domain", json!({ "hosts": ["x"] }))
        .await
        .expect("PUT");
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let dest = put(
        "/api/v1/destinations/example.com",
        json!({ "tls": "required-verify", "max_concurrency": 5 }),
    )
    .await
    .expect("PUT");
    assert_eq!(dest.status(), StatusCode::OK);
    let rat = put(
        "/api/v1/listeners/IncomingMail/rat/example.com",
        json!({ "action": "accept" }),
    )
    .await
    .expect("PUT");
    assert_eq!(rat.status(), StatusCode::OK);
    let all = call(
        &http,
        Method::DELETE,
        api(&gateway, "/api/v1/destinations/ALL"),
        &token,
        None,
    )
    .await;
    assert_eq!(all.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let certificates = get_json(&http, &api(&gateway, "/api/v1/certificates"), &token).await;
    assert!(
        certificates["certificates"]["factory_used_by"]
            .to_string()
            .contains("GUI HTTPS"),
        "{certificates}"
    );
    let committed = call(
        &http,
        Method::POST,
        api(&gateway, "/api/v1/commit"),
        &token,
        Some(json!({ "comment": "mail flow over the API" })),
    )
    .await;
    assert_eq!(committed.status(), StatusCode::OK);
    let routes = cli_c(data, "smtproutes print");
    assert!(routes.stdout.contains("127.0.0.1:2526"), "{routes:?}");
    let dests = cli_c(data, "destconfig print");
    assert!(dests.stdout.contains("example.com"), "{dests:?}");
    let rat = cli_c(data, "listenerconfig rcptaccess print");
    assert!(rat.stdout.contains("example.com"), "{rat:?}");

    // The Classic UI: log in, add a route through the form, see a refusal explained.
    let password = gateway.admin_password();
    let login = post_form(
        &http,
        classic(&gateway, "/login"),
        &[("username", "admin"), ("password", password.as_str())],
    )
    .await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let page = page_text(&http, classic(&gateway, "/mail/routes")).await;
    assert!(page.contains("127.0.0.1:2526"), "{page}");
    let csrf = csrf_of(&page);
    let added = post_form(
        &http,
        classic(&gateway, "/mail/routes"),
        &[
            ("csrf", csrf.as_str()),
            ("action", "set"),
            ("domain", ".example.org"),
            ("hosts", "mx1.example.org, mx2.example.org:2525"),
        ],
    )
    .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    let page = page_text(&http, classic(&gateway, "/mail/routes")).await;
    assert!(page.contains("mx2.example.org:2525"), "{page}");
    assert!(page.contains("id=\"uncommitted\""), "{page}");
    let refused = post_form(
        &http,
        classic(&gateway, "/mail/destinations"),
        &[
            ("csrf", csrf.as_str()),
            ("action", "set"),
            ("domain", "example.net"),
            ("tls", "required"),
            ("max_concurrency", "5000"),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = refused.text().await.expect("text");
    assert!(text.contains("from 1 to 1000"), "{text}");
    for path in [
        "/mail/destinations",
        "/mail/listeners",
        "/network/certificates",
    ] {
        let page = http.get(classic(&gateway, path)).send().await.expect("GET");
        assert_eq!(page.status(), StatusCode::OK, "{path}");
    }
}

/// Mail that went through is found by Message Tracking (API and page), and the TLS Connections
/// report counts the clear-text and the STARTTLS connections, with the sender's domain.
#[tokio::test]
async fn tracking_and_the_tls_report_read_what_went_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let http = client();
    let token = token(&http, &gateway).await;
    let rat = call(
        &http,
        Method::PUT,
        api(&gateway, "/api/v1/listeners/IncomingMail/rat/example.test"),
        &token,
        Some(json!({ "action": "accept" })),
    )
    .await;
    assert_eq!(rat.status(), StatusCode::OK);
    let commit = call(
        &http,
        Method::POST,
        api(&gateway, "/api/v1/commit"),
        &token,
        None,
    )
    .await;
    assert_eq!(commit.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !send_mail(gateway.smtp, "alice@sender.example", "bob@example.test") {
        assert!(Instant::now() < deadline, "the RAT entry was never applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(starttls_protocol(gateway.smtp, &[]), "TLSv1.2");
    wait_mail_log(data, |l| l.contains(" TLS success protocol TLSv1.2 "));

    let url = format!(
        "{}?sender=ALICE@sender&recipient=example.test",
        api(&gateway, "/api/v1/tracking")
    );
    let found = get_json(&http, &url, &token).await;
    let messages = found["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1, "{found}");
    assert_eq!(messages[0]["sender"], "alice@sender.example");
    assert_eq!(messages[0]["recipients"][0], "bob@example.test");
    assert!(
        messages[0]["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.contains("New SMTP ICID"))),
        "{found}"
    );
    let none = get_json(
        &http,
        &format!("{}?sender=nobody", api(&gateway, "/api/v1/tracking")),
        &token,
    )
    .await;
    assert_eq!(none["messages"].as_array().map(Vec::len), Some(0));
    let bad = call(
        &http,
        Method::GET,
        format!("{}?since=yesterday", api(&gateway, "/api/v1/tracking")),
        &token,
        None,
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let report = get_json(&http, &api(&gateway, "/api/v1/reports/tls"), &token).await;
    let inbound = &report["inbound"];
    assert!(inbound["clear"].as_u64().expect("clear") >= 1, "{report}");
    assert_eq!(inbound["tls"][0]["protocol"], "TLSv1.2", "{report}");
    assert!(
        inbound["domains"].to_string().contains("sender.example"),
        "{report}"
    );

    // The pages show the same.
    let password = gateway.admin_password();
    post_form(
        &http,
        classic(&gateway, "/login"),
        &[("username", "admin"), ("password", password.as_str())],
    )
    .await;
    let page = page_text(
        &http,
        classic(&gateway, "/monitor/tracking?recipient=bob%40example.test"),
    )
    .await;
    assert!(page.contains("alice@sender.example"), "{page}");
    assert!(
        page.contains("id=\"tracking-count\">1 message(s)"),
        "{page}"
    );
    let page = page_text(&http, classic(&gateway, "/monitor/tls")).await;
    assert!(page.contains("<svg id=\"tls-inbound-chart\""), "{page}");
    assert!(page.contains("TLSv1.2 ECDHE-"), "{page}");
}

/// `commit confirmed` from the web: a commit that asks for confirmation shows the banner on
/// every page until someone confirms it; confirming twice is refused the second time.
#[tokio::test]
async fn a_commit_awaiting_confirmation_shows_a_banner_until_confirmed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let http = client();
    let token = token(&http, &gateway).await;
    call(
        &http,
        Method::PUT,
        api(&gateway, "/api/v1/config/ssl"),
        &token,
        Some(json!({ "outbound_smtp": { "protocols": ["tlsv1_2", "tlsv1_3"] } })),
    )
    .await;
    let too_long = call(
        &http,
        Method::POST,
        api(&gateway, "/api/v1/commit"),
        &token,
        Some(json!({ "comment": "x", "confirm_within_minutes": 5000 })),
    )
    .await;
    assert_eq!(too_long.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let committed = call(
        &http,
        Method::POST,
        api(&gateway, "/api/v1/commit"),
        &token,
        Some(json!({ "comment": "outbound 1.2-1.3, on probation", "confirm_within_minutes": 10 })),
    )
    .await;
    assert_eq!(committed.status(), StatusCode::OK);
    let committed: Value = committed.json().await.expect("JSON");
    assert!(committed["confirm_by"].as_i64().is_some(), "{committed}");
    let status = get_json(&http, &api(&gateway, "/api/v1/status"), &token).await;
    assert_eq!(
        status["confirmation"]["generation"], committed["generation"],
        "{status}"
    );

    let password = gateway.admin_password();
    post_form(
        &http,
        classic(&gateway, "/login"),
        &[("username", "admin"), ("password", password.as_str())],
    )
    .await;
    let page = page_text(&http, classic(&gateway, "/")).await;
    assert!(page.contains("id=\"awaiting-confirmation\""), "{page}");
    let csrf = csrf_of(&page);
    let confirmed = post_form(
        &http,
        classic(&gateway, "/confirm"),
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(confirmed.status(), StatusCode::SEE_OTHER);
    let page = page_text(&http, classic(&gateway, "/system/ssl")).await;
    assert!(!page.contains("id=\"awaiting-confirmation\""), "{page}");
    let again = call(
        &http,
        Method::POST,
        api(&gateway, "/api/v1/confirm"),
        &token,
        None,
    )
    .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let print = cli_c(data, "sslconfig print");
    assert!(
        print
            .stdout
            .contains("Outbound SMTP method: tlsv1_2tlsv1_3"),
        "{print:?}"
    );
}
