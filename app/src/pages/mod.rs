//! One module per page.

pub mod audit;
pub mod errors;
pub mod home;
pub mod profile;
pub mod signin;
pub mod team;
