//! When a registry refresh must list every record. Each change of a record also rewrites
//! the registry's generation object with a fresh id (`store.rs`), so a refresh that reads
//! the id its last listing saw knows nothing changed: one request instead of a listing of
//! every tenant. A listing still runs every `FULL_LISTING_EVERY` refreshes, for records
//! written without a new generation (a server of an older version, a writer that crashed
//! between the record and the generation).

/// At the default `registry_refresh` of 10 s, a full listing every 5 minutes.
pub(super) const FULL_LISTING_EVERY: u64 = 30;

#[derive(Debug, Default)]
pub(super) struct Generations {
    /// The generation read before the last full listing.
    listed: Option<String>,
    /// Refreshes since that listing.
    since: u64,
}

impl Generations {
    /// True when the refresh that read `current` must list the records.
    pub(super) fn must_list(&mut self, current: &Option<String>) -> bool {
        self.since += 1;
        current.is_none() || *current != self.listed || self.since >= FULL_LISTING_EVERY
    }

    /// A listing that read `current` before it began finished.
    pub(super) fn listed(&mut self, current: Option<String>) {
        self.listed = current;
        self.since = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_generation_skips_the_listing_until_a_full_one_is_due() {
        let mut g = Generations::default();
        let a = Some("a".to_string());
        assert!(g.must_list(&a), "the first refresh lists");
        g.listed(a.clone());
        for _ in 1..FULL_LISTING_EVERY {
            assert!(!g.must_list(&a));
        }
        assert!(g.must_list(&a), "a full listing is due");
        g.listed(a.clone());
        assert!(!g.must_list(&a));
        assert!(g.must_list(&Some("b".into())), "changed");
    }

    #[test]
    fn a_registry_without_a_generation_is_always_listed() {
        let mut g = Generations::default();
        g.listed(None);
        assert!(g.must_list(&None));
    }
}
