//! What the engine answers: a decision, an operation-level reach, the effective permissions.

use super::view::View;

/// The outcome of one decision.
#[derive(Debug, Clone)]
pub struct Decision {
    /// True when some Allow applies and no Deny does.
    pub allowed: bool,
    /// The deciding policies, sorted: the applicable Denies when denied; the applicable Allows
    /// (and the field-level Denies that shaped the view) when allowed.
    pub policies: Vec<i64>,
    /// The profile fields the caller may see (nothing when denied).
    pub view: View,
}

impl Decision {
    /// The default: nothing grants, nothing is visible.
    pub fn denied() -> Self {
        Self { allowed: false, policies: Vec::new(), view: View::none() }
    }

    /// One decision for a user holding several roles: denied if any role's is, else allowed if
    /// any role's is, with the views united.
    pub fn combine(decisions: impl IntoIterator<Item = Decision>) -> Decision {
        let mut denying = Vec::new();
        let mut combined = Decision::denied();
        let mut any_denied = false;
        for decision in decisions {
            // Allows carry their ids; a default deny carries none, so denying ids come only from Denies.
            if !decision.allowed {
                any_denied |= !decision.policies.is_empty();
                denying.extend(decision.policies);
                continue;
            }
            combined.allowed = true;
            combined.policies.extend(decision.policies);
            combined.view = combined.view.union(decision.view);
        }
        if any_denied {
            combined = Decision { allowed: false, policies: denying, view: View::none() };
        }
        combined.policies.sort_unstable();
        combined.policies.dedup();
        combined
    }
}

/// Whether an operation could be allowed at all, before any record is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// No Allow names the operation, or an unconditional Deny covers all of it.
    Never,
    /// Some Allow names it; the decision needs the facts.
    Maybe,
}

/// One operation a role may call, as listed for a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// The operation's name.
    pub operation: String,
    /// True when some granting Allow has a condition or a group-relative subject.
    pub conditional: bool,
    /// `None`: the whole record part; `Some`: the visible profile field patterns.
    pub fields: Option<Vec<String>>,
    /// Profile field patterns that field-level Denies may hide.
    pub hidden: Vec<String>,
}
