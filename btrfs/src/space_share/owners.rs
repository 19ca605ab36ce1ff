//! Interned owner sets: which measured subvolumes reference a data extent.
//!
//! Every extent carries one `u32` naming its set of owners. Subvolumes are walked one after
//! the other and numbered in that order, so an extent's owners only ever grow by the subvolume
//! being walked, which is larger than every owner it has: a set is its parent set plus one
//! last owner, and the sets form a trie. Extents of one layer chain share the same few sets,
//! so the sets stay few (about one per distinct sharing pattern) however many extents there are.

use std::collections::HashMap;

/// An interned set of owners; [`OwnerSets::EMPTY`] is the empty set.
pub(crate) type SetId = u32;

/// One set: its parent (the set without its last owner) and that last owner.
#[derive(Debug, Clone, Copy)]
struct Node {
    parent: SetId,
    last: u32,
}

/// The trie of owner sets.
#[derive(Debug)]
pub(crate) struct OwnerSets {
    nodes: Vec<Node>,
    children: HashMap<(SetId, u32), SetId>,
}

impl OwnerSets {
    /// The empty set.
    pub(crate) const EMPTY: SetId = 0;

    pub(crate) fn new() -> Self {
        OwnerSets {
            nodes: vec![Node {
                parent: Self::EMPTY,
                last: u32::MAX,
            }],
            children: HashMap::new(),
        }
    }

    /// The set's largest owner, `None` for the empty set.
    pub(crate) fn last(&self, set: SetId) -> Option<u32> {
        (set != Self::EMPTY).then(|| self.nodes[set as usize].last)
    }

    /// `set ∪ {owner}`, where `owner` is at least every owner of `set`.
    pub(crate) fn with(&mut self, set: SetId, owner: u32) -> SetId {
        if self.last(set) == Some(owner) {
            return set;
        }
        debug_assert!(self.last(set).is_none_or(|l| l < owner));
        let next = self.nodes.len() as SetId;
        *self.children.entry((set, owner)).or_insert_with(|| {
            self.nodes.push(Node {
                parent: set,
                last: owner,
            });
            next
        })
    }

    /// How many sets exist (the empty one included).
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The owners of `set`, ascending.
    pub(crate) fn owners(&self, mut set: SetId) -> Vec<u32> {
        let mut out = Vec::new();
        while set != Self::EMPTY {
            let n = self.nodes[set as usize];
            out.push(n.last);
            set = n.parent;
        }
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_interned_and_grow_by_larger_owners() {
        let mut s = OwnerSets::new();
        let a = s.with(OwnerSets::EMPTY, 0);
        let ab = s.with(a, 1);
        assert_eq!(
            s.with(ab, 1),
            ab,
            "adding the last owner again is no change"
        );
        let b = s.with(OwnerSets::EMPTY, 1);
        assert_ne!(ab, b);
        assert_eq!(
            s.with(OwnerSets::EMPTY, 0),
            a,
            "the same set twice is one set"
        );
        assert_eq!(s.owners(ab), vec![0, 1]);
        assert_eq!(s.owners(b), vec![1]);
        assert_eq!(s.owners(OwnerSets::EMPTY), Vec::<u32>::new());
        assert_eq!(s.len(), 4);
    }
}
