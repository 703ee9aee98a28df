//! Team LLM budgets (the gateway issue). So far: budget periods on calendar
//! boundaries in a configured time zone; the ledger, pricing and the editor follow.

pub mod period;
