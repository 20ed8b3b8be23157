//! A role's policies compiled for fast decisions: statements indexed by operation name.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::condition::Tri;
use super::decision::{Decision, Effective, Reach};
use super::document::{Document, Effect, Statement};
use super::facts::{Facts, Part};
use super::pattern::{Pattern, fold};
use super::resource::FieldPath;
use super::view::View;

/// One statement kept for the role, with the policy it came from.
#[derive(Debug)]
struct Rule {
    policy: i64,
    statement: Statement,
}

/// The statements that apply to one role, indexed by action.
#[derive(Debug, Default)]
pub struct Compiled {
    rules: Vec<Rule>,
    /// Lowercase operation name to the rules naming it exactly.
    exact: HashMap<String, Vec<usize>>,
    /// Rules with wildcard actions, and those patterns.
    wildcard: Vec<(Vec<Pattern>, usize)>,
}

impl Compiled {
    /// Compiles the statements of `policies` whose Principal admits `role_name`.
    pub fn new(role_name: &str, policies: impl IntoIterator<Item = (i64, Document)>) -> Compiled {
        let mut compiled = Compiled::default();
        for (policy, document) in policies {
            for statement in document.statements {
                let admits =
                    statement.principal.as_ref().is_none_or(|roles| roles.iter().any(|r| r.matches(role_name)));
                if !admits {
                    continue;
                }
                let index = compiled.rules.len();
                let mut names: Vec<String> = statement.actions.iter().filter_map(Pattern::literal_text).collect();
                names.sort_unstable();
                names.dedup();
                for name in names {
                    compiled.exact.entry(name).or_default().push(index);
                }
                let wild: Vec<Pattern> = statement.actions.iter().filter(|a| !a.is_literal()).cloned().collect();
                if !wild.is_empty() {
                    compiled.wildcard.push((wild, index));
                }
                compiled.rules.push(Rule { policy, statement });
            }
        }
        compiled
    }

    /// The rules whose actions match `operation`, each once.
    fn rules_for<'a>(&'a self, operation: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        let name: String = operation.chars().map(fold).collect();
        let exact = self.exact.get(&name).map_or(&[][..], Vec::as_slice);
        let wild = self
            .wildcard
            .iter()
            .filter(move |(patterns, index)| !exact.contains(index) && patterns.iter().any(|p| p.matches(operation)));
        exact.iter().copied().chain(wild.map(|(_, index)| *index)).map(|index| &self.rules[index])
    }

    /// Decides one call: default deny, any applicable Deny wins, the applicable Allows grant.
    pub fn decide(&self, facts: &Facts) -> Decision {
        let mut denying = Vec::new();
        let mut allowing = Vec::new();
        let (mut all, mut allow, mut deny) = (false, Vec::new(), Vec::new());
        for rule in self.rules_for(facts.operation) {
            let statement = &rule.statement;
            let mut whole = false;
            let mut fields: Vec<&Arc<FieldPath>> = Vec::new();
            for resource in statement.resources.iter().filter(|r| r.applies(facts)) {
                match resource.fields() {
                    Some(path) => fields.push(path),
                    None => whole = true,
                }
            }
            if !whole && fields.is_empty() {
                continue;
            }
            let holds = if statement.condition.is_empty() { Tri::True } else { statement.condition.eval(facts) };
            match (statement.effect, holds) {
                // A Deny that cannot be evaluated applies: failing closed.
                (Effect::Deny, Tri::True | Tri::Unevaluable) if whole => denying.push(rule.policy),
                // A field-level Deny hides fields rather than refusing the call.
                (Effect::Deny, Tri::True | Tri::Unevaluable) => {
                    allowing.push(rule.policy);
                    deny.extend(fields.into_iter().cloned());
                }
                (Effect::Allow, Tri::True) => {
                    allowing.push(rule.policy);
                    all |= whole;
                    allow.extend(fields.into_iter().cloned());
                }
                _ => {}
            }
        }
        let mut decision = if !denying.is_empty() {
            Decision { allowed: false, policies: denying, view: View::none() }
        } else if all || !allow.is_empty() {
            let view = if facts.part == Part::Profile { View::of(all, allow, deny) } else { View::all() };
            Decision { allowed: true, policies: allowing, view }
        } else {
            Decision::denied()
        };
        decision.policies.sort_unstable();
        decision.policies.dedup();
        decision
    }

    /// Whether `operation` could be allowed, ignoring conditions and resources.
    pub fn reach(&self, operation: &str) -> Reach {
        let mut allowed = false;
        for rule in self.rules_for(operation) {
            let statement = &rule.statement;
            match statement.effect {
                Effect::Allow => allowed = true,
                Effect::Deny
                    if statement.condition.is_empty() && statement.resources.iter().any(|r| r.covers_everything()) =>
                {
                    return Reach::Never;
                }
                Effect::Deny => {}
            }
        }
        if allowed { Reach::Maybe } else { Reach::Never }
    }

    /// The operations some Allow grants, assuming conditions hold, less those an unconditional
    /// whole-record Deny on every user removes.
    pub fn effective(&self, operations: &[&str], part_of: impl Fn(&str) -> Part) -> Vec<Effective> {
        let mut listed = Vec::new();
        for &operation in operations {
            let part = part_of(operation);
            let (mut granted, mut removed, mut conditional, mut whole) = (false, false, false, false);
            let (mut fields, mut hidden) = (BTreeSet::new(), BTreeSet::new());
            for rule in self.rules_for(operation) {
                let statement = &rule.statement;
                let covers = |r: &&super::resource::Resource| part == Part::None || r.covers_part(part);
                for resource in statement.resources.iter().filter(covers) {
                    let path = resource.fields().map(|f| f.text.clone());
                    let everyone = part == Part::None || !resource.is_group_relative();
                    match (statement.effect, path) {
                        (Effect::Deny, None) => removed |= statement.condition.is_empty() && everyone,
                        (Effect::Deny, Some(path)) => {
                            hidden.insert(path);
                        }
                        (Effect::Allow, path) => {
                            granted = true;
                            conditional |= !statement.condition.is_empty() || !everyone;
                            match path {
                                Some(path) => {
                                    fields.insert(path);
                                }
                                None => whole = true,
                            }
                        }
                    }
                }
            }
            if granted && !removed {
                let profile = part == Part::Profile;
                listed.push(Effective {
                    operation: operation.to_owned(),
                    conditional,
                    fields: (profile && !whole).then(|| fields.into_iter().collect()),
                    hidden: if profile { hidden.into_iter().collect() } else { Vec::new() },
                });
            }
        }
        listed
    }
}
