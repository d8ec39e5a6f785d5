//! The console over plain HTTP (the browser walk-through is in `browser.rs`): logins and their
//! limits, sessions, form tokens, scopes by URL, escaping, volunteers' login links, accounts
//! through the API and the CLI.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;

/// A browser-like client: keeps cookies, does not follow redirects.
pub struct Visitor {
    client: reqwest::Client,
    base: String,
    pub cookies: HashMap<String, String>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the first hidden `_csrf` field.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"_csrf\" value=\"")
            .expect("a form token");
        let rest = &self.body[at + 20..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl Visitor {
    pub fn new(base: &str) -> Visitor {
        Visitor {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, resp: reqwest::Response) -> Page {
        for c in resp.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (kv, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        Page {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(resp).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(form).unwrap();
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep(resp).await
    }

    /// Logs in through the form; answers the reply to the POST.
    pub async fn login(&mut self, name: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        let token = form.csrf();
        self.post(
            "/login",
            &[
                ("_csrf", &token),
                ("name", name),
                ("password", password),
                ("next", "/"),
            ],
        )
        .await
    }
}

/// A console account made through the API.
pub async fn account(d: &Daemon, name: &str, scope: &str) -> String {
    let password = format!("{name}-secret-pw");
    let r = d
        .post(
            "/v1/users",
            &d.admin,
            json!({"name": name, "scope": scope, "password": password}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    password
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_log_in_and_every_form_needs_its_token() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let pw = account(&d, "zhang.fang", &format!("station:{}", w.stations[0])).await;
    let mut v = Visitor::new(&d.url);
    // Pages need a login.
    let r = v.get("/station").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.location().starts_with("/login?next=%2Fstation"),
        "{}",
        r.location()
    );
    // A wrong password: the same answer as an unknown user.
    let r = v.login("zhang.fang", "not the password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("用户名或密码不对"), "{}", r.body);
    let r = v.login("nobody", "not the password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The login form itself needs its token.
    let r = v
        .post(
            "/login",
            &[
                ("_csrf", "0123456789abcdef0123456789abcdef"),
                ("name", "zhang.fang"),
                ("password", &pw),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = v.login("zhang.fang", &pw).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("linli_session="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    // Not behind TLS here: not Secure (a [console] setting or an https public URL turns it on).
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert!(
        !cookie.contains("lnl_"),
        "a session is not an API token: {cookie}"
    );
    let r = v.get("/").await;
    assert_eq!(r.location(), "/station");
    let page = v.get("/station").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(page.body.contains("工作站0"), "the station's own name");
    // Every form carries the session's token; without it, or with another, nothing happens.
    let token = page.csrf();
    let request = [
        ("person", w.persons[0].to_string()),
        ("title", "送药".to_owned()),
        ("due_start", "2026-11-29T10:00".to_owned()),
        ("due_end", "2026-11-30T18:00".to_owned()),
        ("priority", "high".to_owned()),
    ];
    let as_refs = |extra: Option<&str>| -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = request
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        if let Some(t) = extra {
            f.push(("_csrf".into(), t.to_owned()));
        }
        f
    };
    for extra in [None, Some("0".repeat(48).as_str()), Some("")] {
        let f = as_refs(extra);
        let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = v.post("/station/requests", &refs).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{extra:?}: {}", r.body);
        assert!(r.body.contains("表单已失效"));
    }
    let tasks = d.get("/v1/tasks", &d.admin).await;
    assert_eq!(
        tasks.body["items"].as_array().unwrap().len(),
        0,
        "nothing was recorded"
    );
    // With it, the request is recorded and offered at once.
    let f = as_refs(Some(&token));
    let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = v.post("/station/requests", &refs).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        r.location().starts_with("/station/tasks/"),
        "{}",
        r.location()
    );
    // A careless request comes back with the fields named and nothing stored.
    let r = v
        .post(
            "/station/requests",
            &[
                ("_csrf", &token),
                ("person", "x"),
                ("title", ""),
                ("due_start", "tomorrow"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    for field in ["person", "due_start", "due_end"] {
        assert!(
            r.body.contains(&format!("<code>{field}</code>")),
            "{field}: {}",
            r.body
        );
    }
    assert_eq!(
        d.get("/v1/tasks", &d.admin).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Logging out ends the session on the server, not only in this browser.
    let session = v.cookies["linli_session"].clone();
    let r = v.post("/logout", &[("_csrf", &token)]).await;
    assert_eq!(r.location(), "/login");
    v.cookies.insert("linli_session".into(), session);
    assert_eq!(v.get("/station").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread")]
async fn login_attempts_are_limited_per_account_and_address() {
    let d = Daemon::start().await;
    let pw = account(&d, "admin.wu", "admin").await;
    let mut v = Visitor::new(&d.url);
    for _ in 0..5 {
        assert_eq!(
            v.login("admin.wu", "guess-guess-guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked now, even with the right password; the message says how long.
    let r = v.login("admin.wu", &pw).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.body.contains("分钟后再试"), "{}", r.body);
    // The lock lifts with time (the daemon's clock).
    d.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(v.login("admin.wu", &pw).await.status, StatusCode::SEE_OTHER);
    // One address guessing many accounts is stopped too.
    let mut v = Visitor::new(&d.url);
    for i in 0..30 {
        let r = v.login(&format!("user{i}"), "guess-guess-guess").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        v.login("someone", "guess-guess-guess").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_station_worker_cannot_reach_another_stations_records_by_url() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let mine = d
        .created("/v1/volunteers", volunteer(w.stations[0], 501))
        .await["id"]
        .as_u64()
        .unwrap();
    let theirs = d
        .created("/v1/volunteers", volunteer(w.stations[1], 502))
        .await["id"]
        .as_u64()
        .unwrap();
    let station1 = d.token(&format!("station:{}", w.stations[1])).await;
    let task = d
        .post("/v1/tasks", &station1, one_off(w.persons[1], "normal"))
        .await;
    assert_eq!(task.status, StatusCode::CREATED, "{:?}", task.body);
    let task = task.body["id"].as_u64().unwrap();
    let pw = account(&d, "sun.li", &format!("station:{}", w.stations[0])).await;
    let mut v = Visitor::new(&d.url);
    v.login("sun.li", &pw).await;
    assert_eq!(
        v.get(&format!("/station/persons/{}", w.persons[0]))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        v.get(&format!("/station/volunteers/{mine}")).await.status,
        StatusCode::OK
    );
    for path in [
        format!("/station/persons/{}", w.persons[1]),
        format!("/station/persons/{}", w.persons[2]),
        format!("/station/tasks/{task}"),
        format!("/station/volunteers/{theirs}"),
        format!("/station/requests/new?person={}", w.persons[1]),
        "/station/persons/999999".to_owned(),
    ] {
        let r = v.get(&path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
        assert!(!r.body.contains("张桂兰"), "{path} shows nobody's name");
    }
    let token = v.get("/station").await.csrf();
    for path in [
        format!("/station/volunteers/{theirs}/login-link"),
        format!("/station/persons/{}/reveal", w.persons[1]),
        format!("/station/tasks/{task}/cancel"),
        format!("/station/tasks/{task}/reoffer"),
    ] {
        let r = v.post(&path, &[("_csrf", &token)]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
    }
    let t = d.get(&format!("/v1/tasks/{task}"), &d.admin).await;
    assert_ne!(t.body["status"], "cancelled");
    // Bureau pages follow the same scopes: another county's coverage is not found.
    let r = v.get("/bureau?region=620821000000").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // A volunteer's session reaches no staff page.
    let link = d
        .post(
            &format!("/v1/volunteers/{mine}/login-link"),
            &d.admin,
            json!({}),
        )
        .await;
    let code = link.body["code"].as_str().unwrap();
    let mut phone = Visitor::new(&d.url);
    let page = phone.get(&format!("/login/v/{code}")).await;
    let r = phone
        .post(&format!("/login/v/{code}"), &[("_csrf", &page.csrf())])
        .await;
    assert_eq!(r.location(), "/v");
    for path in [
        "/station",
        "/bureau",
        "/station/persons/1",
        "/bureau/plugins",
    ] {
        let r = phone.get(path).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.location(), "/v", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn resident_ids_are_masked_until_revealed_and_the_reveal_is_audited() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let mut hostile = elder("620802001001", 333);
    hostile["name"] = json!("<script>alert(1)</script>王");
    let p = d.created("/v1/persons", hostile).await;
    let (id, rid) = (
        p["id"].as_u64().unwrap(),
        p["resident_id"].as_str().unwrap().to_owned(),
    );
    let pw = account(&d, "zhou.min", &format!("station:{}", w.stations[0])).await;
    let mut v = Visitor::new(&d.url);
    v.login("zhou.min", &pw).await;
    let page = v.get(&format!("/station/persons/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;王"),
        "escaped"
    );
    assert!(!page.body.contains("<script>alert"), "never raw");
    let masked = format!("{}********{}", &rid[..6], &rid[14..]);
    assert!(page.body.contains(&masked), "{masked}");
    assert!(!page.body.contains(&rid), "the full ID is not on the page");
    let search = v.get("/station/persons?q=%E7%8E%8B").await;
    assert!(search.body.contains(&masked) && !search.body.contains(&rid));
    let r = v
        .post(
            &format!("/station/persons/{id}/reveal"),
            &[("_csrf", &page.csrf())],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains(&rid));
    let audit = d.get("/v1/audit?limit=1000", &d.admin).await;
    let reveal = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "reveal")
        .expect("the reveal is in the audit log");
    assert_eq!(reveal["subject"], format!("person:{id}"));
    assert_eq!(reveal["token"], "user:zhou.min", "{reveal:?}");
    // Reading the person page is audited as a read, through the same route as the API's.
    assert!(
        audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "read"
                && e["subject"] == format!("person:{id}")
                && e["token"] == "user:zhou.min")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_volunteer_login_link_works_once_and_the_station_can_end_the_session() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let vid = d
        .created("/v1/volunteers", volunteer(w.stations[0], 601))
        .await["id"]
        .as_u64()
        .unwrap();
    let station = d.token(&format!("station:{}", w.stations[0])).await;
    let other = d.token(&format!("station:{}", w.stations[1])).await;
    let r = d
        .post(
            &format!("/v1/volunteers/{vid}/login-link"),
            &other,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let link = d
        .post(
            &format!("/v1/volunteers/{vid}/login-link"),
            &station,
            json!({}),
        )
        .await;
    assert_eq!(link.status, StatusCode::CREATED, "{:?}", link.body);
    let code = link.body["code"].as_str().unwrap().to_owned();
    assert!(
        link.body["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/login/v/{code}"))
    );
    let mut phone = Visitor::new(&d.url);
    // Opening the page (a chat app's preview does this) does not spend the code.
    for _ in 0..2 {
        assert_eq!(
            phone.get(&format!("/login/v/{code}")).await.status,
            StatusCode::OK
        );
    }
    let page = phone.get(&format!("/login/v/{code}")).await;
    let r = phone
        .post(&format!("/login/v/{code}"), &[("_csrf", &page.csrf())])
        .await;
    assert_eq!(r.location(), "/v");
    let cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("linli_session="))
        .unwrap();
    let age: i64 = cookie
        .split("Max-Age=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        age >= 179 * 24 * 3600,
        "a volunteer's phone stays logged in: {cookie}"
    );
    assert_eq!(phone.get("/v").await.status, StatusCode::OK);
    // Spent: a second phone with the same link is refused.
    let mut thief = Visitor::new(&d.url);
    let page = thief.get(&format!("/login/v/{code}")).await;
    let r = thief
        .post(&format!("/login/v/{code}"), &[("_csrf", &page.csrf())])
        .await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.body);
    // The station ends the volunteer's sessions (a lost phone).
    let r = d
        .delete(&format!("/v1/volunteers/{vid}/sessions"), &station)
        .await;
    assert_eq!(r.body["ended"], 1, "{:?}", r.body);
    let r = phone.get("/v").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/login"));
    // A deactivated volunteer's session stops working, as a token does.
    let link = d
        .post(
            &format!("/v1/volunteers/{vid}/login-link"),
            &station,
            json!({}),
        )
        .await;
    let code = link.body["code"].as_str().unwrap().to_owned();
    let mut phone = Visitor::new(&d.url);
    let page = phone.get(&format!("/login/v/{code}")).await;
    phone
        .post(&format!("/login/v/{code}"), &[("_csrf", &page.csrf())])
        .await;
    assert_eq!(phone.get("/v").await.status, StatusCode::OK);
    d.delete(&format!("/v1/volunteers/{vid}"), &station).await;
    let r = phone.get("/v").await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "told why, not sent to a login: {}",
        r.body
    );
    assert!(r.body.contains("已停用"));
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_are_managed_through_the_api_within_the_callers_region() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let bureau = d.token("bureau:620802000000").await;
    let r = d
        .post(
            "/v1/users",
            &bureau,
            json!({"name": "liu.station", "scope": format!("station:{}", w.stations[0])}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let password = r.body["password"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 16, "a generated password, shown once");
    for (body, status) in [
        (
            json!({"name": "root2", "scope": "admin"}),
            StatusCode::FORBIDDEN,
        ),
        (
            json!({"name": "other", "scope": format!("station:{}", w.stations[2])}),
            StatusCode::FORBIDDEN,
        ),
        (
            json!({"name": "Bad Name", "scope": format!("station:{}", w.stations[0])}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "vol", "scope": "volunteer:1"}),
            StatusCode::FORBIDDEN,
        ),
        (
            json!({"name": "liu.station", "scope": format!("station:{}", w.stations[0])}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"name": "weak.pw", "scope": format!("station:{}", w.stations[0]), "password": "123"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let r = d.post("/v1/users", &bureau, body.clone()).await;
        assert_eq!(r.status, status, "{body}: {:?}", r.body);
    }
    let r = d
        .post(
            "/v1/users",
            &d.admin,
            json!({"name": "vol", "scope": "volunteer:1", "password": "long enough pw"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "volunteers use links: {:?}",
        r.body
    );
    let list = d.get("/v1/users", &bureau).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert!(list.body[0].get("password").is_none());
    let mut v = Visitor::new(&d.url);
    assert_eq!(
        v.login("liu.station", &password).await.status,
        StatusCode::SEE_OTHER
    );
    // Disabling ends the session at once; a reset gives a new password once.
    let r = d
        .patch("/v1/users/liu.station", &bureau, json!({"disabled": true}))
        .await;
    assert_eq!(r.body["disabled"], true, "{:?}", r.body);
    assert_eq!(v.get("/station").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        v.login("liu.station", &password).await.status,
        StatusCode::UNAUTHORIZED
    );
    d.patch("/v1/users/liu.station", &bureau, json!({"disabled": false}))
        .await;
    let r = d
        .post("/v1/users/liu.station/reset", &bureau, json!({}))
        .await;
    let fresh = r.body["password"].as_str().unwrap().to_owned();
    assert_eq!(
        v.login("liu.station", &password).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        v.login("liu.station", &fresh).await.status,
        StatusCode::SEE_OTHER
    );
    let other_bureau = d.token("bureau:620821000000").await;
    assert_eq!(
        d.patch(
            "/v1/users/liu.station",
            &other_bureau,
            json!({"disabled": true})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let station = d.token(&format!("station:{}", w.stations[0])).await;
    assert_eq!(
        d.get("/v1/users", &station).await.status,
        StatusCode::FORBIDDEN
    );
}

#[test]
fn the_cli_manages_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let run = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_linlid"))
            .args(args)
            .args(["--data", data])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(
        &[
            "user",
            "create",
            "ma.jun",
            "--scope",
            "bureau:620802000000",
            "--label",
            "民政局",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim().len(),
        16,
        "the generated password"
    );
    let out = run(
        &[
            "user",
            "create",
            "gao",
            "--scope",
            "admin",
            "--password-stdin",
        ],
        "a long passphrase\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "a given password is not echoed");
    let out = run(&["user", "create", "ma.jun", "--scope", "admin"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("taken"));
    let out = run(&["user", "create", "x", "--scope", "station:nope"], "");
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["user", "disable", "gao"], "");
    assert!(out.status.success());
    let out = run(&["user", "list"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ma.jun")
            && text.contains("bureau:620802000000")
            && text.contains("disabled"),
        "{text}"
    );
    let out = run(&["user", "reset", "nobody"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("user list"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hand_assignment_keeps_the_constraints_and_names_the_one_broken() {
    let d = Daemon::start().await;
    // A Saturday morning, when the fixture's volunteers are free.
    d.clock.set(at("2026-12-05T09:00:00+08:00"));
    let w = world(&d).await;
    let station = d.token(&format!("station:{}", w.stations[0])).await;
    // Nobody yet: the request goes unstaffed.
    let mut req = one_off(w.persons[0], "high");
    req["due_start"] = json!("2026-12-05T09:00:00+08:00");
    req["due_end"] = json!("2026-12-05T18:00:00+08:00");
    req["requirements"]["skills"] = json!(["sign_language"]);
    let t = d.post("/v1/tasks", &station, req).await;
    assert_eq!(t.body["status"], "unstaffed", "{:?}", t.body);
    let task = t.body["id"].as_u64().unwrap();
    let pw = account(&d, "he.ping", &format!("station:{}", w.stations[0])).await;
    let mut v = Visitor::new(&d.url);
    v.login("he.ping", &pw).await;
    let page = v.get(&format!("/station/tasks/{task}")).await;
    assert!(
        page.body.contains("本站及邻站没有在岗志愿者"),
        "the reason is shown: {}",
        page.body
    );
    let token = page.csrf();
    let plain = d
        .created("/v1/volunteers", volunteer(w.stations[0], 701))
        .await["id"]
        .as_u64()
        .unwrap();
    let theirs = d
        .created("/v1/volunteers", volunteer(w.stations[1], 703))
        .await["id"]
        .as_u64()
        .unwrap();
    // Re-offered now that there are volunteers: still nobody, and the page says why.
    let r = v
        .post(
            &format!("/station/tasks/{task}/reoffer"),
            &[("_csrf", &token)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = v.get(&format!("/station/tasks/{task}")).await;
    assert!(page.body.contains("缺少技能「手语」"), "{}", page.body);
    let mut signer = volunteer(w.stations[0], 702);
    signer["skills"] = json!(["sign_language"]);
    let signer = d.created("/v1/volunteers", signer).await["id"]
        .as_u64()
        .unwrap();
    // Through the console: the refusal names the constraint, and nothing is offered.
    let r = v
        .post(
            &format!("/station/tasks/{task}/assign"),
            &[("_csrf", &token), ("volunteer", &plain.to_string())],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body.contains("lacks the skill sign_language"),
        "{}",
        r.body
    );
    let r = d
        .post(
            &format!("/v1/tasks/{task}/assign"),
            &station,
            json!({"volunteer": theirs}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("station"),
        "{:?}",
        r.body
    );
    let t = d.get(&format!("/v1/tasks/{task}"), &d.admin).await;
    assert!(
        t.body["offers"].as_array().is_none_or(Vec::is_empty),
        "{:?}",
        t.body
    );
    // The one who fits is offered the task by hand.
    let r = v
        .post(
            &format!("/station/tasks/{task}/assign"),
            &[("_csrf", &token), ("volunteer", &signer.to_string())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let t = d.get(&format!("/v1/tasks/{task}"), &d.admin).await;
    assert_eq!(t.body["status"], "offered", "{:?}", t.body);
    assert_eq!(t.body["offers"][0]["volunteer"], signer);
    // The team is full now: another hand assignment, or a re-offer, is refused.
    let r = d
        .post(
            &format!("/v1/tasks/{task}/assign"),
            &station,
            json!({"volunteer": plain}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let r = d
        .post(&format!("/v1/tasks/{task}/reoffer"), &station, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    // Declined: a re-offer finds nobody else who fits, and the task says why again.
    let vt = d.token(&format!("volunteer:{signer}")).await;
    d.post(
        &format!("/v1/tasks/{task}/decline"),
        &vt,
        json!({"reason": "外出"}),
    )
    .await;
    let r = d
        .post(&format!("/v1/tasks/{task}/reoffer"), &station, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(
        r.body["offers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["volunteer"] == signer)
    );
    // A cancelled task takes no hand assignment.
    d.post(&format!("/v1/tasks/{task}/cancel"), &station, json!({}))
        .await;
    let r = d
        .post(
            &format!("/v1/tasks/{task}/assign"),
            &station,
            json!({"volunteer": signer}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spreadsheet_imports_through_the_console_with_its_refused_rows_by_number() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let pw = account(&d, "ma.li", &format!("station:{}", w.stations[0])).await;
    let mut v = Visitor::new(&d.url);
    v.login("ma.li", &pw).await;
    let token = v.get("/station/import").await.csrf();
    let csv = format!(
        "\u{feff}姓名,身份证号,联系电话,社区代码,纬度,经度,类别,困难类型,居住情况,需求\n\
         李秀英,{},13900001111,620802001001,35.5,106.6,特殊困难老人,独居,独居,meals\n\
         王有才,{},13900001111,620802001001,95.5,106.6,特殊困难老人,,,\n",
        rid(1938, 21),
        rid(1950, 22)
    );
    let post = |csrf: String, skip: bool| {
        let boundary = "linli-test-boundary";
        let mut body = String::new();
        let mut field = |name: &str, value: &str, file: bool| {
            body.push_str(&format!("--{boundary}\r\n"));
            if file {
                body.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"persons.csv\"\r\nContent-Type: text/csv\r\n\r\n"
                ));
            } else {
                body.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                ));
            }
            body.push_str(value);
            body.push_str("\r\n");
        };
        field("_csrf", &csrf, false);
        field("kind", "persons", false);
        if skip {
            field("skip_invalid", "true", false);
        }
        field("file", &csv, true);
        body.push_str(&format!("--{boundary}--\r\n"));
        let cookies = v
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        reqwest::Client::new()
            .post(format!("{}/station/import", d.url))
            .header("cookie", cookies)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
    };
    // Without its token: refused, nothing read.
    let r = post("0".repeat(48), false).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // All or nothing: the bad row is named by its line, nothing is imported.
    let r = post(token.clone(), false).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("<td class=\"num\">3</td>"),
        "line 3 is named: {page}"
    );
    let list = d
        .get("/v1/persons?name=%E6%9D%8E%E7%A7%80%E8%8B%B1", &d.admin)
        .await;
    assert_eq!(
        list.body["items"].as_array().unwrap().len(),
        0,
        "nothing imported"
    );
    // Skipping invalid rows: the good one is imported, the bad one still listed.
    let r = post(token, true).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("导入 1") && page.contains("跳过 1"), "{page}");
    let list = d
        .get("/v1/persons?name=%E6%9D%8E%E7%A7%80%E8%8B%B1", &d.admin)
        .await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}
