//! Team LLM budgets (the gateway issue). So far: budget periods on calendar
//! boundaries in a configured time zone, and exact money arithmetic with the
//! seed price list (`core/src/budgets/seed-prices.csv`); the ledger and the editor follow.

pub mod money;
pub mod period;
