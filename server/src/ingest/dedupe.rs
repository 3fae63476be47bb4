//! Producer dedupe within a stream: a batch tagged (producer, sequence) is skipped when the
//! stream already took that sequence, and its rows are dropped per table when that table
//! has the sequence committed. The committer checks the unit's range again at commit time.

use std::collections::HashMap;

/// The `txn` app id a producer's rows use in the tenant's `_rejected` table.
pub fn rejected_app_id(dataset: &str, producer: &str) -> String {
    format!("{dataset}/{producer}")
}

/// One producer's sequences: committed in each table when the stream first saw it, and
/// the highest this stream took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerState {
    pub main: i64,
    pub rejected: i64,
    pub seen: i64,
}

/// What becomes of one tagged batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFate {
    /// This stream already took the sequence: every row is a duplicate.
    Seen,
    /// New to the stream; a table that has the sequence committed drops its rows.
    Take {
        main_committed: bool,
        rejected_committed: bool,
    },
}

impl ProducerState {
    /// `main` / `rejected`: highest committed sequences, -1 when none.
    pub fn new(main: i64, rejected: i64) -> Self {
        Self {
            main,
            rejected,
            seen: -1,
        }
    }

    pub fn fate(&self, seq: i64) -> BatchFate {
        if seq <= self.seen {
            BatchFate::Seen
        } else {
            BatchFate::Take {
                main_committed: seq <= self.main,
                rejected_committed: seq <= self.rejected,
            }
        }
    }
}

/// The producers of one stream.
#[derive(Debug, Default)]
pub struct Producers(HashMap<String, ProducerState>);

impl Producers {
    pub fn get(&self, producer: &str) -> Option<ProducerState> {
        self.0.get(producer).copied()
    }

    pub fn insert(&mut self, producer: &str, state: ProducerState) {
        self.0.insert(producer.to_string(), state);
    }

    /// Records that the stream took `seq`; later batches at or below it are duplicates.
    pub fn took(&mut self, producer: &str, seq: i64) {
        if let Some(state) = self.0.get_mut(producer) {
            state.seen = state.seen.max(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sequence_is_taken_once_per_stream() {
        let mut producers = Producers::default();
        producers.insert("p", ProducerState::new(-1, -1));
        let fresh = BatchFate::Take {
            main_committed: false,
            rejected_committed: false,
        };
        assert_eq!(producers.get("p").unwrap().fate(0), fresh);
        producers.took("p", 0);
        assert_eq!(producers.get("p").unwrap().fate(0), BatchFate::Seen);
        assert_eq!(producers.get("p").unwrap().fate(1), fresh);
    }

    #[test]
    fn committed_sequences_drop_rows_per_table() {
        let state = ProducerState::new(4, 2);
        assert_eq!(
            state.fate(3),
            BatchFate::Take {
                main_committed: true,
                rejected_committed: false
            }
        );
        assert_eq!(
            state.fate(2),
            BatchFate::Take {
                main_committed: true,
                rejected_committed: true
            }
        );
        assert_eq!(
            state.fate(5),
            BatchFate::Take {
                main_committed: false,
                rejected_committed: false
            }
        );
    }

    #[test]
    fn rejected_rows_of_a_producer_are_counted_per_dataset() {
        assert_eq!(rejected_app_id("snowplow", "p1"), "snowplow/p1");
    }
}
