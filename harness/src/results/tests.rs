//! Unit tests of [`super`] (`results`).

use super::*;

#[test]
fn histograms_round_trip_through_base64() {
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for v in [10, 250, 1_000, 123_456] {
        h.record(v).unwrap();
    }
    let back = decode_histogram(&encode_histogram(&h)).unwrap();
    assert_eq!(back.len(), 4);
    assert_eq!(Summary::from_histogram(&back), Summary::from_histogram(&h));
    assert!(decode_histogram("not base64!").is_err());
}
