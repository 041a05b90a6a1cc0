//! The run's spending limit (`[run] max_cost`), shared by every request.
//!
//! Before a request is sent its worst-case cost is reserved: every prompt
//! byte counted as one input token (a byte-level tokenizer never makes more
//! tokens than bytes) plus a fixed allowance for the chat template, and
//! `max_tokens` output tokens, at the highest input rate. A request whose
//! reservation would take spent + reserved past the limit is not sent, so
//! the limit is never exceeded while the server honours `max_tokens`. When
//! the answer arrives the reservation is replaced by the cost of the usage
//! the server reported, or, when it reported none, of the usage estimated
//! the same way ([`estimate_usage`]): a budget never counts an answer as
//! free.

use std::sync::Mutex;

use crate::cost::Price;
use crate::model::{FinishReason, Usage};

/// Tokens allowed for the chat template around the system and user texts.
pub const TEMPLATE_TOKENS: u64 = 64;

/// Spent and reserved dollars against an optional limit.
#[derive(Debug)]
pub struct Budget {
    limit: Option<f64>,
    /// Where the limit came from (`run.max_cost` or `--max-cost`), for
    /// the message that stops a run.
    set_by: &'static str,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    spent: f64,
    reserved: f64,
}

/// Money held for one request in flight.
#[derive(Debug)]
#[must_use = "settle or release a reservation"]
pub struct Reservation(f64);

impl Budget {
    /// A budget of `limit` dollars (none: unlimited), of which `spent` is
    /// already used (by the part of the run in the journal).
    pub fn new(limit: Option<f64>, spent: f64) -> Self {
        Self {
            limit,
            set_by: "run.max_cost",
            state: Mutex::new(State {
                spent,
                reserved: 0.0,
            }),
        }
    }

    /// The budget a run sets: `max_cost` dollars from `[run] max_cost`, or
    /// from `run --max-cost` when `from_flag` (each message then names
    /// it), of which `spent` is already used.
    pub fn of_run(max_cost: Option<f64>, from_flag: bool, spent: f64) -> Self {
        Self {
            set_by: if from_flag {
                "--max-cost"
            } else {
                "run.max_cost"
            },
            ..Self::new(max_cost, spent)
        }
    }

    /// Holds `worst_case` dollars, or says why the request must not be sent.
    pub fn reserve(&self, worst_case: f64) -> Result<Reservation, String> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(limit) = self.limit
            && s.spent + s.reserved + worst_case > limit
        {
            return Err(format!(
                "budget: {} is ${limit}; ${:.6} spent and ${:.6} in flight, and the next request may cost up to ${worst_case:.6}. Run again with a higher --max-cost (or run.max_cost) to resume",
                self.set_by, s.spent, s.reserved
            ));
        }
        s.reserved += worst_case;
        Ok(Reservation(worst_case))
    }

    /// Replaces a reservation by what the request actually cost.
    pub fn settle(&self, r: Reservation, actual: f64) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.reserved = (s.reserved - r.0).max(0.0);
        s.spent += actual;
    }

    /// Gives a reservation back (the request failed without a reported usage).
    pub fn release(&self, r: Reservation) {
        self.settle(r, 0.0);
    }

    /// Dollars spent so far.
    pub fn spent(&self) -> f64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).spent
    }
}

/// Worst-case dollars of one request (see the module docs).
pub fn worst_case_cost(prompt_bytes: usize, max_tokens: usize, price: &Price) -> f64 {
    let input_rate = [price.input_per_mtok, price.cached_input_per_mtok]
        .into_iter()
        .flatten()
        .fold(0.0f64, f64::max);
    let output_rate = price.output_per_mtok.unwrap_or(0.0);
    (prompt_bytes as f64 + TEMPLATE_TOKENS as f64) * input_rate / 1e6
        + max_tokens as f64 * output_rate / 1e6
}

/// Token counts for an answer whose server reported no usage, by the
/// budget's own upper-bound method, marked as estimated: every byte of the
/// system prompt and prompt as an input token plus [`TEMPLATE_TOKENS`]
/// for the chat template, and as output tokens every byte of the `text`
/// returned, plus the longest stop sequence (a server does not return the
/// stop it matched) and one end token; at most `max_tokens`, and exactly
/// `max_tokens` when the answer was cut by it. A byte-level tokenizer never
/// makes more tokens than bytes, so the cost is never under-counted (it is
/// usually about four times too high).
pub fn estimate_usage(
    prompt_bytes: usize,
    text: &str,
    stop: &[String],
    max_tokens: usize,
    finish: FinishReason,
) -> Usage {
    let longest_stop = stop.iter().map(String::len).max().unwrap_or(0);
    let completion = match finish {
        FinishReason::Length => max_tokens,
        _ => (text.len() + longest_stop + 1).min(max_tokens),
    };
    Usage {
        prompt_tokens: prompt_bytes as u64 + TEMPLATE_TOKENS,
        completion_tokens: completion as u64,
        cached_prompt_tokens: 0,
        estimated: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_request_that_could_cross_the_limit() {
        let b = Budget::new(Some(1.0), 0.25);
        let r1 = b.reserve(0.5).unwrap();
        // 0.25 spent + 0.5 reserved + 0.3 > 1.0
        let err = b.reserve(0.3).unwrap_err();
        assert!(err.contains("run.max_cost is $1"), "{err}");
        b.settle(r1, 0.1);
        assert!((b.spent() - 0.35).abs() < 1e-12);
        let r2 = b.reserve(0.6).unwrap();
        b.release(r2);
        assert!((b.spent() - 0.35).abs() < 1e-12);
    }

    #[test]
    fn estimates_bound_the_tokens_from_above() {
        let stop = ["\n\n".to_string()];
        let u = estimate_usage(100, "42", &stop, 16, FinishReason::Stop);
        assert_eq!((u.prompt_tokens, u.completion_tokens), (164, 5));
        assert!(u.estimated);
        // Never more than the server may generate; all of it when cut.
        let long = "x".repeat(40);
        let u = estimate_usage(0, &long, &stop, 16, FinishReason::Stop);
        assert_eq!(u.completion_tokens, 16);
        let u = estimate_usage(0, "", &[], 16, FinishReason::Length);
        assert_eq!(u.completion_tokens, 16);
    }

    #[test]
    fn the_message_names_where_the_limit_came_from() {
        let err = Budget::of_run(Some(0.00001), false, 0.0)
            .reserve(1.0)
            .unwrap_err();
        assert!(err.contains("run.max_cost is $0.00001"), "{err}");
        let err = Budget::of_run(Some(0.00001), true, 0.0)
            .reserve(1.0)
            .unwrap_err();
        assert!(err.contains("--max-cost is $0.00001"), "{err}");
    }

    #[test]
    fn unlimited() {
        let b = Budget::new(None, 0.0);
        let r = b.reserve(1e9).unwrap();
        b.settle(r, 2.0);
        assert_eq!(b.spent(), 2.0);
    }

    #[test]
    fn worst_case_uses_the_highest_input_rate() {
        let price = Price {
            input_per_mtok: Some(2.0),
            output_per_mtok: Some(10.0),
            cached_input_per_mtok: Some(1.0),
            ..Price::default()
        };
        // (936 + 64) * 2 / 1e6 + 100 * 10 / 1e6 = 0.002 + 0.001
        assert!((worst_case_cost(936, 100, &price) - 0.003).abs() < 1e-15);
    }
}
