//! Connectors: the company's own databases, searched and erased for a data subject.

pub mod external;
