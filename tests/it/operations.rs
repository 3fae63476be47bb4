//! The gRPC health service on the Flight port: serving once the registry is read and the
//! stores answered, not serving from the moment a shutdown begins.

use std::time::Duration;

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::fixture::{eventually, TestServer};

const FLIGHT_SERVICE: &str = "arrow.flight.protocol.FlightService";

async fn status(
    client: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> ServingStatus {
    let request = HealthCheckRequest {
        service: service.into(),
    };
    let answer = client.check(request).await.expect("health check");
    answer.into_inner().status()
}

/// Waits until `service` reports `want` (the probes run in the background).
async fn until(
    client: &HealthClient<tonic::transport::Channel>,
    service: &str,
    want: ServingStatus,
) {
    eventually(&format!("{service:?} reports {want:?}"), || {
        let mut client = client.clone();
        async move { status(&mut client, service).await == want }
    })
    .await;
}

#[tokio::test]
async fn the_health_service_serves_when_ready_and_stops_when_draining() {
    let server = TestServer::start_with(|config| {
        config.operations.store_probe_interval = Duration::from_millis(100);
        config.operations.shutdown_delay = Duration::from_secs(5);
    })
    .await;
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut client = HealthClient::new(channel);
    until(&client, "", ServingStatus::Serving).await;
    assert_eq!(
        status(&mut client, FLIGHT_SERVICE).await,
        ServingStatus::Serving
    );
    // No credential is needed: probes carry none.
    let unknown = client
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    server.begin_shutdown();
    until(&client, "", ServingStatus::NotServing).await;
    assert_eq!(
        status(&mut client, FLIGHT_SERVICE).await,
        ServingStatus::NotServing
    );
    server.shutdown().await;
}
