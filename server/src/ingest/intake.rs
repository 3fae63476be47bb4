//! What a door reserved from the ingest budget for a stream's messages that arrived but
//! are not yet taken by a unit. The stream takes it into the unit that holds their rows;
//! a door that must wait for memory tells the stream, which flushes its unit.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::budget::Reservation;

/// What was reserved for a stream's messages that arrived but are not yet taken by a unit.
#[derive(Debug, Clone, Default)]
pub struct Intake(Arc<IntakeShared>);

#[derive(Debug, Default)]
struct IntakeShared {
    reserved: Mutex<Reservation>,
    starved: Notify,
}

impl Intake {
    /// Everything reserved so far; the caller holds it until its rows are written.
    pub fn take(&self) -> Reservation {
        std::mem::take(&mut *self.0.reserved.lock().expect("intake lock"))
    }

    /// Resolves when the gate had to wait for memory: the stream should flush its unit, whose
    /// memory comes back once its files are written.
    pub async fn starved(&self) {
        self.0.starved.notified().await
    }

    /// Tells the stream that its door waits for memory.
    pub fn starve(&self) {
        self.0.starved.notify_one();
    }

    /// Adds what the door reserved for messages that arrived.
    pub fn add(&self, reservation: Reservation) {
        self.0
            .reserved
            .lock()
            .expect("intake lock")
            .merge(reservation);
    }
}
