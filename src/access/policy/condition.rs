//! IAM-style conditions: operators over variables, evaluated to true, false or unevaluable.

use ipnet::IpNet;
use serde_json::Value;

use super::error::{PolicyError, quote};
use super::facts::Facts;
use super::pattern::{Pattern, fold};
use super::variable::{Fact, Resolved, Variable};

/// At most this many keys across a statement's operators.
const MAX_KEYS: usize = 32;
/// At most this many values for one key.
const MAX_VALUES: usize = 32;

/// A three-valued truth: conditions over facts that do not parse are neither true nor false.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    True,
    False,
    Unevaluable,
}

impl Tri {
    fn from_bool(b: bool) -> Self {
        if b { Self::True } else { Self::False }
    }

    fn or(self, other: Self) -> Self {
        match (self, other) {
            (Self::True, _) | (_, Self::True) => Self::True,
            (Self::Unevaluable, _) | (_, Self::Unevaluable) => Self::Unevaluable,
            _ => Self::False,
        }
    }

    fn not(self) -> Self {
        match self {
            Self::True => Self::False,
            Self::False => Self::True,
            Self::Unevaluable => Self::Unevaluable,
        }
    }
}

/// How numbers and dates are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds<T: PartialOrd>(self, key: T, value: T) -> bool {
        match self {
            Self::Eq => key == value,
            Self::Lt => key < value,
            Self::Le => key <= value,
            Self::Gt => key > value,
            Self::Ge => key >= value,
        }
    }
}

/// What an operator compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String { ignore_case: bool },
    Like,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Ip,
    ListIntersect,
    Null,
}

/// A condition value, already in the operator's type.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Text(String),
    Like(Pattern),
    Number(f64),
    Date(i64),
    Bool(bool),
    Net(IpNet),
}

impl Literal {
    /// The fact read as `kind` wants it; `None` when it does not parse as that type.
    fn of(kind: Kind, fact: &Fact) -> Option<Self> {
        Some(match kind {
            Kind::String { .. } | Kind::ListIntersect => Self::Text(fact.text()?.into_owned()),
            Kind::Like => Self::Like(Pattern::exact(&fact.text()?)),
            Kind::Numeric(_) => Self::Number(fact.number()?),
            Kind::Date(_) => Self::Date(fact.date()?),
            Kind::Bool | Kind::Null => Self::Bool(fact.boolean()?),
            Kind::Ip => match fact.as_str() {
                Some(text) => Self::Net(parse_net(text)?),
                None => Self::Net(IpNet::from(fact.ip()?)),
            },
        })
    }
}

/// A CIDR block or a plain address (a network of one).
fn parse_net(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<std::net::IpAddr>().ok().map(|ip| IpNet::from(ip.to_canonical())))
}

/// A condition value as written: a literal or a variable.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Literal(Literal),
    Variable(Variable),
}

/// One key of one operator: `"StringEquals": {"${user:country}": ["DE", "FR"]}`.
#[derive(Debug, Clone, PartialEq)]
struct Clause {
    kind: Kind,
    negated: bool,
    if_exists: bool,
    key: Variable,
    values: Vec<Operand>,
}

/// A statement's condition: every clause must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Condition {
    clauses: Vec<Clause>,
}

impl Condition {
    /// Parses a `Condition` object.
    pub(crate) fn parse(value: &Value) -> Result<Self, PolicyError> {
        let operators = value.as_object().ok_or(PolicyError::Type("Condition", "an object"))?;
        let mut clauses = Vec::new();
        for (name, keys) in operators {
            let (kind, negated, if_exists) = parse_operator(name)?;
            let keys = keys.as_object().ok_or(PolicyError::Type("Condition operator", "an object of keys"))?;
            for (key, values) in keys {
                if clauses.len() == MAX_KEYS {
                    return Err(PolicyError::Limit("more than 32 condition keys in a statement"));
                }
                let key = Variable::parse_key(key)?;
                let values = parse_values(name, kind, values)?;
                clauses.push(Clause { kind, negated, if_exists, key, values });
            }
        }
        Ok(Self { clauses })
    }

    /// True when there is nothing to check.
    pub(crate) fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// Evaluates every clause: false if one is false, else unevaluable if one is, else true.
    pub(crate) fn eval(&self, facts: &Facts) -> Tri {
        let mut result = Tri::True;
        for clause in &self.clauses {
            match clause.eval(facts) {
                Tri::False => return Tri::False,
                Tri::Unevaluable => result = Tri::Unevaluable,
                Tri::True => {}
            }
        }
        result
    }
}

/// Reads an operator name (any case), with its `IfExists` suffix.
fn parse_operator(name: &str) -> Result<(Kind, bool, bool), PolicyError> {
    let lower = name.to_ascii_lowercase();
    let (base, if_exists) = lower.strip_suffix("ifexists").map_or((lower.as_str(), false), |base| (base, true));
    let (kind, negated) = match base {
        "stringequals" => (Kind::String { ignore_case: false }, false),
        "stringnotequals" => (Kind::String { ignore_case: false }, true),
        "stringequalsignorecase" => (Kind::String { ignore_case: true }, false),
        "stringnotequalsignorecase" => (Kind::String { ignore_case: true }, true),
        "stringlike" => (Kind::Like, false),
        "stringnotlike" => (Kind::Like, true),
        "bool" => (Kind::Bool, false),
        "ipaddress" => (Kind::Ip, false),
        "notipaddress" => (Kind::Ip, true),
        "foranyvalue:listintersect" => (Kind::ListIntersect, false),
        "null" if !if_exists => (Kind::Null, false),
        other => {
            let ordered = |rest: &str, wrap: fn(Cmp) -> Kind| {
                Some(match rest {
                    "equals" => (wrap(Cmp::Eq), false),
                    "notequals" => (wrap(Cmp::Eq), true),
                    "lessthan" => (wrap(Cmp::Lt), false),
                    "lessthanequals" => (wrap(Cmp::Le), false),
                    "greaterthan" => (wrap(Cmp::Gt), false),
                    "greaterthanequals" => (wrap(Cmp::Ge), false),
                    _ => return None,
                })
            };
            let found = match (other.strip_prefix("numeric"), other.strip_prefix("date")) {
                (Some(rest), _) => ordered(rest, Kind::Numeric),
                (_, Some(rest)) => ordered(rest, Kind::Date),
                _ => None,
            };
            found.ok_or_else(|| PolicyError::UnknownOperator(quote(name)))?
        }
    };
    Ok((kind, negated, if_exists))
}

/// Reads one key's value or list of values.
fn parse_values(operator: &str, kind: Kind, value: &Value) -> Result<Vec<Operand>, PolicyError> {
    let items = match value {
        Value::Array(items) => items.as_slice(),
        single => std::slice::from_ref(single),
    };
    let invalid = |what: &str| PolicyError::InvalidValue(quote(&format!("{operator} {what}")));
    if items.is_empty() {
        return Err(invalid("needs a value"));
    }
    if items.len() > MAX_VALUES {
        return Err(PolicyError::Limit("more than 32 values for a condition key"));
    }
    items
        .iter()
        .map(|item| {
            let variable = match item {
                Value::String(s) if kind != Kind::Null => Variable::parse_value(s)?,
                _ => None,
            };
            if let Some(variable) = variable {
                return Ok(Operand::Variable(variable));
            }
            let literal = match item {
                Value::String(_) | Value::Number(_) | Value::Bool(_) => Literal::of(kind, &Fact::Json(item)),
                _ => None,
            };
            literal.map(Operand::Literal).ok_or_else(|| invalid(&item.to_string()))
        })
        .collect()
}

impl Clause {
    fn eval(&self, facts: &Facts) -> Tri {
        let Resolved::Values(keys) = self.key.resolve(facts) else { return Tri::Unevaluable };
        if self.kind == Kind::Null {
            let absent = keys.is_empty();
            let matches = |operand: &Operand| matches!(operand, Operand::Literal(Literal::Bool(b)) if *b == absent);
            return Tri::from_bool(self.values.iter().any(matches));
        }
        if keys.is_empty() {
            return Tri::from_bool(self.if_exists);
        }
        let mut any = Tri::False;
        for operand in &self.values {
            match operand {
                Operand::Literal(literal) => {
                    for key in &keys {
                        any = any.or(self.compare(key, literal));
                    }
                }
                Operand::Variable(variable) => match variable.resolve(facts) {
                    Resolved::Unavailable => any = any.or(Tri::Unevaluable),
                    Resolved::Values(values) => {
                        for value in &values {
                            let Some(literal) = Literal::of(self.kind, value) else {
                                any = any.or(Tri::Unevaluable);
                                continue;
                            };
                            for key in &keys {
                                any = any.or(self.compare(key, &literal));
                            }
                        }
                    }
                },
            }
            if any == Tri::True {
                break;
            }
        }
        // The negated operators hold when no key value matches any condition value.
        if self.negated { any.not() } else { any }
    }

    /// Whether one key value satisfies the (positive) operator against one condition value.
    fn compare(&self, key: &Fact, value: &Literal) -> Tri {
        let result = match (self.kind, value) {
            (Kind::String { ignore_case }, Literal::Text(v)) => key.text().map(|k| match ignore_case {
                true => k.chars().map(fold).eq(v.chars().map(fold)),
                false => *k == **v,
            }),
            (Kind::ListIntersect, Literal::Text(v)) => key.text().map(|k| *k == **v),
            (Kind::Like, Literal::Like(pattern)) => key.text().map(|k| pattern.matches(&k)),
            (Kind::Numeric(cmp), Literal::Number(v)) => key.number().map(|k| cmp.holds(k, *v)),
            (Kind::Date(cmp), Literal::Date(v)) => key.date().map(|k| cmp.holds(k, *v)),
            (Kind::Bool, Literal::Bool(v)) => key.boolean().map(|k| k == *v),
            (Kind::Ip, Literal::Net(net)) => key.ip().map(|k| net.contains(&k)),
            _ => None,
        };
        result.map_or(Tri::Unevaluable, Tri::from_bool)
    }
}
