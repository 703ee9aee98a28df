//! Paved's policy engine: one set of policies, evaluated the same way in the
//! scaffolder, in CI (`paved policy test`) and at the admission webhook.
//!
//! Policies come in three forms, all evaluated by [regorus]:
//! - Gatekeeper ConstraintTemplates and Constraints ([`template`], [`constraint`]),
//!   with the constraint framework's contract (`input.review`, `input.parameters`,
//!   `data.inventory`, `violation[{"msg", "details"}]`, libraries under `data.lib`)
//!   and `spec.match` ([`matcher`]);
//! - plain OPA admission policies (`package kubernetes.admission`, `deny[msg]`
//!   over an AdmissionReview's `input.request`);
//! - conftest policies (`deny`, `violation`, `warn` rules in `package main`, or
//!   another namespace, over the document itself).
//!
//! [`PolicySet`] holds them, compiled once; each check clones the prepared engine.
//! [`suite`] runs Gatekeeper's `gator verify` suites and [`report`] writes
//! conftest's output formats.

pub mod cli;
pub mod constraint;
pub mod docs;
pub mod matcher;
pub mod normalize;
pub mod report;
pub mod review;
pub mod set;
pub mod suite;
pub mod template;

pub use constraint::{Constraint, EnforcementAction, EnforcementPoint};
pub use docs::{Document, SourceFile};
pub use review::Review;
pub use set::{Finding, Inventory, PolicySet, Severity};
pub use template::Template;

/// What went wrong loading or running a policy. Each message names the file
/// or policy it is about; none of them quotes an evaluated object.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A file could not be read or parsed (YAML/JSON), with where.
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    /// A policy is malformed or its Rego does not compile.
    #[error("policy {policy}: {message}")]
    Invalid { policy: String, message: String },
    /// A constraint names a kind no loaded template defines.
    #[error("constraint {constraint}: no ConstraintTemplate defines kind {kind}")]
    UnknownKind { constraint: String, kind: String },
    /// Evaluating a policy failed (a Rego runtime error, or a template that
    /// needs `data.inventory` where no inventory is available).
    #[error("policy {policy}: {message}")]
    Eval { policy: String, message: String },
    /// Reading a file or directory failed.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

pub type Result<T> = std::result::Result<T, PolicyError>;
