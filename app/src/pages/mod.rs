//! One module per page.

pub mod access;
pub mod audit;
pub mod catalog;
pub mod create;
pub mod entity;
pub mod errors;
pub mod home;
pub mod locations;
pub mod notifications;
pub mod profile;
pub mod signin;
pub mod team;
