//! The committed `docs/openapi.json` is exactly what the code generates. Regenerate with
//! `UPDATE_OPENAPI=1 cargo test -p gift-core --test openapi`.

use std::path::PathBuf;

#[test]
fn committed_openapi_matches_the_code() {
    let generated = gift_core::http::openapi_json() + "\n";
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    if std::env::var("UPDATE_OPENAPI").as_deref() == Ok("1") {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is stale; run UPDATE_OPENAPI=1 cargo test -p gift-core --test openapi"
    );
}

#[test]
fn every_route_and_error_status_is_described() {
    let doc: serde_json::Value = serde_json::from_str(&gift_core::http::openapi_json()).unwrap();
    let paths = &doc["paths"];
    for (path, method, statuses) in [
        ("/gifts", "post", &["201", "400", "413", "503"][..]),
        ("/gifts/{gift_id}", "get", &["200", "400", "404", "503"][..]),
        ("/gifts/{gift_id}/send", "post", &["200", "202", "400", "404", "409", "503"][..]),
        ("/healthz", "get", &["200"][..]),
        ("/readyz", "get", &["200", "503"][..]),
    ] {
        let responses = &paths[path][method]["responses"];
        for s in statuses {
            assert!(responses[s].is_object(), "{method} {path} does not describe {s}");
        }
    }
}
