//! Exact decimal arithmetic in templates, for money: an amount in minor units (Stripe's
//! integer cents) to the decimal text a CRM wants and back, and rounding to a number of
//! places, without ever going through a binary float (`1999 / 100` prints `19.99`, but
//! `2000 / 100` prints `20.0` and `8.165 * 100` is `816.4999999999999`).
//!
//! A number from a payload arrives as minijinja's integer or float; a float is read from its
//! shortest text (`17.08`, not `17.0799999999999983`), which is what the payload wrote.
//! Overflow and a value that is no number are errors with a message, never a panic.

use crate::model::filters::MAX_PLACES;
use minijinja::value::ValueKind;
use minijinja::{Error, ErrorKind, Value};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

/// `1999 | from_minor_units(2)`: `"19.99"`, with exactly `places` decimals (`"20.00"`).
pub(super) fn from_minor_units(value: &Value, places: u32) -> Result<String, Error> {
    let places = checked_places(places, "from_minor_units")?;
    let amount = decimal_of(value, "from_minor_units")?;
    if !amount.fract().is_zero() {
        return Err(invalid(format!(
            "`from_minor_units` takes a whole number of minor units (cents); {value} is not one"
        )));
    }
    let units = amount
        .to_i128()
        .ok_or_else(|| overflow("from_minor_units"))?;
    Decimal::try_from_i128_with_scale(units, places)
        .map(|decimal| decimal.to_string())
        .map_err(|_| overflow("from_minor_units"))
}

/// `"19.99" | to_minor_units(2)`: `1999`. A value with more decimals than `places` is an
/// error, not silently rounded: round it first with `| decimal(places)` if that is meant.
pub(super) fn to_minor_units(value: &Value, places: u32) -> Result<i64, Error> {
    let places = checked_places(places, "to_minor_units")?;
    let amount = decimal_of(value, "to_minor_units")?;
    let units = amount
        .checked_mul(Decimal::from(10i64.pow(places)))
        .ok_or_else(|| overflow("to_minor_units"))?;
    if !units.fract().is_zero() {
        return Err(invalid(format!(
            "`to_minor_units({places})`: {value} has more than {places} decimal places; \
             round it first with `| decimal({places})` if that is what is meant"
        )));
    }
    units.to_i64().ok_or_else(|| overflow("to_minor_units"))
}

/// `value | decimal(2)`: the exact decimal text of `value` rounded to `places` decimals,
/// halves away from zero (`2.345` is `"2.35"`, `-2.345` is `"-2.35"`), always with `places`
/// of them (`"20.00"`).
pub(super) fn decimal(value: &Value, places: u32) -> Result<String, Error> {
    let places = checked_places(places, "decimal")?;
    let mut rounded = decimal_of(value, "decimal")?
        .round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(places);
    if rounded.scale() != places {
        return Err(overflow("decimal"));
    }
    Ok(rounded.to_string())
}

/// The exact decimal a value stands for: an integer, a float read from its shortest text,
/// or a text holding a number (`"19.99"`, `"1e3"`).
pub(super) fn decimal_of(value: &Value, filter: &str) -> Result<Decimal, Error> {
    let not_a_number = || {
        invalid(format!(
            "`{filter}` takes a number or a text holding one; {} is not one",
            shown(value)
        ))
    };
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => Err(Error::new(
            ErrorKind::UndefinedError,
            format!("gives `{filter}` a missing or null value"),
        )),
        ValueKind::Number => {
            if let Ok(integer) = i128::try_from(value.clone()) {
                return Decimal::try_from_i128_with_scale(integer, 0).map_err(|_| overflow(filter));
            }
            let float = f64::try_from(value.clone()).map_err(|_| not_a_number())?;
            if !float.is_finite() {
                return Err(invalid(format!(
                    "`{filter}` got {float}: a division by zero or an overflow"
                )));
            }
            parse(&float.to_string()).ok_or_else(|| overflow(filter))
        }
        ValueKind::String => value
            .as_str()
            .and_then(|text| parse(text.trim()))
            .ok_or_else(not_a_number),
        _ => Err(not_a_number()),
    }
}

/// A decimal text exactly, or in scientific notation; `None` when it is no number or does
/// not fit 28 digits.
fn parse(text: &str) -> Option<Decimal> {
    Decimal::from_str_exact(text)
        .ok()
        .or_else(|| Decimal::from_scientific(text).ok())
}

fn checked_places(places: u32, filter: &str) -> Result<u32, Error> {
    if places > MAX_PLACES {
        return Err(invalid(format!(
            "`{filter}` takes at most {MAX_PLACES} decimal places, not {places}"
        )));
    }
    Ok(places)
}

/// A value as an error shows it: a text quoted, so that `"abc"` is not read as a name.
fn shown(value: &Value) -> String {
    match value.as_str() {
        Some(text) => format!("\"{text}\""),
        None => value.to_string(),
    }
}

fn invalid(detail: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, detail)
}

fn overflow(filter: &str) -> Error {
    invalid(format!("`{filter}` overflows: the number is too large"))
}

#[cfg(test)]
mod tests {
    use super::super::jinja::environment;

    fn render(template: &str) -> Result<String, String> {
        environment()
            .render_str(
                template,
                minijinja::context! { cents => 1999, price => 17.08 },
            )
            .map_err(|e| e.detail().unwrap_or_default().to_string())
    }

    #[test]
    fn minor_units_become_exact_decimal_text_and_back() {
        assert_eq!(
            render("{{ cents | from_minor_units(2) }}").unwrap(),
            "19.99"
        );
        assert_eq!(render("{{ 2000 | from_minor_units(2) }}").unwrap(), "20.00");
        assert_eq!(render("{{ (-5) | from_minor_units(2) }}").unwrap(), "-0.05");
        // Zero-decimal currencies (JPY) and three-decimal ones (BHD).
        assert_eq!(render("{{ 500 | from_minor_units(0) }}").unwrap(), "500");
        assert_eq!(render("{{ 1234 | from_minor_units(3) }}").unwrap(), "1.234");
        assert_eq!(
            render("{{ '1999' | from_minor_units(2) }}").unwrap(),
            "19.99"
        );
        // The floats that lose a cent through `x * 100` elsewhere.
        assert_eq!(render("{{ price | to_minor_units(2) }}").unwrap(), "1708");
        for (amount, cents) in [
            ("9.95", "995"),
            ("8.165", "8165"),
            ("0.1", "10"),
            ("78.43", "7843"),
        ] {
            let places = if amount == "8.165" { 3 } else { 2 };
            let template = format!("{{{{ {amount} | to_minor_units({places}) }}}}");
            assert_eq!(render(&template).unwrap(), cents, "{amount}");
        }
        assert_eq!(render("{{ '19.99' | to_minor_units(2) }}").unwrap(), "1999");
    }

    #[test]
    fn decimal_rounds_halves_away_from_zero_to_fixed_places() {
        assert_eq!(render("{{ (0.1 + 0.2) | decimal(2) }}").unwrap(), "0.30");
        assert_eq!(render("{{ 2.345 | decimal(2) }}").unwrap(), "2.35");
        assert_eq!(render("{{ (-2.345) | decimal(2) }}").unwrap(), "-2.35");
        assert_eq!(render("{{ 8.165 | decimal(2) }}").unwrap(), "8.17");
        assert_eq!(render("{{ 2000 / 100 }}").unwrap(), "20.0");
        assert_eq!(render("{{ (2000 / 100) | decimal(2) }}").unwrap(), "20.00");
        assert_eq!(render("{{ '1e3' | decimal(0) }}").unwrap(), "1000");
    }

    #[test]
    fn what_cannot_be_exact_is_an_error_with_a_message() {
        let error = render("{{ '19.999' | to_minor_units(2) }}").unwrap_err();
        assert!(error.contains("more than 2 decimal places"), "{error}");
        let error = render("{{ 19.5 | from_minor_units(2) }}").unwrap_err();
        assert!(error.contains("whole number of minor units"), "{error}");
        let error = render("{{ 'abc' | decimal(2) }}").unwrap_err();
        assert!(error.contains("\"abc\" is not one"), "{error}");
        assert!(
            render("{{ 1 | decimal(19) }}")
                .unwrap_err()
                .contains("at most 18")
        );
        assert!(
            render("{{ 9223372036854775807 | to_minor_units(2) }}")
                .unwrap_err()
                .contains("overflows")
        );
        assert!(
            render("{{ (1e308 * 10) | decimal(2) }}")
                .unwrap_err()
                .contains("overflow")
        );
        assert!(render("{{ nope | decimal(2) }}").is_err());
        assert!(render("{{ true | decimal(2) }}").is_err());
    }
}
