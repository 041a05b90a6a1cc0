//! Price models: per token (input, output, cached input) for API models and
//! per compute hour for self-hosted ones.

use serde::{Deserialize, Serialize};

use crate::measure::{Latency, Usage};

/// Prices used for cost: per token for API teachers, per compute hour for
/// self-hosted models. All in US dollars.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Dollars per million input tokens.
    #[serde(default)]
    pub input_per_mtok: Option<f64>,
    /// Dollars per million output tokens.
    #[serde(default)]
    pub output_per_mtok: Option<f64>,
    /// Dollars per million cached input tokens.
    #[serde(default)]
    pub cached_input_per_mtok: Option<f64>,
    /// Dollars per hour of the machine the model runs on.
    #[serde(default)]
    pub per_hour: Option<f64>,
    /// Where the price comes from (shown in reports).
    #[serde(default)]
    pub source: Option<String>,
}

impl Price {
    /// The price in words, as reports show it (`$0.15/M input, $0.6/M
    /// output tokens; source: ...`), or `unpriced`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let (Some(i), Some(o)) = (self.input_per_mtok, self.output_per_mtok) {
            parts.push(format!("${i}/M input, ${o}/M output tokens"));
        }
        if let Some(h) = self.per_hour {
            parts.push(format!("${h}/compute hour"));
        }
        if let Some(s) = &self.source {
            parts.push(format!("source: {s}"));
        }
        if parts.is_empty() {
            "unpriced".into()
        } else {
            parts.join("; ")
        }
    }
}

/// Dollars for one request's tokens under a per-token price.
pub fn token_cost(usage: &Usage, price: &Price) -> f64 {
    let per = |rate: Option<f64>, n: u64| rate.unwrap_or(0.0) * n as f64 / 1e6;
    // Cached input tokens fall back to the full input rate when no cached rate is given.
    let cached_rate = price.cached_input_per_mtok.or(price.input_per_mtok);
    per(price.input_per_mtok, usage.prompt_tokens)
        + per(cached_rate, usage.cached_prompt_tokens)
        + per(price.output_per_mtok, usage.completion_tokens)
}

/// Dollars for one request's share of compute time: the wall time of the
/// batch it ran in, divided evenly over the batch, at the hourly price.
/// Without a batch time the request's own latency is used.
pub fn compute_cost(latency: &Latency, price: &Price) -> f64 {
    let Some(per_hour) = price.per_hour else {
        return 0.0;
    };
    let ms = match latency.batch_ms {
        Some(batch) => batch / latency.batch_size.max(1) as f64,
        None => latency.total_ms,
    };
    per_hour * ms / 3_600_000.0
}

/// Total dollars of one request.
pub fn request_cost(usage: &Usage, latency: Option<&Latency>, price: &Price) -> f64 {
    token_cost(usage, price) + latency.map_or(0.0, |l| compute_cost(l, price))
}

/// Dollars per 1,000 items of `total` dollars spent on `items` items (0
/// for no items).
pub fn per_1k(total: f64, items: usize) -> f64 {
    if items == 0 {
        0.0
    } else {
        total * 1000.0 / items as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::LatencySource;

    #[test]
    fn token_cost_uses_each_rate() {
        let price = Price {
            input_per_mtok: Some(3.0),
            output_per_mtok: Some(15.0),
            cached_input_per_mtok: Some(0.3),
            ..Price::default()
        };
        let usage = Usage {
            prompt_tokens: 1_000,
            completion_tokens: 200,
            cached_prompt_tokens: 10_000,
            estimated: false,
        };
        // 1000*3/1e6 + 10000*0.3/1e6 + 200*15/1e6 = 0.003 + 0.003 + 0.003
        assert!((token_cost(&usage, &price) - 0.009).abs() < 1e-12);
    }

    #[test]
    fn compute_cost_shares_the_batch() {
        let price = Price {
            per_hour: Some(3.6),
            ..Price::default()
        };
        let latency = Latency {
            total_ms: 900.0,
            first_token_ms: None,
            batch_ms: Some(1_000.0),
            batch_size: 4,
            source: LatencySource::Live,
        };
        // 3.6 $/h * 250 ms = 3.6 * 250 / 3.6e6 = 0.00025
        assert!((compute_cost(&latency, &price) - 0.000_25).abs() < 1e-15);
    }
}
