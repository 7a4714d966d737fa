//! The /admin routes: off without a token, and only for the exact bearer
//! token.

use servers::ServerConfig;
use servers::conns::DropReport;

use crate::helpers::*;

#[tokio::test]
async fn admin_routes_are_404_without_a_token_configured() {
    let s = Server::start(ServerConfig {
        admin_token: None,
        ..config(10.0, 16)
    })
    .await;
    for (method, path) in [
        ("POST", "/admin/drop?fraction=1"),
        ("GET", "/admin/drop?fraction=1"),
        ("GET", "/admin/connections"),
        ("GET", "/admin"),
        ("DELETE", "/admin/anything/else"),
    ] {
        for auth in [None, Some(bearer())] {
            let (status, body) = s.admin(method, path, auth.as_deref()).await;
            assert_eq!(
                (status, body.as_str()),
                (404, "not found"),
                "{method} {path}"
            );
        }
    }
    assert!(!s.stats().await.config.admin);
    s.stop().await;
}

#[tokio::test]
async fn admin_routes_need_the_exact_bearer_token() {
    let s = Server::start(config(10.0, 16)).await;
    for auth in [
        None,
        Some("Bearer wrong".to_string()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_string()),
    ] {
        for (method, path) in [
            ("POST", "/admin/drop?fraction=1"),
            ("GET", "/admin/connections"),
        ] {
            let (status, body) = s.admin(method, path, auth.as_deref()).await;
            if status == 429 {
                // Too many failures in a second (tests/hostile.rs): wait it out.
                tokio::time::sleep(servers::admin::FAILURE_WINDOW).await;
                let (status, body) = s.admin(method, path, auth.as_deref()).await;
                assert_eq!(status, 401, "{auth:?} {path}: {body}");
                continue;
            }
            assert_eq!(status, 401, "{auth:?} {path}: {body}");
            assert!(
                !body.is_empty() && !body.contains('\n'),
                "one-line reason: {body:?}"
            );
        }
    }
    // With the token (once the failures' window is over): bad input is a
    // one-line 400, wrong methods 405, unknown paths 404.
    tokio::time::sleep(servers::admin::FAILURE_WINDOW).await;
    let auth = Some(bearer());
    for query in [
        "",
        "fraction=2",
        "fraction=x",
        "fraction=0.5&transport=poll",
    ] {
        let (status, body) = s
            .admin("POST", &format!("/admin/drop?{query}"), auth.as_deref())
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body.starts_with("bad query: ") && !body.contains('\n'),
            "{body}"
        );
    }
    assert_eq!(
        s.admin("GET", "/admin/drop?fraction=1", auth.as_deref())
            .await
            .0,
        405
    );
    assert_eq!(
        s.admin("POST", "/admin/connections", auth.as_deref())
            .await
            .0,
        405
    );
    assert_eq!(s.admin("GET", "/admin/nope", auth.as_deref()).await.0, 404);
    // And with nothing open, a drop drops nothing.
    assert_eq!(
        s.drop_fraction("fraction=1").await,
        DropReport {
            dropped: 0,
            open_before: 0
        }
    );
    assert!(s.stats().await.config.admin);
    s.stop().await;
}
