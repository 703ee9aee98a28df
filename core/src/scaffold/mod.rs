//! Golden paths: Backstage v1beta3 templates, their expressions, and the
//! durable scaffolder that runs them.

pub mod expr;
pub mod template;
