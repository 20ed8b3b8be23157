//! Field visibility: which profile fields a decision lets the caller see, and masking.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::resource::FieldPath;

/// What one role's decision shows: everything or some fields, minus the fields its Denies hide.
#[derive(Debug, Clone, Default)]
struct Grant {
    all: bool,
    allow: Vec<Arc<FieldPath>>,
    deny: Vec<Arc<FieldPath>>,
}

/// How much of a node one view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coverage {
    /// The node and everything in it.
    Full,
    /// Something inside it; `leaf` says whether the node itself shows when nothing is inside.
    Partial { leaf: bool },
    /// Nothing.
    Hidden,
}

impl Grant {
    fn coverage(&self, path: &[&str]) -> Coverage {
        if self.deny.iter().any(|d| d.covers(path)) {
            return Coverage::Hidden;
        }
        if self.all || self.allow.iter().any(|a| a.covers(path)) {
            return match self.deny.iter().any(|d| d.reaches_into(path)) {
                true => Coverage::Partial { leaf: true },
                false => Coverage::Full,
            };
        }
        match self.allow.iter().any(|a| a.reaches_into(path)) {
            true => Coverage::Partial { leaf: false },
            false => Coverage::Hidden,
        }
    }
}

/// The profile fields a caller may see: the union of its roles' grants.
#[derive(Debug, Clone, Default)]
pub struct View {
    grants: Vec<Grant>,
}

/// What a masked string field shows instead of its value.
const MASK: &str = "***";

impl View {
    /// Sees everything.
    pub fn all() -> Self {
        Self { grants: vec![Grant { all: true, ..Grant::default() }] }
    }

    /// Sees nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// A view of the `allow`ed fields (all when `all`) minus the `deny`ed ones.
    pub(crate) fn of(all: bool, mut allow: Vec<Arc<FieldPath>>, mut deny: Vec<Arc<FieldPath>>) -> Self {
        for paths in [&mut allow, &mut deny] {
            // Sorted so that a view does not depend on the order of the statements behind it.
            paths.sort_by(|a, b| a.text.cmp(&b.text));
            paths.dedup_by(|a, b| a.text == b.text);
        }
        Self { grants: vec![Grant { all, allow, deny }] }
    }

    /// True when every field is visible.
    pub fn is_all(&self) -> bool {
        self.grants.iter().any(|g| g.all && g.deny.is_empty())
    }

    /// Everything either view sees.
    pub(crate) fn union(mut self, other: Self) -> Self {
        if self.is_all() || other.grants.is_empty() {
            return self;
        }
        if other.is_all() || self.grants.is_empty() {
            return other;
        }
        self.grants.extend(other.grants);
        self
    }

    /// True when the caller sees the field at `path` (keys from the profile's top) and
    /// everything inside it: what a change of that field needs.
    pub fn covers(&self, path: &[&str]) -> bool {
        self.is_all() || self.coverage(path) == Coverage::Full
    }

    /// The profile as the caller may see it, and the dotted names of the fields masked: hidden
    /// strings show `"***"`, other hidden values are left out.
    pub fn mask(&self, profile: &Value) -> (Value, Vec<String>) {
        if self.is_all() {
            return (profile.clone(), Vec::new());
        }
        let mut masked = Vec::new();
        let shown = match profile {
            Value::Object(fields) => self.mask_object(fields, &mut Vec::new(), &mut masked),
            // A profile is an object; anything else has no field a restricted view could show.
            _ => Map::new(),
        };
        (Value::Object(shown), masked)
    }

    fn coverage(&self, path: &[&str]) -> Coverage {
        let mut result = Coverage::Hidden;
        for grant in &self.grants {
            match (grant.coverage(path), result) {
                (Coverage::Full, _) => return Coverage::Full,
                (Coverage::Partial { leaf }, Coverage::Partial { leaf: before }) => {
                    result = Coverage::Partial { leaf: leaf || before }
                }
                (partial @ Coverage::Partial { .. }, _) => result = partial,
                (Coverage::Hidden, _) => {}
            }
        }
        result
    }

    fn mask_object<'a>(
        &self,
        fields: &'a Map<String, Value>,
        path: &mut Vec<&'a str>,
        masked: &mut Vec<String>,
    ) -> Map<String, Value> {
        let mut shown = Map::new();
        for (key, value) in fields {
            path.push(key);
            if let Some(value) = self.show(value, path, masked) {
                shown.insert(key.clone(), value);
            }
            path.pop();
        }
        shown
    }

    /// What the caller sees of the field at `path`, if anything.
    fn show<'a>(&self, value: &'a Value, path: &mut Vec<&'a str>, masked: &mut Vec<String>) -> Option<Value> {
        let visible = match (self.coverage(path), value) {
            (Coverage::Full, _) => true,
            (Coverage::Partial { .. }, Value::Object(inner)) if !inner.is_empty() => {
                let inner = self.mask_object(inner, path, masked);
                // An object whose every field was left out is left out too; its fields are
                // already listed as masked.
                return (!inner.is_empty()).then_some(Value::Object(inner));
            }
            (Coverage::Partial { leaf }, _) => leaf,
            (Coverage::Hidden, _) => false,
        };
        if visible {
            return Some(value.clone());
        }
        masked.push(path.join("."));
        value.is_string().then(|| Value::String(MASK.to_owned()))
    }
}
