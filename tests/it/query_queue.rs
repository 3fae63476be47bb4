//! Queries beyond a tenant's `query.max_concurrent` wait in that tenant's queue.

use std::time::Duration;

use futures::StreamExt;
use tonic::Code;

use crate::fixture::*;

/// Large enough that its stream cannot finish into the transport's buffers unread: the
/// query holds its slot until the client reads it to the end or drops it.
const HOLDS_A_SLOT: &str = "SELECT unnest(range(0, 4000000)) AS n";
const SMALL: &str = "SELECT 1 AS one";

#[tokio::test]
async fn queries_beyond_the_limit_wait_their_turn_then_give_up() {
    let server = TestServer::start_with(|config| {
        config.query.max_concurrent = 1;
        config.query.queue_timeout = Duration::from_secs(2);
    })
    .await;

    let mut holder = server.client(ACME).await;
    let (_, mut running) = holder.query(HOLDS_A_SLOT).await.expect("first query");
    running.next().await.expect("a batch").expect("ok batch");

    let mut late = server.client(ACME).await;
    let refused = match late.query(SMALL).await {
        Err(e) => e,
        Ok((_, stream)) => {
            let batches: Vec<_> = stream.collect().await;
            panic!("a second query ran beside the first: {batches:?}")
        }
    };
    assert_eq!(status_of(&refused), Code::ResourceExhausted, "{refused}");
    assert!(refused.to_string().contains("queue_timeout"), "{refused}");

    // Another tenant's slots are its own.
    let mut beta = server.client(BETA).await;
    let (_, stream) = beta.query(SMALL).await.expect("beta is not queued");
    assert_eq!(stream.count().await, 1);

    // A query queued behind the running one runs once it ends.
    let endpoint = server.endpoint();
    let queued = tokio::spawn(async move {
        let mut client = lakeport_client::Client::connect(&endpoint)
            .await
            .expect("connect")
            .with_token(ACME);
        let (_, stream) = client.query(SMALL).await?;
        let batches: Vec<_> = stream.collect().await;
        Ok::<_, lakeport_client::ClientError>(batches.len())
    });
    eventually("the second query is in acme's queue", || async {
        queued_queries("tenant:acme") >= 1.0
    })
    .await;
    assert!(!queued.is_finished(), "the queued query waits for the slot");
    drop(running);
    assert_eq!(queued.await.expect("task").expect("queued query ran"), 1);
}

/// The `lakeport_queries_queued` gauge of `caller`, from the process's one recorder.
fn queued_queries(caller: &str) -> f64 {
    let text = lakeport_server::ops::recorder::prometheus().render();
    let series = format!("lakeport_queries_queued{{caller=\"{caller}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}
