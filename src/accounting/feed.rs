//! How accounting sees a source of a given kind: its name and its ranks, read from the kind's
//! spec (each source folder declares its ranks; accounting alone decides what they mean).

use super::Feed;
use crate::sources::SourceKind;

impl SourceKind {
    /// How accounting sees a source of this kind named `name`.
    pub fn feed(self, name: &str) -> Feed {
        let spec = self.spec();
        Feed {
            name: name.to_owned(),
            total_rank: spec.total_rank,
            rate_rank: spec.rate_rank,
        }
    }
}
