//! Unit tests of [`super`] (`compare`).

use super::*;
use crate::report::Better;

#[test]
fn lower_is_better_metrics() {
    let j = |b, n| judge(Better::Lower, b, n, 0.10);
    assert_eq!(j(10.0, 10.0), Some(Change::Same));
    assert_eq!(j(10.0, 10.9), Some(Change::Same), "within 10 %");
    assert_eq!(j(10.0, 11.5), Some(Change::Worse));
    assert_eq!(j(10.0, 9.5), Some(Change::Same));
    assert_eq!(j(10.0, 8.0), Some(Change::Better));
}

#[test]
fn higher_is_better_metrics() {
    let j = |b, n| judge(Better::Higher, b, n, 0.10);
    assert_eq!(j(400.0, 300.0), Some(Change::Worse));
    assert_eq!(j(400.0, 500.0), Some(Change::Better));
    assert_eq!(j(400.0, 390.0), Some(Change::Same));
}

#[test]
fn tolerance_is_a_strict_bound_and_zero_means_any_change() {
    // A change of exactly the tolerance is within it (0.25 is exact in binary).
    assert_eq!(judge(Better::Lower, 1.0, 1.25, 0.25), Some(Change::Same));
    assert_eq!(judge(Better::Lower, 1.0, 1.26, 0.25), Some(Change::Worse));
    assert_eq!(judge(Better::Lower, 1.0, 1.001, 0.0), Some(Change::Worse));
    assert_eq!(judge(Better::Lower, 1.0, 1.0, 0.0), Some(Change::Same));
    assert_eq!(judge(Better::Lower, 10.0, 14.0, 0.5), Some(Change::Same));
}

#[test]
fn zero_negative_and_undirected_figures() {
    // A count from zero: any event missing is a regression.
    assert_eq!(judge(Better::Lower, 0.0, 0.0, 0.1), Some(Change::Same));
    assert_eq!(judge(Better::Lower, 0.0, 3.0, 0.1), Some(Change::Worse));
    assert_eq!(judge(Better::Higher, 0.0, 3.0, 0.1), Some(Change::Better));
    // A negative figure moving up is still "up": worse for lower-is-better.
    assert_eq!(judge(Better::Lower, -40.0, -20.0, 0.1), Some(Change::Worse));
    assert_eq!(
        judge(Better::Lower, -40.0, -60.0, 0.1),
        Some(Change::Better)
    );
    assert_eq!(judge(Better::Neither, 1.0, 5.0, 0.1), None);
    assert_eq!(judge(Better::Lower, f64::NAN, 5.0, 0.1), None);
    assert_eq!(judge(Better::Lower, 1.0, f64::INFINITY, 0.1), None);
}

#[test]
fn tolerance_flag_is_checked() {
    assert_eq!(parse_tolerance("0.1"), Ok(0.1));
    assert_eq!(parse_tolerance("0"), Ok(0.0));
    assert!(parse_tolerance("-0.1").is_err());
    assert!(parse_tolerance("NaN").is_err());
    assert!(parse_tolerance("10%").is_err());
}
