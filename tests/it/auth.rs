use base64::Engine;
use lakeport_server::config::AuthConfig;

use crate::fixture::*;

#[tokio::test]
async fn basic_handshake_returns_a_working_bearer_token() {
    let server = TestServer::start().await;
    let mut client = server.anonymous().await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("acme:{ACME}"));
    client
        .flight()
        .add_header("authorization", &format!("Basic {basic}"))
        .unwrap();
    let payload = client
        .flight()
        .handshake(bytes::Bytes::new())
        .await
        .unwrap();
    let bearer = String::from_utf8(payload.to_vec()).unwrap();

    let mut authed = server.client(&bearer).await;
    authed
        .put(
            None,
            "snowplow",
            vec![snowplow_batch("web", fixed_now(), 1, "h")],
        )
        .await
        .unwrap();
    assert_eq!(server.count("acme", "snowplow").await, 1);

    let mut wrong = server.anonymous().await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("beta:{ACME}"));
    wrong
        .flight()
        .add_header("authorization", &format!("Basic {basic}"))
        .unwrap();
    let err = wrong
        .flight()
        .handshake(bytes::Bytes::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("Unauthenticated") || err.to_string().contains("does not belong"),
        "{err}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn without_tokens_the_server_is_open_on_loopback_only() {
    let server = TestServer::start_with(|c| c.auth = AuthConfig::default()).await;
    let mut client = server.anonymous().await;
    client
        .put(
            Some("acme"),
            "snowplow",
            vec![snowplow_batch("web", fixed_now(), 2, "o")],
        )
        .await
        .unwrap();
    assert_eq!(server.count("acme", "snowplow").await, 2);
    server.shutdown().await;

    let lake = tempfile::TempDir::new().unwrap();
    let mut config = test_config(lake.path());
    config.auth = AuthConfig::default();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let result = lakeport_server::Server::new(config)
        .serve(listener, tokio_util::sync::CancellationToken::new())
        .await;
    let err = result.unwrap_err();
    assert!(
        err.to_string()
            .contains("refusing to start without credentials"),
        "{err}"
    );
}
