//! The software catalog: Backstage-compatible entities, their ingestion from
//! locations, storage and queries.

pub mod crawl;
pub mod model;
pub mod source;
