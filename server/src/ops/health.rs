//! Liveness and readiness. Ready means: the tenant registry is loaded, every configured
//! store answered its last probe, every door that was opened still serves, and the server
//! is not draining. The same state drives
//! the gRPC health service on the Flight port, so probes agree whichever they ask.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio_util::sync::CancellationToken;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::lake::Lake;

/// The Flight service's gRPC name (the same for any implementation of it).
const FLIGHT_SERVICE: &str = <FlightServiceServer<()> as tonic::server::NamedService>::NAME;

/// How long one store may take to answer its probe before it counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Health {
    registry_loaded: AtomicBool,
    draining: AtomicBool,
    /// Store name → why its last probe failed (`None`: it answered).
    stores: Mutex<BTreeMap<String, Option<String>>>,
    /// Door → where it listens, or why it stopped serving.
    doors: Mutex<BTreeMap<&'static str, Result<String, String>>>,
    grpc: HealthReporter,
}

/// What `/readyz` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyState {
    pub ready: bool,
    /// Why not, one line each.
    pub problems: Vec<String>,
    /// The doors serving, one line each (`collector on 127.0.0.1:4318`).
    pub doors: Vec<String>,
}

impl Health {
    pub fn new(grpc: HealthReporter) -> Arc<Self> {
        Arc::new(Self {
            registry_loaded: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            stores: Mutex::default(),
            doors: Mutex::default(),
            grpc,
        })
    }

    pub async fn registry_loaded(&self) {
        self.registry_loaded.store(true, Ordering::SeqCst);
        self.publish().await;
    }

    /// From here on the server finishes in-flight calls and takes no new ones.
    pub async fn draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.publish().await;
    }

    /// A door (a listener of its own) serves on `address`.
    pub fn door_open(&self, door: &'static str, address: String) {
        let mut doors = self.doors.lock().unwrap_or_else(|p| p.into_inner());
        doors.insert(door, Ok(address));
    }

    /// A door stopped serving while the server runs on.
    pub async fn door_failed(&self, door: &'static str, why: String) {
        tracing::error!(door, error = %why, "door stopped serving; not ready");
        {
            let mut doors = self.doors.lock().unwrap_or_else(|p| p.into_inner());
            doors.insert(door, Err(why));
        }
        self.publish().await;
    }

    pub fn readiness(&self) -> ReadyState {
        let mut problems = Vec::new();
        if self.draining.load(Ordering::SeqCst) {
            problems.push("draining: the server is shutting down".to_string());
        }
        if !self.registry_loaded.load(Ordering::SeqCst) {
            problems.push("the tenant registry is not loaded yet".to_string());
        }
        let stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        for (store, failure) in stores.iter() {
            if let Some(why) = failure {
                problems.push(format!("store {store} unreachable: {why}"));
            }
        }
        let doors = self.doors.lock().unwrap_or_else(|p| p.into_inner());
        let mut serving = Vec::new();
        for (door, state) in doors.iter() {
            match state {
                Ok(address) => serving.push(format!("{door} on {address}")),
                Err(why) => problems.push(format!("door {door} stopped: {why}")),
            }
        }
        ReadyState {
            ready: problems.is_empty(),
            problems,
            doors: serving,
        }
    }

    /// Probes every store now, then every `every`, until `shutdown`.
    pub fn spawn_store_probe(
        self: &Arc<Self>,
        lake: Arc<Lake>,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        let health = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => health.probe(&lake).await,
                }
            }
        });
    }

    async fn probe(&self, lake: &Lake) {
        let results = lake.probe_stores(PROBE_TIMEOUT).await;
        let changed = {
            let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
            let mut changed = false;
            for (store, result) in results {
                let failure = result.err().map(|e| e.to_string());
                crate::lake::metrics::store_probed(&store, failure.is_none());
                match (&failure, stores.get(&store)) {
                    (Some(why), Some(None) | None) => {
                        tracing::warn!(store = %store, error = %why, "store unreachable; not ready")
                    }
                    (None, Some(Some(_))) => {
                        tracing::info!(store = %store, "store reachable again")
                    }
                    _ => {}
                }
                changed |= stores.get(&store) != Some(&failure);
                stores.insert(store, failure);
            }
            changed
        };
        if changed {
            self.publish().await;
        }
    }

    /// Tells the gRPC health service (the server as a whole, `""`, and the Flight service).
    async fn publish(&self) {
        let status = if self.readiness().ready {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.grpc.set_service_status("", status).await;
        self.grpc.set_service_status(FLIGHT_SERVICE, status).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_needs_the_registry_every_store_and_no_drain() {
        let health = Health::new(HealthReporter::new());
        assert_eq!(
            health.readiness().problems,
            vec!["the tenant registry is not loaded yet"]
        );
        health.registry_loaded().await;
        assert!(health.readiness().ready);

        health
            .stores
            .lock()
            .unwrap()
            .insert("s3".into(), Some("connection refused".into()));
        let readiness = health.readiness();
        assert!(!readiness.ready);
        assert_eq!(
            readiness.problems,
            vec!["store s3 unreachable: connection refused"]
        );
        health.stores.lock().unwrap().insert("s3".into(), None);
        assert!(health.readiness().ready);

        health.door_open("collector", "127.0.0.1:4318".into());
        assert_eq!(
            health.readiness().doors,
            vec!["collector on 127.0.0.1:4318"]
        );
        health
            .door_failed("collector", "accept failed".into())
            .await;
        assert_eq!(
            health.readiness().problems,
            vec!["door collector stopped: accept failed"]
        );
        health.door_open("collector", "127.0.0.1:4318".into());
        assert!(health.readiness().ready);

        health.draining().await;
        assert_eq!(
            health.readiness().problems,
            vec!["draining: the server is shutting down"]
        );
    }
}
