//! What Paved's server and browser builds share, so both apply one rule and
//! speak one type: the signed-in principal and [`auth::authorize`], the wire
//! types of each feature, and the input rules the browser checks as you type
//! and the server enforces ([`forms`]: template forms, names, links).

pub mod adoption;
pub mod auth;
pub mod budgets;
pub mod capabilities;
pub mod catalog;
pub mod forms;
pub mod identity;
pub mod kube;
pub mod notifications;
pub mod outcomes;
pub mod policy;
pub mod scaffold;
pub mod secrets;
pub mod surveys;
