//! Dashboard sign-in over real HTTP against a real server process (docs/dashboard.md): cookie
//! attributes, the session as a principal on the supervisor API, CSRF and origin checks, sign-out,
//! lockout, inspectors refused, and a bearer token judged alone when both are sent. (Sign-in
//! probing and locking by a hostile client: tests/tests/hostile_connections.rs.)
mod common;

use common::{Device, Server, sample_places};
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{Value, json};

fn set_password(server: &Server, user: &str, password: &str) -> std::process::Output {
    server
        .command()
        .args(["set-password", user])
        .env("FENLEI_PASSWORD", password)
        .output()
        .unwrap()
}

struct Signed {
    cookie: String,
    csrf: String,
    set_cookie: String,
}

fn sign_in(http: &Client, url: &str, user: &str, password: &str) -> Result<Signed, (u16, Value)> {
    let r = http
        .post(format!("{url}/v1/session"))
        .json(&json!({"user": user, "password": password}))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let set_cookie = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = r.json().unwrap();
    if status != 200 {
        assert!(set_cookie.is_none(), "no cookie on a refused sign-in");
        return Err((status, body));
    }
    let set_cookie = set_cookie.expect("a cookie");
    Ok(Signed {
        cookie: set_cookie.split(';').next().unwrap().to_string(),
        csrf: body["csrf_token"].as_str().unwrap().to_string(),
        set_cookie,
    })
}

fn status(r: RequestBuilder) -> u16 {
    r.send().unwrap().status().as_u16()
}

#[test]
fn dashboard_sessions_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let url = server.url();
    let (street, _, district) = sample_places();
    server.admin(&["add-user", "--id", "sup", "--role", "supervisor"]);
    server.admin(&["assign", "--user", "sup", "--district", &district]);
    assert!(
        set_password(&server, "sup", "supervisor-secret")
            .status
            .success()
    );
    server.admin(&["add-user", "--id", "insp", "--role", "inspector"]);
    server.admin(&["assign", "--user", "insp", "--street", &street]);
    // Inspectors get no dashboard password, and short passwords are refused.
    assert!(
        !set_password(&server, "insp", "inspector-secret")
            .status
            .success()
    );
    assert!(!set_password(&server, "sup", "short").status.success());
    let http = Client::new();

    // Wrong password and unknown user: the same 401, no cookie.
    let (s1, b1) = sign_in(&http, &url, "sup", "wrong-password").err().unwrap();
    let (s2, b2) = sign_in(&http, &url, "nobody", "wrong-password")
        .err()
        .unwrap();
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(b1["reason"], b2["reason"]);
    // Sign-in must be JSON: a cross-site HTML form cannot post it.
    let form = http
        .post(format!("{url}/v1/session"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=sup&password=supervisor-secret");
    assert_eq!(status(form), 400);

    let s = sign_in(&http, &url, "sup", "supervisor-secret").unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(s.set_cookie.contains(attr), "{attr} in {}", s.set_cookie);
    }
    assert!(
        s.set_cookie.contains("; Secure"),
        "Secure unless serve --insecure-cookies"
    );
    let me: Value = http
        .get(format!("{url}/v1/me"))
        .header("cookie", &s.cookie)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["user_id"], "sup");
    assert!(me["device_id"].as_str().unwrap().starts_with("web:"));
    for path in [
        "/v1/inspections",
        "/v1/rankings?by=street",
        "/v1/communities",
        "/v1/session",
    ] {
        let r = http.get(format!("{url}{path}")).header("cookie", &s.cookie);
        assert_eq!(status(r), 200, "{path}");
        assert_eq!(status(http.get(format!("{url}{path}"))), 401, "{path}");
    }
    let scoped: Value = http
        .get(format!("{url}/v1/communities"))
        .header("cookie", &s.cookie)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let communities = scoped["communities"].as_array().unwrap();
    assert!(!communities.is_empty());
    assert!(
        communities
            .iter()
            .all(|c| c["district"] == district.as_str())
    );

    // A bearer token is judged alone: an inspector's device with a supervisor's cookie is an
    // inspector, refused by the supervisor API.
    let phone = Device::enroll(&server, dir.path(), "insp");
    let r = http
        .get(format!("{url}/v1/inspections"))
        .bearer_auth(&phone.token)
        .header("cookie", &s.cookie);
    assert_eq!(status(r), 403);

    // State changes by cookie need the session's CSRF token and the server's own origin.
    let del = || {
        http.delete(format!("{url}/v1/session"))
            .header("cookie", &s.cookie)
    };
    assert_eq!(status(del()), 403);
    assert_eq!(status(del().header("x-csrf-token", "forged")), 403);
    let other = sign_in(&http, &url, "sup", "supervisor-secret").unwrap();
    assert_eq!(
        status(del().header("x-csrf-token", &other.csrf)),
        403,
        "another session's token"
    );
    assert_eq!(
        status(
            del()
                .header("x-csrf-token", &s.csrf)
                .header("origin", "http://evil.example")
        ),
        403
    );
    let sync = http
        .post(format!("{url}/v1/sync"))
        .header("cookie", &s.cookie)
        .body("{}");
    assert_eq!(
        status(sync),
        403,
        "no CSRF token on the sync endpoint either"
    );
    assert_eq!(
        status(del().header("x-csrf-token", &s.csrf).header("origin", &url)),
        204
    );
    // Signed out: the cookie opens nothing; the other session lives on.
    let r = http.get(format!("{url}/v1/me")).header("cookie", &s.cookie);
    assert_eq!(status(r), 401);
    let r = http
        .get(format!("{url}/v1/me"))
        .header("cookie", &other.cookie);
    assert_eq!(status(r), 200);

    // A new password ends every session of the user.
    assert!(
        set_password(&server, "sup", "a-new-supervisor-secret")
            .status
            .success()
    );
    let r = http
        .get(format!("{url}/v1/me"))
        .header("cookie", &other.cookie);
    assert_eq!(status(r), 401);

    // Five wrong passwords lock the account, even against the right one.
    for _ in 0..5 {
        assert_eq!(sign_in(&http, &url, "sup", "guess").err().unwrap().0, 401);
    }
    let (code, body) = sign_in(&http, &url, "sup", "a-new-supervisor-secret")
        .err()
        .unwrap();
    assert_eq!(code, 429);
    assert_eq!(body["error"], "too_many_requests");
    // An admin resetting the password lifts the lock.
    assert!(
        set_password(&server, "sup", "a-third-supervisor-secret")
            .status
            .success()
    );
    assert!(sign_in(&http, &url, "sup", "a-third-supervisor-secret").is_ok());

    // A supervisor demoted to inspector can no longer sign in, even with the right password,
    // and is told no more than a wrong password would tell.
    server.admin(&["add-user", "--id", "sup", "--role", "inspector"]);
    let (code, body) = sign_in(&http, &url, "sup", "a-third-supervisor-secret")
        .err()
        .unwrap();
    assert_eq!(code, 401);
    assert_eq!(body["reason"], b1["reason"]);
}
