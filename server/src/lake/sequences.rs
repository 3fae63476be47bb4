//! Producer sequences in Delta `txn` actions: a unit records its producer's highest
//! sequence (appId, version) in the commit that adds its rows, so a retried unit is
//! recognised against what is committed.

/// The producer sequences a unit covers, recorded as Delta `txn` (appId, version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceRange {
    pub app_id: String,
    pub first: i64,
    pub last: i64,
}

/// What to do with a unit given the producer's highest committed sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeCheck {
    /// Every sequence is committed already: skip the unit.
    Committed,
    /// Some sequences are committed and some are not: the producer resent a different
    /// split of its batches, which cannot be applied exactly once.
    Overlaps,
    /// None is committed: take the unit.
    New,
}

impl SequenceRange {
    pub fn new(app_id: &str, seq: i64) -> Self {
        Self {
            app_id: app_id.to_string(),
            first: seq,
            last: seq,
        }
    }

    /// Widens the range to cover `seq` (sequences of one producer only grow in a stream).
    pub fn extend(range: &mut Option<Self>, app_id: &str, seq: i64) {
        match range {
            Some(r) => r.last = r.last.max(seq),
            None => *range = Some(Self::new(app_id, seq)),
        }
    }

    /// `committed`: the producer's highest committed sequence, -1 when none is.
    pub fn check(&self, committed: i64) -> RangeCheck {
        if self.last <= committed {
            RangeCheck::Committed
        } else if self.first <= committed {
            RangeCheck::Overlaps
        } else {
            RangeCheck::New
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_committed_new_or_overlapping() {
        let mut range = None;
        SequenceRange::extend(&mut range, "p", 5);
        SequenceRange::extend(&mut range, "p", 7);
        let range = range.unwrap();
        assert_eq!((range.first, range.last), (5, 7));
        assert_eq!(range.check(-1), RangeCheck::New);
        assert_eq!(range.check(4), RangeCheck::New);
        assert_eq!(range.check(5), RangeCheck::Overlaps);
        assert_eq!(range.check(6), RangeCheck::Overlaps);
        assert_eq!(range.check(7), RangeCheck::Committed);
        assert_eq!(range.check(9), RangeCheck::Committed);
    }
}
