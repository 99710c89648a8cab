//! What the version history of a merged schema (`schema/qemu.json`) changes in the generated
//! code: which members are `Option` (the history's requirement rules, stored in the file as
//! `history.relaxed`, replace the one-schema guess), lifetime notes in the docs (added in,
//! removed after, deprecated since) and the old names of renamed types as `doc(alias)`.

use std::borrow::Cow;

use crate::history::{Merged, MergedSchema, Path, Relaxed, Version};

/// The history of the schema being generated.
pub(crate) struct Versions<'s> {
    merged: Merged<'s>,
    relaxed: Cow<'s, Relaxed>,
}

impl<'s> Versions<'s> {
    /// The history of `schema`, for code that decodes QEMU from `oldest` on.
    pub(crate) fn new(schema: &'s MergedSchema, oldest: (u32, u32)) -> Versions<'s> {
        let merged = Merged::new(schema);
        let all = merged.history().all();
        let from = merged.versions_from(Version::new(oldest.0, oldest.1));
        // The stored results count every merged version; a narrower range runs the rules.
        let relaxed = if from == all || from.is_empty() {
            Cow::Borrowed(&schema.history.relaxed)
        } else {
            Cow::Owned(merged.relaxed_in(from))
        };
        Versions { merged, relaxed }
    }

    /// Whether member `member` of `owner`, required in the merged definition, is an `Option`:
    /// some version that sends `owner` leaves it out, or some version that accepts `owner`
    /// does not require it (a type used both ways is required only where both rules say so).
    pub(crate) fn relaxed(&self, owner: &str, member: &str) -> bool {
        self.relaxed.in_replies(owner, member) || self.relaxed.in_arguments(owner, member)
    }

    /// The lifetime note for `path`, if its history says more than its doc's since-version:
    /// removed after a version, missing from some versions, deprecated since a version, or
    /// added in a version its doc does not name.
    pub(crate) fn note(&self, path: &Path, doc_since: Option<&str>) -> Option<String> {
        let life = self.merged.lifetime(path)?;
        let history = self.merged.history();
        let mut parts = Vec::new();
        // An item that came with its definition is dated by the definition's docs.
        let with_owner = path.item().is_some()
            && self
                .merged
                .lifetime(&Path::definition(path.owner()))
                .is_some_and(|owner| owner.first == life.first);
        if let Some(added) = life.added().filter(|_| !with_owner) {
            if let Path::Branch(..) = path {
                parts.push(format!(
                    "The members of this branch since QEMU {added}: older QEMU sends this \
                     value without them."
                ));
            } else {
                match doc_since {
                    None => parts.push(format!("Added in QEMU {added}.")),
                    // QEMU's docs may name a point release or an older version (the item
                    // moved in from elsewhere); the history only knows the merged releases.
                    Some(doc) if Version::parse(doc) != Some(added) => parts.push(format!(
                        "First in the schema of QEMU {added} among the releases this API was \
                         merged from (QEMU's docs say since {doc})."
                    )),
                    Some(_) => {}
                }
            }
        }
        if life.removed || life.gaps {
            let present = self.merged.presence(path).unwrap_or_default();
            let set = history.format_set(present);
            match life.removed_after() {
                Some(last) => parts.push(format!(
                    "**Removed** after QEMU {last} (present in QEMU {set}): newer QEMU does not \
                     have it."
                )),
                None => parts.push(format!("Present in QEMU {set} only.")),
            }
        }
        if let Some(since) = life.deprecated_since {
            if life.since_oldest && since == life.first {
                parts.push(format!("Deprecated since QEMU {since} or earlier."));
            } else {
                parts.push(format!("Deprecated since QEMU {since}."));
            }
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    /// Other names definition `name` had in older QEMU (renamed types).
    pub(crate) fn old_names(&self, name: &str) -> Vec<&'s str> {
        let mut names: Vec<&str> = self
            .merged
            .old_names(name)
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| *n != name)
            .collect();
        names.dedup();
        names
    }
}
