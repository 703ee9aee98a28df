//! Money for budgets: exact integer arithmetic. Ledger amounts are nanocents
//! (10⁻⁹ cent); prices are millicents per million tokens, so the cost of a
//! request is `tokens × price` nanocents exactly, with no floating point.

use serde::{Deserialize, Serialize};

pub use paved_shared::budgets::NANOCENTS_PER_CENT;

/// A model's price, in millicents per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    /// Input (prompt) tokens.
    pub input_millicents_per_mtok: i64,
    /// Output (completion) tokens.
    pub output_millicents_per_mtok: i64,
}

/// Parses a non-negative decimal dollar amount per million tokens (`2.50`,
/// `0.075`) into millicents per million tokens (at most 5 decimals of a dollar).
pub fn parse_usd_per_mtok(raw: &str) -> Result<i64, String> {
    let raw = raw.trim();
    let bad = || format!("`{raw}` is not a price in dollars per million tokens, such as 2.50");
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !fraction.chars().all(|c| c.is_ascii_digit())
        || fraction.len() > 5
    {
        return Err(bad());
    }
    // dollars → millicents: × 100 cents × 1000.
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let padded = format!("{fraction:0<5}");
    let fraction: i64 = padded.parse().map_err(|_| bad())?;
    whole
        .checked_mul(100_000)
        .and_then(|w| w.checked_add(fraction))
        .ok_or_else(bad)
}

impl Price {
    /// From dollars per million tokens, as price pages and the CSV give them.
    pub fn from_usd_per_mtok(input: &str, output: &str) -> Result<Self, String> {
        Ok(Self {
            input_millicents_per_mtok: parse_usd_per_mtok(input)?,
            output_millicents_per_mtok: parse_usd_per_mtok(output)?,
        })
    }

    /// The exact cost of `input` and `output` tokens, in nanocents (saturating).
    pub fn cost(&self, input: i64, output: i64) -> i64 {
        let total = i128::from(input.max(0)) * i128::from(self.input_millicents_per_mtok)
            + i128::from(output.max(0)) * i128::from(self.output_millicents_per_mtok);
        i64::try_from(total).unwrap_or(i64::MAX)
    }
}

/// Whole cents for display and the API, rounded up (a budget never shows less than it spent).
pub fn cents_ceil(nanocents: i64) -> i64 {
    nanocents.div_euclid(NANOCENTS_PER_CENT)
        + i64::from(nanocents.rem_euclid(NANOCENTS_PER_CENT) != 0)
}

/// One row of the seed price list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedPrice {
    /// `openai`, `anthropic`, …
    pub provider: String,
    /// The model name clients ask for.
    pub model: String,
    /// Its price.
    pub price: Price,
}

/// Parses `core/src/budgets/seed-prices.csv` (comment lines start with `#`; a header row).
pub fn parse_seed_prices(csv: &str) -> Result<Vec<SeedPrice>, String> {
    let mut rows = Vec::new();
    for (n, line) in csv.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("provider,") {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let [provider, model, input, output] = cells[..] else {
            return Err(format!(
                "line {}: expected provider,model,input,output",
                n + 1
            ));
        };
        if provider.is_empty() || model.is_empty() {
            return Err(format!("line {}: provider and model are required", n + 1));
        }
        let price =
            Price::from_usd_per_mtok(input, output).map_err(|e| format!("line {}: {e}", n + 1))?;
        rows.push(SeedPrice {
            provider: provider.to_owned(),
            model: model.to_owned(),
            price,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_are_exact_integers() {
        let mini = Price::from_usd_per_mtok("0.15", "0.60").unwrap();
        assert_eq!(mini.input_millicents_per_mtok, 15_000);
        // 1,000 prompt + 500 completion tokens: 0.015 + 0.03 cents = 0.045 cents.
        assert_eq!(mini.cost(1_000, 500), 45_000_000);
        assert_eq!(cents_ceil(mini.cost(1_000, 500)), 1);
        assert_eq!(cents_ceil(0), 0);
        assert_eq!(cents_ceil(NANOCENTS_PER_CENT), 1);
        assert_eq!(cents_ceil(NANOCENTS_PER_CENT + 1), 2);
        // A million output tokens of Opus is exactly $75.
        let opus = Price::from_usd_per_mtok("15", "75").unwrap();
        assert_eq!(opus.cost(0, 1_000_000), 7_500 * NANOCENTS_PER_CENT);
        assert_eq!(opus.cost(-5, 0), 0);
        assert_eq!(opus.cost(i64::MAX, i64::MAX), i64::MAX);
    }

    #[test]
    fn prices_parse_strictly() {
        assert_eq!(parse_usd_per_mtok("0.075").unwrap(), 7_500);
        assert_eq!(parse_usd_per_mtok(".5").unwrap(), 50_000);
        for bad in ["", "-1", "1,5", "1.123456", "abc", "."] {
            assert!(parse_usd_per_mtok(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_seed_list_parses_and_prices_every_row() {
        let rows = parse_seed_prices(include_str!("seed-prices.csv")).unwrap();
        assert!(rows.len() >= 10);
        assert!(rows.iter().all(|r| r.price.input_millicents_per_mtok > 0));
        assert!(rows.iter().any(|r| r.model == "gpt-4o-mini"));
        assert!(parse_seed_prices("openai,gpt,1").is_err());
    }
}
