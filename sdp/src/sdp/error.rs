//! Errors of the SDP text parser.

/// Why an attribute value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    #[error("attribute needs a value")]
    MissingValue,
    #[error("malformed attribute value")]
    Malformed,
}

/// What was wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("empty description")]
    Empty,
    #[error("line is not `<type>=<value>`")]
    NotTypeValue,
    #[error("first line must be `v=`")]
    MissingVersion,
    #[error("invalid `v=` value")]
    InvalidVersion,
    #[error("invalid `o=` line")]
    InvalidOrigin,
    #[error("invalid `c=` line")]
    InvalidConnection,
    #[error("invalid `m=` line")]
    InvalidMedia,
    #[error("`{0}=` line is not allowed here")]
    Misplaced(char),
    #[error("invalid `a={name}`: {error}")]
    InvalidAttribute { name: String, error: AttributeError },
    #[error("missing `o=` line")]
    MissingOrigin,
    #[error("description too large")]
    TooLarge,
}

/// A parse failure with the 1-based line number where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SDP line {line}: {kind}")]
pub struct ParseError {
    pub line: usize,
    pub kind: ParseErrorKind,
}
